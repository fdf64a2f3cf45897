/**
 * A typed client for MLflow's REST API (`/api/2.0/mlflow/...`, `/api/2.0/mlflow-artifacts/...`) over
 * undici. Endpoints and field names follow mlflow/server/handlers.py and service.proto (MLflow 3.17).
 * Every method rejects with a member of `MlflowError`.
 */
import { randomUUID } from "node:crypto"
import { createReadStream, createWriteStream } from "node:fs"
import { mkdir, rename, rm, stat } from "node:fs/promises"
import { basename, dirname } from "node:path"
import type { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { Agent, request, type Dispatcher } from "undici"
import { MlflowApiError, MlflowTransportError, MlflowValidationError, isErrorCode, isTransient, transientStatuses } from "./MlflowError.ts"
import { type Auth, authFromEnv, authorizationHeader } from "./internal/auth.ts"
import { type KeyValue, type WireMetric, splitLogBatch } from "./internal/batch.ts"
import { decodeDouble, decodeInt64 } from "./internal/json.ts"
import { type RetryPolicy, backoffMs, parseRetryAfter, retryPolicyFromEnv, sleep } from "./internal/retry.ts"
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

export class MlflowClient {
  readonly trackingUri: string
  readonly #authorization: string | undefined
  readonly #retry: RetryPolicy
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

  close(): Promise<void> {
    return this.#dispatcher.close()
  }

  // ---- transport -------------------------------------------------------------------------------

  async #attempt(call: Call): Promise<Dispatcher.ResponseData> {
    const url = call.external ? new URL(call.path) : new URL(this.trackingUri + call.path)
    for (const [k, v] of Object.entries(call.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v))
    const headers: Record<string, string> = { "user-agent": "vw2-tracking" }
    if (this.#authorization !== undefined && !call.external) headers.authorization = this.#authorization
    if (call.body !== undefined) headers["content-type"] = call.contentType ?? "application/json"
    try {
      return await request(url, {
        dispatcher: this.#dispatcher,
        method: call.method,
        headers,
        body: typeof call.body === "function" ? call.body() : call.body,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs
      })
    } catch (cause) {
      throw transportError(call, cause)
    }
  }

  /** The response body as text. The connection can still break after the status line (the server killed
   * mid-response): that is a transport failure too, so trackers retry or spool instead of dropping. */
  async #text(call: Call, response: Dispatcher.ResponseData): Promise<string> {
    try {
      return await response.body.text()
    } catch (cause) {
      throw transportError(call, cause)
    }
  }

  /** One call with retries; returns the successful response (body unread). */
  async #call(call: Call): Promise<Dispatcher.ResponseData> {
    for (let retry = 0; ; retry++) {
      let retryAfter: number | undefined
      let failure: MlflowApiError | MlflowTransportError
      try {
        const response = await this.#attempt(call)
        if (response.statusCode < 400) return response
        failure = await this.#apiError(call, response)
        retryAfter = parseRetryAfter(headerValue(response.headers["retry-after"]))
      } catch (error) {
        if (!(error instanceof MlflowTransportError)) throw error
        failure = error
      }
      const mayRepeat = call.retry === "idempotent" || (failure instanceof MlflowTransportError && !failure.sent)
      if (!isTransient(failure) || !mayRepeat || retry >= this.#retry.maxRetries) throw failure
      await sleep(backoffMs(this.#retry, retry + 1, retryAfter))
    }
  }

  async #apiError(call: Call, response: Dispatcher.ResponseData): Promise<MlflowApiError> {
    const text = await response.body.text().catch(() => "")
    const endpoint = `${call.method} ${call.external ? "(presigned part URL)" : call.path}`
    try {
      const parsed = JSON.parse(text) as { error_code?: unknown; message?: unknown }
      if (typeof parsed.error_code === "string")
        return new MlflowApiError({ endpoint, status: response.statusCode, errorCode: parsed.error_code, message: String(parsed.message ?? "") })
    } catch {
      // not JSON: an HTML error page from the server or a proxy in front of it
    }
    const snippet = text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300)
    return new MlflowApiError({ endpoint, status: response.statusCode, errorCode: `HTTP_${response.statusCode}`, message: snippet || `HTTP ${response.statusCode}` })
  }

  async #json<T>(call: Call): Promise<T> {
    const response = await this.#call(call)
    const text = await this.#text(call, response)
    if (text.trim() === "") return {} as T
    try {
      return JSON.parse(text) as T
    } catch {
      throw new MlflowApiError({ endpoint: `${call.method} ${call.path}`, status: response.statusCode, errorCode: "INVALID_RESPONSE", message: `expected JSON, got ${JSON.stringify(text.slice(0, 200))}` })
    }
  }

  #get<T>(path: string, query: Record<string, string | number | undefined>): Promise<T> {
    return this.#json<T>({ method: "GET", path: `/api/2.0/mlflow/${path}`, query, retry: "idempotent" })
  }

  #post<T>(path: string, body: unknown, retry: RetryMode = "idempotent"): Promise<T> {
    return this.#json<T>({ method: "POST", path: `/api/2.0/mlflow/${path}`, body: typeof body === "string" ? body : JSON.stringify(body), retry })
  }

  // ---- server ----------------------------------------------------------------------------------

  /** true when `/health` answers OK; never throws, never retries (used as a probe). */
  async health(): Promise<boolean> {
    try {
      const response = await this.#attempt({ method: "GET", path: "/health", retry: "idempotent" })
      const text = await response.body.text()
      return response.statusCode === 200 && text.trim() === "OK"
    } catch {
      return false
    }
  }

  async version(): Promise<string> {
    const call: Call = { method: "GET", path: "/version", retry: "idempotent" }
    return (await this.#text(call, await this.#call(call))).trim()
  }

  // ---- experiments -----------------------------------------------------------------------------

  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      const r = await this.#get<{ experiment: Record<string, unknown> }>("experiments/get-by-name", { experiment_name: name })
      return decodeExperiment(r.experiment)
    } catch (error) {
      if (isErrorCode(error, "RESOURCE_DOES_NOT_EXIST")) return undefined
      throw error
    }
  }

  async createExperiment(name: string, tags: Readonly<Record<string, string>> = {}): Promise<string> {
    const r = await this.#post<{ experiment_id: string }>(
      "experiments/create",
      { name, tags: Object.entries(tags).map(([key, value]) => ({ key, value })) },
      "unsent-only"
    )
    return r.experiment_id
  }

  /** Race-safe: two processes creating the same experiment both end up with its one id. A deleted
   * experiment of that name is restored, as `mlflow.set_experiment` would refuse to use it. `tags` are
   * given to a new experiment and set on an existing one that lacks them (values it has are kept). */
  async getOrCreateExperiment(name: string, tags: Readonly<Record<string, string>> = {}): Promise<string> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await this.getExperimentByName(name)
      if (existing !== undefined) {
        if (existing.lifecycleStage === "deleted") await this.#post("experiments/restore", { experiment_id: existing.experimentId })
        for (const [key, value] of Object.entries(tags)) {
          if (existing.tags[key] === undefined) await this.setExperimentTag(existing.experimentId, key, value)
        }
        return existing.experimentId
      }
      try {
        return await this.createExperiment(name, tags)
      } catch (error) {
        // lost the race (or our create went through before a transient failure): look it up again
        if (!isErrorCode(error, "RESOURCE_ALREADY_EXISTS") && !isTransient(error)) throw error
      }
    }
    throw new MlflowApiError({ endpoint: "experiments/create", status: 409, errorCode: "RESOURCE_ALREADY_EXISTS", message: `could not get or create experiment ${JSON.stringify(name)}` })
  }

  async setExperimentTag(experimentId: string, key: string, value: string): Promise<void> {
    validateKey("tag", key)
    await this.#post("experiments/set-experiment-tag", { experiment_id: experimentId, key, value })
  }

  /** Every experiment (active only by default), across pages. */
  async searchExperiments(options: { readonly filter?: string; readonly viewType?: "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL" } = {}): Promise<Array<Experiment>> {
    const out: Array<Experiment> = []
    let token: string | undefined
    do {
      const r = await this.#post<{ experiments?: Array<Record<string, unknown>>; next_page_token?: string }>("experiments/search", {
        max_results: 1000,
        filter: options.filter,
        view_type: options.viewType ?? "ACTIVE_ONLY",
        page_token: token
      })
      out.push(...(r.experiments ?? []).map(decodeExperiment))
      token = r.next_page_token || undefined
    } while (token !== undefined)
    return out
  }

  // ---- runs ------------------------------------------------------------------------------------

  /**
   * Creates a run. runs/create is not idempotent, so it is never blindly repeated: each request carries
   * a unique `vw2.create_token` tag, and after an ambiguous failure the client first searches for a run
   * with that token before trying again.
   */
  async createRun(request: {
    readonly experimentId: string
    readonly runName?: string
    readonly startTime?: number
    readonly userId?: string
    readonly tags?: Readonly<Record<string, string>>
    /** unique per logical create (default: random); a tracker replaying a create passes the same one */
    readonly createToken?: string
  }): Promise<RunInfo> {
    const token = request.createToken ?? randomUUID()
    const tags = { ...request.tags, "vw2.create_token": token }
    for (const key of Object.keys(tags)) validateKey("tag", key)
    const body = JSON.stringify({
      experiment_id: request.experimentId,
      run_name: request.runName,
      start_time: request.startTime ?? Date.now(),
      user_id: request.userId,
      tags: Object.entries(tags).map(([key, value]) => ({ key, value: truncateValue("tag", key, value, limits.tagValueLength, this.#warn) }))
    })
    for (let retry = 0; ; retry++) {
      try {
        const r = await this.#post<{ run: { info: Record<string, unknown> } }>("runs/create", body, "unsent-only")
        return decodeRunInfo(r.run.info)
      } catch (error) {
        if (!isTransient(error) || retry >= this.#retry.maxRetries) throw error
        await sleep(backoffMs(this.#retry, retry + 1, undefined))
        const created = await this.searchRuns({
          experimentIds: [request.experimentId],
          filter: `tags.\`vw2.create_token\` = '${token}'`,
          runViewType: "ALL",
          maxResults: 1
        }).catch(() => [])
        if (created[0] !== undefined) return created[0].info
      }
    }
  }

  async updateRun(runId: string, update: { readonly status?: MlflowRunStatus; readonly endTime?: number; readonly runName?: string }): Promise<void> {
    await this.#post("runs/update", { run_id: runId, status: update.status, end_time: update.endTime, run_name: update.runName })
  }

  async getRun(runId: string): Promise<Run> {
    const r = await this.#get<{ run: Parameters<typeof decodeRun>[0] }>("runs/get", { run_id: runId })
    return decodeRun(r.run)
  }

  /** One page of runs/search. */
  async searchRunsPage(req: SearchRunsRequest, pageToken?: string): Promise<{ runs: Array<Run>; nextPageToken: string | undefined }> {
    const r = await this.#post<{ runs?: Array<Parameters<typeof decodeRun>[0]>; next_page_token?: string }>("runs/search", {
      experiment_ids: req.experimentIds,
      filter: req.filter,
      run_view_type: req.runViewType ?? "ACTIVE_ONLY",
      max_results: Math.min(req.pageSize ?? 1000, req.maxResults ?? Number.POSITIVE_INFINITY),
      order_by: req.orderBy,
      page_token: pageToken
    })
    return { runs: (r.runs ?? []).map(decodeRun), nextPageToken: r.next_page_token || undefined }
  }

  /** All matching runs across pages, each run once: offset-based pages can repeat a run when runs are
   * created while paging, so results are de-duplicated by run id. */
  async searchRuns(req: SearchRunsRequest): Promise<Array<Run>> {
    const seen = new Set<string>()
    const runs: Array<Run> = []
    const max = req.maxResults ?? Number.POSITIVE_INFINITY
    let token: string | undefined
    do {
      const page = await this.searchRunsPage(req, token)
      for (const run of page.runs) {
        if (seen.has(run.info.runId)) continue
        seen.add(run.info.runId)
        runs.push(run)
        if (runs.length >= max) return runs
      }
      token = page.nextPageToken
    } while (token !== undefined)
    return runs
  }

  /**
   * Logs metrics, params and tags, split into as many runs/log-batch requests as MLflow's limits need.
   * Keys are validated here (a bad key throws `MlflowValidationError` before anything is sent); values
   * over MLflow's length limits are truncated with a warning. Returns the number of requests sent.
   */
  async logBatch(
    runId: string,
    entities: { readonly metrics?: ReadonlyArray<WireMetric>; readonly params?: ReadonlyArray<KeyValue>; readonly tags?: ReadonlyArray<KeyValue> }
  ): Promise<number> {
    const bodies = this.prepareLogBatch(runId, entities)
    for (const body of bodies) await this.sendLogBatch(body)
    return bodies.length
  }

  /** Validated, truncated, split request bodies for `sendLogBatch` (lets callers pipeline requests). */
  prepareLogBatch(
    runId: string,
    entities: { readonly metrics?: ReadonlyArray<WireMetric>; readonly params?: ReadonlyArray<KeyValue>; readonly tags?: ReadonlyArray<KeyValue> }
  ): Array<string> {
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
  async sendLogBatch(body: string): Promise<void> {
    await this.#post("runs/log-batch", body)
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    validateKey("tag", key)
    await this.#post("runs/set-tag", { run_id: runId, key, value: truncateValue("tag", key, value, limits.tagValueLength, this.#warn) })
  }

  async deleteTag(runId: string, key: string): Promise<void> {
    await this.#post("runs/delete-tag", { run_id: runId, key })
  }

  /** Every point of one metric, across pages. */
  async getMetricHistory(runId: string, key: string): Promise<Array<MetricValue>> {
    const points: Array<MetricValue> = []
    let token: string | undefined
    do {
      const r = await this.#get<{ metrics?: Array<Parameters<typeof decodeMetric>[0]>; next_page_token?: string }>("metrics/get-history", {
        run_id: runId,
        metric_key: key,
        max_results: 25_000,
        page_token: token
      })
      for (const m of r.metrics ?? []) points.push(decodeMetric(m))
      token = r.next_page_token || undefined
    } while (token !== undefined)
    return points
  }

  // ---- artifacts (mlflow-artifacts proxy) --------------------------------------------------------

  // ---- logged models and the model registry (MLflow 3) ------------------------------------------

  /** Creates a logged model (status PENDING) whose artifacts live under its own `artifactUri`. Not
   * idempotent: not repeated after an ambiguous failure (a PENDING orphan is harmless, a duplicate READY
   * one is not). */
  async createLoggedModel(request: {
    readonly experimentId: string
    readonly name: string
    readonly sourceRunId?: string
    readonly modelType?: string
    readonly tags?: Readonly<Record<string, string>>
    readonly params?: Readonly<Record<string, string>>
  }): Promise<LoggedModel> {
    const kv = (r: Readonly<Record<string, string>> | undefined) => Object.entries(r ?? {}).map(([key, value]) => ({ key, value }))
    const r = await this.#post<{ model: { info: Record<string, unknown> } }>("logged-models", {
      experiment_id: request.experimentId,
      name: request.name,
      source_run_id: request.sourceRunId,
      model_type: request.modelType,
      tags: kv(request.tags),
      params: kv(request.params)
    }, "unsent-only")
    return decodeLoggedModel(r.model)
  }

  async getLoggedModel(modelId: string): Promise<LoggedModel> {
    const r = await this.#json<{ model: { info: Record<string, unknown> } }>({ method: "GET", path: `/api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}`, retry: "idempotent" })
    return decodeLoggedModel(r.model)
  }

  /** Marks a logged model READY (its artifacts are complete) or UPLOAD_FAILED. */
  async finalizeLoggedModel(modelId: string, status: "READY" | "UPLOAD_FAILED"): Promise<LoggedModel> {
    // LoggedModelStatus in service.proto: PENDING = 1, READY = 2, UPLOAD_FAILED = 3
    const r = await this.#json<{ model: { info: Record<string, unknown> } }>({
      method: "PATCH",
      path: `/api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}`,
      body: JSON.stringify({ model_id: modelId, status: status === "READY" ? 2 : 3 }),
      retry: "idempotent"
    })
    return decodeLoggedModel(r.model)
  }

  /** Records logged models as outputs of a run (the run page lists them under "Logged models"). */
  async logRunOutputs(runId: string, models: ReadonlyArray<{ readonly modelId: string; readonly step?: number }>): Promise<void> {
    await this.#post("runs/outputs", { run_id: runId, models: models.map((m) => ({ model_id: m.modelId, step: m.step ?? 0 })) })
  }

  /** Creates a registered model; one that exists already is fine. */
  async ensureRegisteredModel(name: string): Promise<void> {
    try {
      await this.#post("registered-models/create", { name }, "unsent-only")
    } catch (error) {
      if (!isErrorCode(error, "RESOURCE_ALREADY_EXISTS")) throw error
    }
  }

  /** A new version of registered model `name` from `source` (`runs:/…`, an artifact URI, or `models:/<model id>`). */
  async createModelVersion(request: { readonly name: string; readonly source: string; readonly runId?: string; readonly modelId?: string; readonly description?: string }): Promise<ModelVersion> {
    const r = await this.#post<{ model_version: Record<string, unknown> }>("model-versions/create", {
      name: request.name,
      source: request.source,
      run_id: request.runId,
      model_id: request.modelId,
      description: request.description
    }, "unsent-only")
    return decodeModelVersion(r.model_version)
  }

  async searchModelVersions(filter: string): Promise<Array<ModelVersion>> {
    const r = await this.#get<{ model_versions?: Array<Record<string, unknown>> }>("model-versions/search", { filter, max_results: 1000 })
    return (r.model_versions ?? []).map(decodeModelVersion)
  }

  /**
   * Uploads one file to `artifactPath` under the run's artifact root, streamed from disk. Files above the
   * multipart threshold try the proxy's multipart upload first and fall back to a single streamed PUT
   * when the server's artifact store does not support it (NOT_IMPLEMENTED, e.g. a local directory).
   */
  async uploadArtifact(artifactUri: string, localPath: string, artifactPath: string): Promise<void> {
    checkArtifactPath(artifactPath)
    const root = proxiedArtifactRoot(artifactUri)
    const size = (await stat(localPath)).size
    if (size >= this.#multipartThreshold && this.#multipartSupported !== false) {
      if (await this.#multipartUpload(root, localPath, artifactPath, size)) return
    }
    await this.#call({
      method: "PUT",
      path: `/api/2.0/mlflow-artifacts/artifacts/${encodePath(`${root}/${artifactPath}`)}`,
      body: () => createReadStream(localPath),
      contentType: mimeType(artifactPath),
      retry: "idempotent"
    }).then((r) => r.body.dump())
  }

  /** true when uploaded by multipart; false when the server does not support it. */
  async #multipartUpload(root: string, localPath: string, artifactPath: string, size: number): Promise<boolean> {
    const dir = artifactPath.includes("/") ? `${root}/${artifactPath.slice(0, artifactPath.lastIndexOf("/"))}` : root
    const name = basename(artifactPath)
    const chunk = this.#multipartChunk
    const numParts = Math.max(1, Math.ceil(size / chunk))
    const mpu = (action: string, body: unknown) =>
      this.#json<any>({ method: "POST", path: `/api/2.0/mlflow-artifacts/mpu/${action}/${encodePath(dir)}`, body: JSON.stringify(body), retry: "idempotent" })
    let created: { upload_id?: string; credentials?: Array<{ part_number: number; url: string; headers?: Record<string, string> }> }
    try {
      created = await mpu("create", { path: name, num_parts: numParts })
    } catch (error) {
      if (isErrorCode(error, "NOT_IMPLEMENTED")) {
        this.#multipartSupported = false
        return false
      }
      throw error
    }
    this.#multipartSupported = true
    try {
      const parts: Array<{ part_number: number; etag: string; url: string }> = []
      for (const [index, credential] of (created.credentials ?? []).entries()) {
        const start = index * chunk
        const response = await this.#call({
          method: "PUT",
          path: credential.url,
          external: true,
          body: () => createReadStream(localPath, { start, end: Math.min(size, start + chunk) - 1 }),
          contentType: "application/octet-stream",
          retry: "idempotent"
        })
        await response.body.dump()
        parts.push({ part_number: credential.part_number, etag: headerValue(response.headers.etag) ?? "", url: credential.url })
      }
      await mpu("complete", { path: name, upload_id: created.upload_id, parts })
      return true
    } catch (error) {
      await mpu("abort", { path: name, upload_id: created.upload_id }).catch(() => undefined)
      throw error
    }
  }

  /** Files and directories directly under `path` (relative to the run's artifact root). */
  async listArtifacts(artifactUri: string, path?: string): Promise<Array<ArtifactFile>> {
    if (path !== undefined && path !== "") checkArtifactPath(path)
    const root = proxiedArtifactRoot(artifactUri)
    const r = await this.#json<{ files?: Array<{ path: string; is_dir?: boolean; file_size?: unknown }> }>({
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
  }

  /** Streams one artifact to `destination` (written to a temp name, renamed when complete). */
  async downloadArtifact(artifactUri: string, path: string, destination: string): Promise<void> {
    checkArtifactPath(path)
    const root = proxiedArtifactRoot(artifactUri)
    await mkdir(dirname(destination), { recursive: true })
    const temp = `${destination}.${process.pid}.part`
    try {
      const response = await this.#call({ method: "GET", path: `/api/2.0/mlflow-artifacts/artifacts/${encodePath(`${root}/${path}`)}`, retry: "idempotent" })
      await pipeline(response.body, createWriteStream(temp))
      await rename(temp, destination)
    } catch (error) {
      await rm(temp, { force: true })
      throw error
    }
  }
}

const headerValue = (value: string | Array<string> | undefined): string | undefined => (Array.isArray(value) ? value[0] : value)

export { transientStatuses }
