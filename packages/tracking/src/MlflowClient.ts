/**
 * A typed client for MLflow's REST API (`/api/2.0/mlflow/...`, `/api/2.0/mlflow-artifacts/...`) over
 * undici, as an Effect service. Endpoints and field names follow mlflow/server/handlers.py and
 * service.proto (MLflow 3.17). Every call is an Effect that fails with a member of `MlflowError`.
 */
import { randomUUID } from "node:crypto"
import { createReadStream, createWriteStream } from "node:fs"
import { mkdir, rename, rm, stat } from "node:fs/promises"
import { basename, dirname } from "node:path"
import type { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { Context, Effect, Layer, type Schedule, type Scope } from "effect"
import { Agent, request, type Dispatcher } from "undici"
import { MlflowApiError, type MlflowError, MlflowTransportError, MlflowValidationError, isErrorCode, isTransient, transientStatuses } from "./MlflowError.ts"
import { type Auth, authFromEnv, authorizationHeader } from "./internal/auth.ts"
import { type KeyValue, type WireMetric, splitLogBatch } from "./internal/batch.ts"
import { decodeDouble, decodeInt64 } from "./internal/json.ts"
import { type RetryPolicy, parseRetryAfter, retryPolicyFromEnv, retrySchedule } from "./internal/retry.ts"
import { limits, truncateValue, validateKey } from "./Validation.ts"

export type { RetryPolicy } from "./internal/retry.ts"
export type { Auth } from "./internal/auth.ts"
export type { KeyValue, WireMetric } from "./internal/batch.ts"

export type MlflowRunStatus = "RUNNING" | "SCHEDULED" | "FINISHED" | "FAILED" | "KILLED"

export interface Experiment {
  readonly experimentId: string
  readonly name: string
  readonly artifactLocation: string
  readonly lifecycleStage: string
  readonly tags: Readonly<Record<string, string>>
}

/** An MLflow 3 logged model: a model with its own artifact root, linked to the run that produced it. */
export interface LoggedModel {
  readonly modelId: string
  readonly experimentId: string
  readonly name: string
  readonly artifactUri: string
  readonly status: string
  readonly sourceRunId: string | undefined
  readonly tags: Readonly<Record<string, string>>
}

export interface ModelVersion {
  readonly name: string
  readonly version: string
  readonly source: string
  readonly runId: string | undefined
  readonly status: string
}

export interface RunInfo {
  readonly runId: string
  readonly experimentId: string
  readonly runName: string
  readonly userId: string
  readonly status: MlflowRunStatus
  readonly startTime: number
  readonly endTime: number | undefined
  readonly artifactUri: string
  readonly lifecycleStage: string
}

export interface MetricValue {
  readonly key: string
  readonly value: number
  readonly timestamp: number
  readonly step: number
}

export interface Run {
  readonly info: RunInfo
  /** latest value of each metric */
  readonly metrics: Readonly<Record<string, MetricValue>>
  readonly params: Readonly<Record<string, string>>
  readonly tags: Readonly<Record<string, string>>
}

export interface ArtifactFile {
  /** path relative to the run's artifact root */
  readonly path: string
  readonly isDir: boolean
  readonly fileSize: number | undefined
}

export interface SearchRunsRequest {
  readonly experimentIds: ReadonlyArray<string>
  readonly filter?: string
  readonly orderBy?: ReadonlyArray<string>
  readonly runViewType?: "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL"
  /** page size (MLflow allows up to 50000) */
  readonly pageSize?: number
  /** stop after this many runs */
  readonly maxResults?: number
}

export interface MlflowClientOptions {
  /** e.g. http://127.0.0.1:5500 */
  readonly trackingUri: string
  /** default: from MLFLOW_TRACKING_TOKEN / MLFLOW_TRACKING_USERNAME+PASSWORD */
  readonly auth?: Auth | undefined
  /** default: from MLFLOW_HTTP_REQUEST_* env vars, as the Python client */
  readonly retry?: Partial<RetryPolicy>
  /** per-request timeout (MLFLOW_HTTP_REQUEST_TIMEOUT, default 120 s) */
  readonly timeoutMs?: number
  /** keep-alive connections to the server */
  readonly connections?: number
  /** files at least this large try multipart upload first (MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE) */
  readonly multipartThresholdBytes?: number
  readonly multipartChunkBytes?: number
  /** where truncation warnings go (default: stderr) */
  readonly warn?: (message: string) => void
}

type Body = string | (() => Readable)

/** When a failed attempt may be repeated: idempotent calls always; others only if never sent. */
type RetryMode = "idempotent" | "unsent-only"

interface Call {
  readonly method: "GET" | "POST" | "PUT" | "PATCH"
  readonly path: string
  readonly query?: Readonly<Record<string, string | number | undefined>>
  readonly body?: Body
  readonly contentType?: string
  readonly retry: RetryMode
  /** absolute URL (presigned multipart part), sent without our credentials */
  readonly external?: boolean
}

// Connection errors after which the server cannot have seen the request.
const unsentCodes = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT"])

const transportError = (call: Call, cause: unknown): MlflowTransportError => {
  const code = (cause as { code?: string }).code ?? (cause as { cause?: { code?: string } }).cause?.code
  return new MlflowTransportError({
    endpoint: `${call.method} ${call.external ? "(presigned part URL)" : call.path}`,
    message: `${code ?? "network error"}: ${(cause as Error).message ?? String(cause)}`,
    code,
    sent: code === undefined || !unsentCodes.has(code)
  })
}

const mimeTypes: Readonly<Record<string, string>> = {
  json: "application/json", txt: "text/plain", log: "text/plain", csv: "text/csv", md: "text/markdown", html: "text/html",
  png: "image/png", gif: "image/gif", jpg: "image/jpeg", jpeg: "image/jpeg", svg: "image/svg+xml", mp4: "video/mp4", yaml: "text/yaml"
}
const mimeType = (file: string) => mimeTypes[file.slice(file.lastIndexOf(".") + 1).toLowerCase()] ?? "application/octet-stream"

/** `a/b c/d` → `a/b%20c/d`: each path segment escaped, slashes kept. */
const encodePath = (path: string) => path.split("/").map(encodeURIComponent).join("/")

/** Reject artifact paths that would escape the run's root or normalise to another name. */
const checkArtifactPath = (path: string) => {
  const parts = path.split("/")
  if (path === "" || path.startsWith("/") || parts.some((p) => p === "" || p === "." || p === ".."))
    throw new MlflowValidationError({ field: "artifact path", message: `invalid artifact path ${JSON.stringify(path)}: must be relative, without '.', '..' or empty segments` })
}

const record = (list: unknown): Record<string, string> => {
  const out: Record<string, string> = {}
  if (Array.isArray(list)) for (const kv of list as Array<{ key: string; value?: string }>) out[kv.key] = kv.value ?? ""
  return out
}

const decodeMetric = (m: { key: string; value?: unknown; timestamp?: unknown; step?: unknown }): MetricValue => ({
  key: m.key,
  value: decodeDouble(m.value ?? 0),
  timestamp: decodeInt64(m.timestamp),
  step: decodeInt64(m.step)
})

const decodeRunInfo = (info: Record<string, unknown>): RunInfo => ({
  runId: String(info.run_id ?? info.run_uuid),
  experimentId: String(info.experiment_id),
  runName: String(info.run_name ?? ""),
  userId: String(info.user_id ?? ""),
  status: (info.status ?? "RUNNING") as MlflowRunStatus,
  startTime: decodeInt64(info.start_time),
  endTime: info.end_time === undefined ? undefined : decodeInt64(info.end_time),
  artifactUri: String(info.artifact_uri ?? ""),
  lifecycleStage: String(info.lifecycle_stage ?? "active")
})

const decodeRun = (run: { info: Record<string, unknown>; data?: { metrics?: Array<any>; params?: unknown; tags?: unknown } }): Run => {
  const metrics: Record<string, MetricValue> = {}
  for (const m of run.data?.metrics ?? []) metrics[m.key] = decodeMetric(m)
  return { info: decodeRunInfo(run.info), metrics, params: record(run.data?.params), tags: record(run.data?.tags) }
}

const decodeExperiment = (e: Record<string, unknown>): Experiment => ({
  experimentId: String(e.experiment_id),
  name: String(e.name),
  artifactLocation: String(e.artifact_location ?? ""),
  lifecycleStage: String(e.lifecycle_stage ?? "active"),
  tags: record(e.tags)
})

const decodeLoggedModel = (m: { info: Record<string, unknown> }): LoggedModel => ({
  modelId: String(m.info.model_id),
  experimentId: String(m.info.experiment_id),
  name: String(m.info.name ?? ""),
  artifactUri: String(m.info.artifact_uri ?? ""),
  status: String(m.info.status ?? ""),
  sourceRunId: m.info.source_run_id === undefined ? undefined : String(m.info.source_run_id),
  tags: record(m.info.tags)
})

const decodeModelVersion = (v: Record<string, unknown>): ModelVersion => ({
  name: String(v.name),
  version: String(v.version),
  source: String(v.source ?? ""),
  runId: v.run_id === undefined || v.run_id === "" ? undefined : String(v.run_id),
  status: String(v.status ?? "")
})

/** Path of a run's artifact root inside the mlflow-artifacts proxy, from its `artifact_uri`. */
export const proxiedArtifactRoot = (artifactUri: string): string => {
  const anchor = "/api/2.0/mlflow-artifacts/artifacts/"
  let path: string | undefined
  if (artifactUri.startsWith("mlflow-artifacts:")) {
    const rest = artifactUri.slice("mlflow-artifacts:".length)
    // mlflow-artifacts:/1/<run>/artifacts or mlflow-artifacts://host:port/1/<run>/artifacts
    path = rest.startsWith("//") ? rest.slice(rest.indexOf("/", 2) + 1) : rest.replace(/^\/+/, "")
  } else if (/^https?:\/\//.test(artifactUri) && artifactUri.includes(anchor)) {
    path = artifactUri.slice(artifactUri.indexOf(anchor) + anchor.length)
  }
  if (path === undefined || path === "")
    throw new MlflowValidationError({
      field: "artifact_uri",
      message: `artifact_uri ${JSON.stringify(artifactUri)} is not served by the tracking server; start it with --serve-artifacts`
    })
  return path.replace(/\/+$/, "")
}

type Failure = MlflowApiError | MlflowTransportError
type LogBatchEntities = { readonly metrics?: ReadonlyArray<WireMetric>; readonly params?: ReadonlyArray<KeyValue>; readonly tags?: ReadonlyArray<KeyValue> }

/** A check that throws `MlflowValidationError` (key rules, artifact paths) as a typed failure. */
const validated = <A>(body: () => A): Effect.Effect<A, MlflowValidationError> =>
  Effect.try({ try: body, catch: (error) => error as MlflowValidationError })

/**
 * The MLflow REST client: every call is an Effect failing with a member of `MlflowError`; transient
 * failures are retried by `retrySchedule` (MLflow's own policy) where repeating the call is safe.
 * Build it with `makeMlflowClient` (closed with `close`) or, scoped, through `MlflowClient.layer`.
 */
export class MlflowClientImpl {
  readonly trackingUri: string
  readonly #authorization: string | undefined
  readonly #retry: RetryPolicy
  readonly #schedule: Schedule.Schedule<number, MlflowError>
  readonly #timeoutMs: number
  readonly #dispatcher: Agent
  readonly #warn: (message: string) => void
  readonly #multipartThreshold: number
  readonly #multipartChunk: number
  /** undefined until the server told us whether its artifact store supports multipart upload */
  #multipartSupported: boolean | undefined

  constructor(options: MlflowClientOptions) {
    let uri: URL
    try {
      uri = new URL(options.trackingUri)
    } catch {
      throw new MlflowValidationError({ field: "MLFLOW_TRACKING_URI", message: `not a URL: ${JSON.stringify(options.trackingUri)}` })
    }
    if (uri.protocol !== "http:" && uri.protocol !== "https:")
      throw new MlflowValidationError({ field: "MLFLOW_TRACKING_URI", message: `only http(s) tracking servers are supported, got ${JSON.stringify(options.trackingUri)}` })
    this.trackingUri = options.trackingUri.replace(/\/+$/, "")
    this.#authorization = authorizationHeader("auth" in options ? options.auth : authFromEnv())
    this.#retry = { ...retryPolicyFromEnv(), ...options.retry }
    this.#schedule = retrySchedule(this.#retry)
    this.#timeoutMs = options.timeoutMs ?? Number(process.env.MLFLOW_HTTP_REQUEST_TIMEOUT ?? 120) * 1000
    this.#dispatcher = new Agent({ connections: options.connections ?? 8, keepAliveTimeout: 30_000, connectTimeout: Math.min(this.#timeoutMs, 10_000) })
    this.#warn = options.warn ?? ((message) => process.stderr.write(`[vw2 tracking] ${message}\n`))
    this.#multipartThreshold = options.multipartThresholdBytes ?? Number(process.env.MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE ?? 500 * 1024 ** 2)
    this.#multipartChunk = options.multipartChunkBytes ?? Number(process.env.MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE ?? 10 * 1024 ** 2)
  }

  /** Keeps credentials out of `console.log(client)` and error reports. */
  toString(): string {
    return `MlflowClient(${this.trackingUri})`
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString()
  }

  /** Releases the connections. */
  close(): Effect.Effect<void> {
    return Effect.promise(() => this.#dispatcher.close())
  }

  // ---- transport -------------------------------------------------------------------------------

  /** One request (no retry); interrupting it aborts the request. */
  #attempt(call: Call): Effect.Effect<Dispatcher.ResponseData, MlflowTransportError> {
    return Effect.tryPromise({
      try: (signal) => {
        const url = call.external ? new URL(call.path) : new URL(this.trackingUri + call.path)
        for (const [k, v] of Object.entries(call.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v))
        const headers: Record<string, string> = { "user-agent": "vw2-tracking" }
        if (this.#authorization !== undefined && !call.external) headers.authorization = this.#authorization
        if (call.body !== undefined) headers["content-type"] = call.contentType ?? "application/json"
        return request(url, {
          dispatcher: this.#dispatcher,
          method: call.method,
          headers,
          body: typeof call.body === "function" ? call.body() : call.body,
          headersTimeout: this.#timeoutMs,
          bodyTimeout: this.#timeoutMs,
          signal
        })
      },
      catch: (cause) => transportError(call, cause)
    })
  }

  /** The response body as text. The connection can still break after the status line (the server killed
   * mid-response): that is a transport failure too, so trackers retry or spool instead of dropping. */
  #text(call: Call, response: Dispatcher.ResponseData): Effect.Effect<string, MlflowTransportError> {
    return Effect.tryPromise({ try: () => response.body.text(), catch: (cause) => transportError(call, cause) })
  }

  /** One attempt that succeeds only with a status below 400 (body unread). */
  #once(call: Call): Effect.Effect<Dispatcher.ResponseData, Failure> {
    return Effect.flatMap(this.#attempt(call), (response) => (response.statusCode < 400 ? Effect.succeed(response) : Effect.flatMap(this.#apiError(call, response), Effect.fail)))
  }

  /** One call, retried on the schedule while the failure is transient and repeating it is safe. */
  #call(call: Call): Effect.Effect<Dispatcher.ResponseData, Failure> {
    return this.#once(call).pipe(
      Effect.retry({
        schedule: this.#schedule,
        while: (failure) => isTransient(failure) && (call.retry === "idempotent" || (failure._tag === "MlflowTransportError" && !failure.sent))
      })
    )
  }

  #apiError(call: Call, response: Dispatcher.ResponseData): Effect.Effect<MlflowApiError> {
    return Effect.map(Effect.promise(() => response.body.text().catch(() => "")), (text) => {
      const endpoint = `${call.method} ${call.external ? "(presigned part URL)" : call.path}`
      const retryAfterMs = parseRetryAfter(headerValue(response.headers["retry-after"]))
      try {
        const parsed = JSON.parse(text) as { error_code?: unknown; message?: unknown }
        if (typeof parsed.error_code === "string")
          return new MlflowApiError({ endpoint, status: response.statusCode, errorCode: parsed.error_code, message: String(parsed.message ?? ""), retryAfterMs })
      } catch {
        // not JSON: an HTML error page from the server or a proxy in front of it
      }
      const snippet = text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300)
      return new MlflowApiError({ endpoint, status: response.statusCode, errorCode: `HTTP_${response.statusCode}`, message: snippet || `HTTP ${response.statusCode}`, retryAfterMs })
    })
  }

  #json<T>(call: Call): Effect.Effect<T, Failure> {
    return Effect.flatMap(this.#call(call), (response) =>
      Effect.flatMap(this.#text(call, response), (text) => {
        if (text.trim() === "") return Effect.succeed({} as T)
        try {
          return Effect.succeed(JSON.parse(text) as T)
        } catch {
          return Effect.fail(new MlflowApiError({ endpoint: `${call.method} ${call.path}`, status: response.statusCode, errorCode: "INVALID_RESPONSE", message: `expected JSON, got ${JSON.stringify(text.slice(0, 200))}` }))
        }
      }))
  }

  #get<T>(path: string, query: Record<string, string | number | undefined>): Effect.Effect<T, Failure> {
    return this.#json<T>({ method: "GET", path: `/api/2.0/mlflow/${path}`, query, retry: "idempotent" })
  }

  #post<T>(path: string, body: unknown, retry: RetryMode = "idempotent"): Effect.Effect<T, Failure> {
    return this.#json<T>({ method: "POST", path: `/api/2.0/mlflow/${path}`, body: typeof body === "string" ? body : JSON.stringify(body), retry })
  }

  // ---- server ----------------------------------------------------------------------------------

  /** true when `/health` answers OK; never fails, never retries (used as a probe). */
  health(): Effect.Effect<boolean> {
    const call: Call = { method: "GET", path: "/health", retry: "idempotent" }
    return this.#attempt(call).pipe(
      Effect.flatMap((response) => Effect.map(this.#text(call, response), (text) => response.statusCode === 200 && text.trim() === "OK")),
      Effect.orElseSucceed(() => false)
    )
  }

  version(): Effect.Effect<string, Failure> {
    const call: Call = { method: "GET", path: "/version", retry: "idempotent" }
    return Effect.map(Effect.flatMap(this.#call(call), (response) => this.#text(call, response)), (text) => text.trim())
  }

  // ---- experiments -----------------------------------------------------------------------------

  getExperimentByName(name: string): Effect.Effect<Experiment | undefined, Failure> {
    return this.#get<{ experiment: Record<string, unknown> }>("experiments/get-by-name", { experiment_name: name }).pipe(
      Effect.map((r): Experiment | undefined => decodeExperiment(r.experiment)),
      Effect.catchIf((error) => isErrorCode(error, "RESOURCE_DOES_NOT_EXIST"), () => Effect.succeed(undefined))
    )
  }

  createExperiment(name: string, tags: Readonly<Record<string, string>> = {}): Effect.Effect<string, Failure> {
    return Effect.map(
      this.#post<{ experiment_id: string }>("experiments/create", { name, tags: Object.entries(tags).map(([key, value]) => ({ key, value })) }, "unsent-only"),
      (r) => r.experiment_id
    )
  }

  /** Race-safe: two processes creating the same experiment both end up with its one id. A deleted
   * experiment of that name is restored, as `mlflow.set_experiment` would refuse to use it. `tags` are
   * given to a new experiment and set on an existing one that lacks them (values it has are kept). */
  getOrCreateExperiment(name: string, tags: Readonly<Record<string, string>> = {}): Effect.Effect<string, MlflowError> {
    return Effect.gen({ self: this }, function*() {
      for (let attempt = 0; attempt < 3; attempt++) {
        const existing = yield* this.getExperimentByName(name)
        if (existing !== undefined) {
          if (existing.lifecycleStage === "deleted") yield* this.#post("experiments/restore", { experiment_id: existing.experimentId })
          for (const [key, value] of Object.entries(tags)) {
            if (existing.tags[key] === undefined) yield* this.setExperimentTag(existing.experimentId, key, value)
          }
          return existing.experimentId
        }
        const created = yield* Effect.result(this.createExperiment(name, tags))
        if (created._tag === "Success") return created.success
        // lost the race (or our create went through before a transient failure): look it up again
        if (!isErrorCode(created.failure, "RESOURCE_ALREADY_EXISTS") && !isTransient(created.failure)) return yield* Effect.fail(created.failure)
      }
      return yield* Effect.fail(new MlflowApiError({ endpoint: "experiments/create", status: 409, errorCode: "RESOURCE_ALREADY_EXISTS", message: `could not get or create experiment ${JSON.stringify(name)}` }))
    })
  }

  setExperimentTag(experimentId: string, key: string, value: string): Effect.Effect<void, MlflowError> {
    return Effect.andThen(validated(() => validateKey("tag", key)), this.#post("experiments/set-experiment-tag", { experiment_id: experimentId, key, value }))
  }

  /** Every experiment (active only by default), across pages. */
  searchExperiments(options: { readonly filter?: string; readonly viewType?: "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL" } = {}): Effect.Effect<Array<Experiment>, Failure> {
    return Effect.gen({ self: this }, function*() {
      const out: Array<Experiment> = []
      let token: string | undefined
      do {
        const r = yield* this.#post<{ experiments?: Array<Record<string, unknown>>; next_page_token?: string }>("experiments/search", {
          max_results: 1000,
          filter: options.filter,
          view_type: options.viewType ?? "ACTIVE_ONLY",
          page_token: token
        })
        out.push(...(r.experiments ?? []).map(decodeExperiment))
        token = r.next_page_token || undefined
      } while (token !== undefined)
      return out
    })
  }

  // ---- runs ------------------------------------------------------------------------------------

  /**
   * Creates a run. runs/create is not idempotent, so it is never blindly repeated: each request carries
   * a unique `vw2.create_token` tag, and after an ambiguous failure the client first searches for a run
   * with that token before trying again (on the same schedule as every other retry).
   */
  createRun(request: {
    readonly experimentId: string
    readonly runName?: string
    readonly startTime?: number
    readonly userId?: string
    readonly tags?: Readonly<Record<string, string>>
    /** unique per logical create (default: random); a tracker replaying a create passes the same one */
    readonly createToken?: string
  }): Effect.Effect<RunInfo, MlflowError> {
    return Effect.gen({ self: this }, function*() {
      const token = request.createToken ?? randomUUID()
      const tags = { ...request.tags, "vw2.create_token": token }
      yield* validated(() => {
        for (const key of Object.keys(tags)) validateKey("tag", key)
      })
      const body = JSON.stringify({
        experiment_id: request.experimentId,
        run_name: request.runName,
        start_time: request.startTime ?? Date.now(),
        user_id: request.userId,
        tags: Object.entries(tags).map(([key, value]) => ({ key, value: truncateValue("tag", key, value, limits.tagValueLength, this.#warn) }))
      })
      let first = true
      // each attempt after the first looks for a run an earlier, ambiguous attempt created
      const attempt = Effect.suspend(() => {
        const lookup = first
          ? Effect.succeed(undefined)
          : Effect.map(
            this.searchRuns({ experimentIds: [request.experimentId], filter: `tags.\`vw2.create_token\` = '${token}'`, runViewType: "ALL", maxResults: 1 }).pipe(Effect.orElseSucceed(() => [])),
            (found) => found[0]?.info
          )
        first = false
        return Effect.flatMap(lookup, (found) =>
          found !== undefined
            ? Effect.succeed(found)
            : Effect.map(this.#post<{ run: { info: Record<string, unknown> } }>("runs/create", body, "unsent-only"), (r) => decodeRunInfo(r.run.info)))
      })
      return yield* attempt.pipe(Effect.retry({ schedule: this.#schedule, while: isTransient }))
    })
  }

  updateRun(runId: string, update: { readonly status?: MlflowRunStatus; readonly endTime?: number; readonly runName?: string }): Effect.Effect<void, Failure> {
    return Effect.asVoid(this.#post("runs/update", { run_id: runId, status: update.status, end_time: update.endTime, run_name: update.runName }))
  }

  getRun(runId: string): Effect.Effect<Run, Failure> {
    return Effect.map(this.#get<{ run: Parameters<typeof decodeRun>[0] }>("runs/get", { run_id: runId }), (r) => decodeRun(r.run))
  }

  /** One page of runs/search. */
  searchRunsPage(req: SearchRunsRequest, pageToken?: string): Effect.Effect<{ runs: Array<Run>; nextPageToken: string | undefined }, Failure> {
    return Effect.map(
      this.#post<{ runs?: Array<Parameters<typeof decodeRun>[0]>; next_page_token?: string }>("runs/search", {
        experiment_ids: req.experimentIds,
        filter: req.filter,
        run_view_type: req.runViewType ?? "ACTIVE_ONLY",
        max_results: Math.min(req.pageSize ?? 1000, req.maxResults ?? Number.POSITIVE_INFINITY),
        order_by: req.orderBy,
        page_token: pageToken
      }),
      (r) => ({ runs: (r.runs ?? []).map(decodeRun), nextPageToken: r.next_page_token || undefined })
    )
  }

  /** All matching runs across pages, each run once: offset-based pages can repeat a run when runs are
   * created while paging, so results are de-duplicated by run id. */
  searchRuns(req: SearchRunsRequest): Effect.Effect<Array<Run>, Failure> {
    return Effect.gen({ self: this }, function*() {
      const seen = new Set<string>()
      const runs: Array<Run> = []
      const max = req.maxResults ?? Number.POSITIVE_INFINITY
      let token: string | undefined
      do {
        const page = yield* this.searchRunsPage(req, token)
        for (const run of page.runs) {
          if (seen.has(run.info.runId)) continue
          seen.add(run.info.runId)
          runs.push(run)
          if (runs.length >= max) return runs
        }
        token = page.nextPageToken
      } while (token !== undefined)
      return runs
    })
  }

  /**
   * Logs metrics, params and tags, split into as many runs/log-batch requests as MLflow's limits need.
   * Keys are validated here (a bad key fails with `MlflowValidationError` before anything is sent); values
   * over MLflow's length limits are truncated with a warning. Returns the number of requests sent.
   */
  logBatch(runId: string, entities: LogBatchEntities): Effect.Effect<number, MlflowError> {
    return Effect.flatMap(validated(() => this.prepareLogBatch(runId, entities)), (bodies) =>
      Effect.as(Effect.forEach(bodies, (body) => this.sendLogBatch(body), { discard: true }), bodies.length))
  }

  /** Validated, truncated, split request bodies for `sendLogBatch` (lets callers pipeline requests).
   * Pure; throws `MlflowValidationError` on a key MLflow would refuse. */
  prepareLogBatch(runId: string, entities: LogBatchEntities): Array<string> {
    const checkedKeys = new Set<string>()
    for (const m of entities.metrics ?? []) {
      if (checkedKeys.has(m.key)) continue
      validateKey("metric", m.key)
      checkedKeys.add(m.key)
    }
    const params = (entities.params ?? []).map((p) => {
      validateKey("param", p.key)
      return { key: p.key, value: truncateValue("param", p.key, p.value, limits.paramValueLength, this.#warn) }
    })
    const tags = (entities.tags ?? []).map((t) => {
      validateKey("tag", t.key)
      return { key: t.key, value: truncateValue("tag", t.key, t.value, limits.tagValueLength, this.#warn) }
    })
    return splitLogBatch(runId, { metrics: entities.metrics ?? [], params, tags })
  }

  /** Sends one prepared body. Safe to repeat: MLflow ignores a metric point it already has, an equal
   * param value and an equal tag. */
  sendLogBatch(body: string): Effect.Effect<void, Failure> {
    return Effect.asVoid(this.#post("runs/log-batch", body))
  }

  setTag(runId: string, key: string, value: string): Effect.Effect<void, MlflowError> {
    return Effect.andThen(
      validated(() => validateKey("tag", key)),
      Effect.suspend(() => this.#post("runs/set-tag", { run_id: runId, key, value: truncateValue("tag", key, value, limits.tagValueLength, this.#warn) }))
    )
  }

  deleteTag(runId: string, key: string): Effect.Effect<void, Failure> {
    return Effect.asVoid(this.#post("runs/delete-tag", { run_id: runId, key }))
  }

  /** Every point of one metric, across pages. */
  getMetricHistory(runId: string, key: string): Effect.Effect<Array<MetricValue>, Failure> {
    return Effect.gen({ self: this }, function*() {
      const points: Array<MetricValue> = []
      let token: string | undefined
      do {
        const r = yield* this.#get<{ metrics?: Array<Parameters<typeof decodeMetric>[0]>; next_page_token?: string }>("metrics/get-history", {
          run_id: runId,
          metric_key: key,
          max_results: 25_000,
          page_token: token
        })
        for (const m of r.metrics ?? []) points.push(decodeMetric(m))
        token = r.next_page_token || undefined
      } while (token !== undefined)
      return points
    })
  }

  // ---- logged models and the model registry (MLflow 3) ------------------------------------------

  /** Creates a logged model (status PENDING) whose artifacts live under its own `artifactUri`. Not
   * idempotent: not repeated after an ambiguous failure (a PENDING orphan is harmless, a duplicate READY
   * one is not). */
  createLoggedModel(request: {
    readonly experimentId: string
    readonly name: string
    readonly sourceRunId?: string
    readonly modelType?: string
    readonly tags?: Readonly<Record<string, string>>
    readonly params?: Readonly<Record<string, string>>
  }): Effect.Effect<LoggedModel, Failure> {
    const kv = (r: Readonly<Record<string, string>> | undefined) => Object.entries(r ?? {}).map(([key, value]) => ({ key, value }))
    return Effect.map(
      this.#post<{ model: { info: Record<string, unknown> } }>("logged-models", {
        experiment_id: request.experimentId,
        name: request.name,
        source_run_id: request.sourceRunId,
        model_type: request.modelType,
        tags: kv(request.tags),
        params: kv(request.params)
      }, "unsent-only"),
      (r) => decodeLoggedModel(r.model)
    )
  }

  getLoggedModel(modelId: string): Effect.Effect<LoggedModel, Failure> {
    return Effect.map(
      this.#json<{ model: { info: Record<string, unknown> } }>({ method: "GET", path: `/api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}`, retry: "idempotent" }),
      (r) => decodeLoggedModel(r.model)
    )
  }

  /** Marks a logged model READY (its artifacts are complete) or UPLOAD_FAILED. */
  finalizeLoggedModel(modelId: string, status: "READY" | "UPLOAD_FAILED"): Effect.Effect<LoggedModel, Failure> {
    // LoggedModelStatus in service.proto: PENDING = 1, READY = 2, UPLOAD_FAILED = 3
    return Effect.map(
      this.#json<{ model: { info: Record<string, unknown> } }>({
        method: "PATCH",
        path: `/api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}`,
        body: JSON.stringify({ model_id: modelId, status: status === "READY" ? 2 : 3 }),
        retry: "idempotent"
      }),
      (r) => decodeLoggedModel(r.model)
    )
  }

  /** Records logged models as outputs of a run (the run page lists them under "Logged models"). */
  logRunOutputs(runId: string, models: ReadonlyArray<{ readonly modelId: string; readonly step?: number }>): Effect.Effect<void, Failure> {
    return Effect.asVoid(this.#post("runs/outputs", { run_id: runId, models: models.map((m) => ({ model_id: m.modelId, step: m.step ?? 0 })) }))
  }

  /** Creates a registered model; one that exists already is fine. */
  ensureRegisteredModel(name: string): Effect.Effect<void, Failure> {
    return this.#post("registered-models/create", { name }, "unsent-only").pipe(
      Effect.asVoid,
      Effect.catchIf((error) => isErrorCode(error, "RESOURCE_ALREADY_EXISTS"), () => Effect.void)
    )
  }

  /** A new version of registered model `name` from `source` (`runs:/…`, an artifact URI, or `models:/<model id>`). */
  createModelVersion(request: { readonly name: string; readonly source: string; readonly runId?: string; readonly modelId?: string; readonly description?: string }): Effect.Effect<ModelVersion, Failure> {
    return Effect.map(
      this.#post<{ model_version: Record<string, unknown> }>("model-versions/create", {
        name: request.name,
        source: request.source,
        run_id: request.runId,
        model_id: request.modelId,
        description: request.description
      }, "unsent-only"),
      (r) => decodeModelVersion(r.model_version)
    )
  }

  searchModelVersions(filter: string): Effect.Effect<Array<ModelVersion>, Failure> {
    return Effect.map(this.#get<{ model_versions?: Array<Record<string, unknown>> }>("model-versions/search", { filter, max_results: 1000 }), (r) => (r.model_versions ?? []).map(decodeModelVersion))
  }

  // ---- artifacts (mlflow-artifacts proxy) --------------------------------------------------------

  /**
   * Uploads one file to `artifactPath` under the run's artifact root, streamed from disk. Files above the
   * multipart threshold try the proxy's multipart upload first and fall back to a single streamed PUT
   * when the server's artifact store does not support it (NOT_IMPLEMENTED, e.g. a local directory).
   */
  uploadArtifact(artifactUri: string, localPath: string, artifactPath: string): Effect.Effect<void, MlflowError> {
    return Effect.gen({ self: this }, function*() {
      const root = yield* validated(() => {
        checkArtifactPath(artifactPath)
        return proxiedArtifactRoot(artifactUri)
      })
      const size = (yield* Effect.tryPromise({
        try: () => stat(localPath),
        catch: (error) => new MlflowValidationError({ field: "artifact file", message: `${localPath}: ${(error as Error).message}` })
      })).size
      if (size >= this.#multipartThreshold && this.#multipartSupported !== false) {
        if (yield* this.#multipartUpload(root, localPath, artifactPath, size)) return
      }
      const call: Call = {
        method: "PUT",
        path: `/api/2.0/mlflow-artifacts/artifacts/${encodePath(`${root}/${artifactPath}`)}`,
        body: () => createReadStream(localPath),
        contentType: mimeType(artifactPath),
        retry: "idempotent"
      }
      const response = yield* this.#call(call)
      yield* Effect.promise(() => response.body.dump())
    })
  }

  /** true when uploaded by multipart; false when the server does not support it. */
  #multipartUpload(root: string, localPath: string, artifactPath: string, size: number): Effect.Effect<boolean, Failure> {
    return Effect.gen({ self: this }, function*() {
      const dir = artifactPath.includes("/") ? `${root}/${artifactPath.slice(0, artifactPath.lastIndexOf("/"))}` : root
      const name = basename(artifactPath)
      const chunk = this.#multipartChunk
      const numParts = Math.max(1, Math.ceil(size / chunk))
      const mpu = (action: string, body: unknown) =>
        this.#json<any>({ method: "POST", path: `/api/2.0/mlflow-artifacts/mpu/${action}/${encodePath(dir)}`, body: JSON.stringify(body), retry: "idempotent" })
      const created = yield* Effect.result(mpu("create", { path: name, num_parts: numParts }) as Effect.Effect<{ upload_id?: string; credentials?: Array<{ part_number: number; url: string }> }, Failure>)
      if (created._tag === "Failure") {
        if (!isErrorCode(created.failure, "NOT_IMPLEMENTED")) return yield* Effect.fail(created.failure)
        this.#multipartSupported = false
        return false
      }
      this.#multipartSupported = true
      const upload = created.success
      const send = Effect.forEach(upload.credentials ?? [], (credential, index) => {
        const start = index * chunk
        const call: Call = {
          method: "PUT",
          path: credential.url,
          external: true,
          body: () => createReadStream(localPath, { start, end: Math.min(size, start + chunk) - 1 }),
          contentType: "application/octet-stream",
          retry: "idempotent"
        }
        return Effect.flatMap(this.#call(call), (response) =>
          Effect.as(Effect.promise(() => response.body.dump()), { part_number: credential.part_number, etag: headerValue(response.headers.etag) ?? "", url: credential.url }))
      })
      // a failed part or completion aborts the upload
      yield* Effect.flatMap(send, (parts) => mpu("complete", { path: name, upload_id: upload.upload_id, parts })).pipe(
        Effect.tapError(() => Effect.ignore(mpu("abort", { path: name, upload_id: upload.upload_id })))
      )
      return true
    })
  }

  /** Files and directories directly under `path` (relative to the run's artifact root). */
  listArtifacts(artifactUri: string, path?: string): Effect.Effect<Array<ArtifactFile>, MlflowError> {
    return Effect.gen({ self: this }, function*() {
      const root = yield* validated(() => {
        if (path !== undefined && path !== "") checkArtifactPath(path)
        return proxiedArtifactRoot(artifactUri)
      })
      const r = yield* this.#json<{ files?: Array<{ path: string; is_dir?: boolean; file_size?: unknown }> }>({
        method: "GET",
        path: "/api/2.0/mlflow-artifacts/artifacts",
        query: { path: path ? `${root}/${path}` : root },
        retry: "idempotent"
      })
      return (r.files ?? []).map((f) => ({
        path: path ? `${path}/${f.path}` : f.path,
        isDir: f.is_dir === true,
        fileSize: f.file_size === undefined ? undefined : decodeInt64(f.file_size)
      }))
    })
  }

  /** Streams one artifact to `destination` (written to a temp name, renamed when complete). */
  downloadArtifact(artifactUri: string, path: string, destination: string): Effect.Effect<void, MlflowError> {
    return Effect.gen({ self: this }, function*() {
      const root = yield* validated(() => {
        checkArtifactPath(path)
        return proxiedArtifactRoot(artifactUri)
      })
      const temp = `${destination}.${process.pid}.part`
      const call: Call = { method: "GET", path: `/api/2.0/mlflow-artifacts/artifacts/${encodePath(`${root}/${path}`)}`, retry: "idempotent" }
      const response = yield* this.#call(call)
      yield* Effect.tryPromise({
        try: async () => {
          await mkdir(dirname(destination), { recursive: true })
          await pipeline(response.body, createWriteStream(temp))
          await rename(temp, destination)
        },
        catch: (cause) => transportError(call, cause)
      }).pipe(Effect.tapError(() => Effect.promise(() => rm(temp, { force: true }))))
    })
  }
}

/** The REST client's interface (what the `MlflowClient` service provides). */
export type MlflowClientShape = MlflowClientImpl

/** The MLflow REST client as an Effect service. */
export class MlflowClient extends Context.Service<MlflowClient, MlflowClientShape>()("@vw2/tracking/MlflowClient") {}

/** A client the caller closes (`client.close()`); fails synchronously on a tracking URI that is not http(s). */
export const makeMlflowClient = (options: MlflowClientOptions): MlflowClientShape => new MlflowClientImpl(options)

/** A client closed with its scope. */
export const makeScopedClient = (options: MlflowClientOptions): Effect.Effect<MlflowClientShape, MlflowValidationError, Scope.Scope> =>
  Effect.acquireRelease(validated(() => makeMlflowClient(options)), (client) => client.close())

export const clientLayer = (options: MlflowClientOptions): Layer.Layer<MlflowClient, MlflowValidationError> => Layer.effect(MlflowClient)(makeScopedClient(options))

const headerValue = (value: string | Array<string> | undefined): string | undefined => (Array.isArray(value) ? value[0] : value)

export { transientStatuses }
