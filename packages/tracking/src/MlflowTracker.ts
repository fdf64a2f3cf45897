/**
 * The MLflow implementation of core's Tracker service, as Effect services (docs/engine.md, "Observers and
 * tracking").
 *
 * Everything the engine reports becomes a record offered to one Effect `Queue`, consumed in order by a
 * delivery fiber (metrics of consecutive records coalesced into log-batch requests, a few in flight at
 * once; each request retried on MLflow's schedule by the client). When the server cannot be reached, the
 * undelivered records and every later one go to the on-disk spool (`Spool.ts`) instead, and a recovery
 * fiber replays the spool in order once `/health` answers again, probing on an exponential `Schedule`.
 * Nothing here ever fails the pipeline: problems become warnings.
 *
 * The server may still be starting when the tracker is made (`trackingUri` given as an effect, e.g. the
 * embedded server's start): the tracker is usable at once, records spool while the server starts and are
 * replayed once it answers; `state()` says which of starting / up / spooling / degraded holds. A server
 * that never comes up leaves everything spooled for the next run.
 *
 * Run ids: a run's create is delivered before `start*Run` returns when the server is up, so the engine
 * gets the real MLflow run id. While spooling it gets a provisional `pending-<uuid>` id instead; the
 * mapping to the real id is recorded in VW2_HOME when the create is replayed, and later records (also
 * `vw2.cache = hit:pending-…` tags written by a later process) are translated through it.
 */
import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Queue, Schedule, type Scope, Semaphore } from "effect"
import { Tracker as CoreTracker } from "@vw2/core"
import type { MetricPoint } from "@vw2/core"
import { type MlflowClientOptions, type MlflowClientShape, makeMlflowClient } from "./MlflowClient.ts"
import { type MlflowError, isErrorCode, isTransient } from "./MlflowError.ts"
import { encodeDouble, decodeDouble } from "./internal/json.ts"
import { Spool, isProcessAlive } from "./Spool.ts"
import { invalidKeyReason, limits } from "./Validation.ts"

type RunStatus = CoreTracker.RunStatus

/** A record as queued and spooled (plain JSON). */
export type TrackingRecord =
  | {
    readonly t: "create"
    readonly ref: string
    readonly experiment: string
    readonly parent: string | undefined
    readonly runName: string
    readonly startTime: number
    readonly tags: Readonly<Record<string, string>>
    readonly params: Readonly<Record<string, string>>
  }
  /** points as [key, value (number or "NaN"/"Infinity"/"-Infinity"), step, timestamp] */
  | { readonly t: "metrics"; readonly ref: string; readonly points: ReadonlyArray<readonly [string, number | string, number, number]> }
  | { readonly t: "tags"; readonly ref: string; readonly tags: Readonly<Record<string, string>> }
  | { readonly t: "artifact"; readonly ref: string; readonly localPath: string; readonly artifactPath: string; readonly blob: boolean }
  | { readonly t: "end"; readonly ref: string; readonly status: RunStatus; readonly endTime: number }
  /** an output logged as an MLflow 3 logged model of run `ref` (files uploaded under the model's own root) */
  | {
    readonly t: "model"
    readonly ref: string
    readonly name: string
    readonly kind: string
    readonly files: ReadonlyArray<{ readonly localPath: string; readonly artifactPath: string }>
    readonly tags: Readonly<Record<string, string>>
    readonly blob: boolean
  }
  /** a new version of registered model `name` from the logged model `output` of run `ref` */
  | { readonly t: "register"; readonly ref: string; readonly name: string; readonly output: string }

/** An output to keep as an MLflow logged model (a checkpoint): its files, paths relative to the model's root. */
export type ModelUpload = CoreTracker.ModelUpload

/** The run tag that names the logged model of an output. */
export const modelTag = (output: string) => `vw2.model.${output}`

/** One queued item: a record, or a flush barrier (no record) that settles once everything before it has. */
interface Queued {
  readonly record?: TrackingRecord
  /** called once the record is delivered (with the run id for creates) or spooled (undefined) */
  readonly settle?: (runId: string | undefined) => void
}

/**
 * Where the tracker stands: `starting` (the server is being started; records spool), `up` (delivering),
 * `spooling` (the server stopped answering; records spool and are replayed when it is back), `degraded`
 * (no server could be had: everything is spooled for the next run).
 */
export type TrackerState = "starting" | "up" | "spooling" | "degraded"

export interface MlflowTrackerOptions {
  /** the server's URL, or an effect that yields it once the server answers (e.g. starting the embedded
   * server): the tracker does not wait for it; records spool meanwhile and are replayed when it is up */
  readonly trackingUri: string | Effect.Effect<string, unknown>
  /** VW2_HOME: spool, run-id map and open-run records live under `<home>/tracking` */
  readonly home: string
  readonly client?: Omit<MlflowClientOptions, "trackingUri">
  /** log-batch requests in flight at once */
  readonly concurrency?: number
  /** where warnings go (default: stderr) */
  readonly warn?: (message: string) => void
  /** first/maximum delay between /health probes while the server is unreachable */
  readonly probeMs?: { readonly min: number; readonly max: number }
  /** metric points held in memory before the backlog moves to the spool (bounds memory when stages
   * log faster than the server ingests; default 1,000,000 ≈ 100 MB) */
  readonly maxQueuedPoints?: number
}

/** The MLflow tracker: core's TrackerShape with models, its state and the ids it resolved. */
export interface MlflowTrackerShape extends CoreTracker.TrackerShape {
  readonly logModel: (run: string, model: ModelUpload) => Effect.Effect<void>
  readonly registerModel: (name: string, run: string, output: string) => Effect.Effect<string | undefined>
  readonly state: () => TrackerState
  /** The real MLflow run id behind an id this tracker handed out (provisional ids resolve once replayed). */
  readonly resolveRunId: (id: string) => string | undefined
  /** how many times a metric backlog was moved from memory to the spool */
  readonly spills: () => number
}

const pendingPrefix = "pending-"
const hitPending = /^hit:(pending-[0-9a-f-]+)$/

const gitCommit = (): string | undefined => {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5000 }).trim() || undefined
  } catch {
    return undefined
  }
}

const userName = (): string => {
  try {
    return os.userInfo().username
  } catch {
    return process.env.USER ?? "unknown"
  }
}


interface OpenRunRecord {
  readonly ref: string
  readonly pid: number
  /** "" when written while the server was still starting (then: this tracker's server) */
  readonly trackingUri: string
  readonly startedAt: number
  /** absent in records written before vw2 kept them (then: this host, look the run up everywhere) */
  readonly experiment?: string
  readonly host?: string
  readonly boot?: string
  readonly pidns?: string
}

/** Which view the MLflow UI opens an experiment in (MLflow 3: `mlflow.experimentKind`; docs/engine.md, "Observers and tracking"). */
export const experimentKindTag = { "mlflow.experimentKind": "custom_model_development" } as const
/** The UI query that opens an experiment's model-training view: MLflow 3.17 takes the view from the URL's
 * `workflowType` (or the browser's last choice, GenAI by default) rather than from the experiment's tag. */
const trainingView = "?workflowType=machine_learning"

/** This boot of this machine: a pid is only meaningful within one boot. */
const bootToken = ((): string => {
  try {
    return fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()
  } catch {
    // no /proc (macOS): the boot time, to the minute
    return `t${Math.round((Date.now() / 1000 - os.uptime()) / 60)}`
  }
})()

/** This process's pid namespace: a container sharing the host's name and kernel has pids of its own. */
const pidNamespace = ((): string => {
  try {
    return fs.readlinkSync("/proc/self/ns/pid").replace(/\D/g, "")
  } catch {
    return "-"
  }
})()

/**
 * The driver process of a run, as the `vw2.driver` tag on every run: the next vw2 process on the same
 * host closes RUNNING runs whose driver is gone (kill -9, power loss), whatever experiment or VW2_HOME
 * they belong to.
 */
export const driverTag = (): string => `host=${os.hostname()} pid=${process.pid} boot=${bootToken} pidns=${pidNamespace}`
const driverPattern = /^host=(\S+) pid=(\d+) boot=(\S+) pidns=(\S+)$/

interface Driver {
  readonly host?: string | undefined
  readonly pid: number
  readonly boot?: string | undefined
  readonly pidns?: string | undefined
}

/**
 * Whether a driver process is gone: true or false where this process can tell, undefined where it cannot
 * (another host or container). Another boot means dead for an open-run record of this VW2_HOME (the machine
 * rebooted); for a tag found on the server it may as well be another machine of the same name.
 */
const driverIsDead = (driver: Driver, anotherBoot: "dead" | "unknown"): boolean | undefined => {
  if (driver.host !== undefined && driver.host !== os.hostname()) return undefined
  if (driver.boot !== undefined && driver.boot !== bootToken) return anotherBoot === "dead" ? true : undefined
  if (driver.pidns !== undefined && driver.pidns !== pidNamespace) return undefined
  return !isProcessAlive(driver.pid)
}

const parseDriverTag = (tag: string | undefined) => {
  const m = tag === undefined ? null : driverPattern.exec(tag)
  return m === null ? undefined : { host: m[1]!, pid: Number(m[2]), boot: m[3]!, pidns: m[4]! }
}


/**
 * The tracker, its fibers and its files, closed with the scope: a closing tracker flushes, and whatever
 * was not delivered stays in the spool for the next run.
 */
export const make = (options: MlflowTrackerOptions): Effect.Effect<MlflowTrackerShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const warn = options.warn ?? ((message: string) => process.stderr.write(`[vw2 tracking] ${message}\n`))
    const dir = path.join(options.home, "tracking")
    fs.mkdirSync(path.join(dir, "open-runs"), { recursive: true })
    fs.mkdirSync(path.join(dir, "blobs"), { recursive: true })
    const spool = new Spool<TrackingRecord>(path.join(dir, "spool"))
    const concurrency = options.concurrency ?? 8
    const probe = options.probeMs ?? { min: 250, max: 5000 }
    const maxQueuedPoints = options.maxQueuedPoints ?? 1_000_000
    const scope = yield* Effect.scope

    const queue = yield* Queue.unbounded<Queued>()
    /** held while records go to the server: a replay never overtakes a group in flight */
    const delivering = yield* Semaphore.make(1)
    /** wakes the recovery fiber (offered from synchronous code) */
    const recoverSignal = yield* Queue.unbounded<void>()
    /** done once the server answered, or could not be had */
    const started = yield* Deferred.make<void>()

    let client: MlflowClientShape | undefined
    let trackingUri = typeof options.trackingUri === "string" ? options.trackingUri.replace(/\/+$/, "") : undefined
    let phase: "starting" | "connected" | "failed" = "starting"
    /** records go to the spool, not the queue: until the server has answered, and while it does not */
    let spooling = true
    /** spooling because the server failed (not merely because of a backlog) */
    let unreachableNow = false
    let closed = false
    let queuedPoints = 0
    let spilled = 0
    /** taken off the queue by the delivery fiber, not yet delivered (spooled, in order, on a failure) */
    let pending: Array<Queued> = []
    let inFlight: ReadonlyArray<Queued> = []

    /** provisional ref → real run id (persisted in run-ids.jsonl) */
    const runIds = loadRunIds(dir)
    /** real run id → artifact uri, experiment id */
    const runInfo = new Map<string, { artifactUri: string; experimentId: string }>()
    const experimentIds = new Map<string, string>()
    const experimentOfRef = new Map<string, string>()
    /** ids handed to the engine (real or provisional) → the run's provisional ref (open-run record name) */
    const refOf = new Map<string, string>()
    const failedRefs = new Set<string>()
    const badKeys = new Set<string>()
    const validKeys = new Set<string>()
    let firstExperimentUrl: string | undefined
    /** RUNNING runs of dead drivers on this host were looked for (once per process) */
    let sweptDeadDrivers = false

    const rememberRunId = (ref: string, runId: string): void => {
      runIds.set(ref, runId)
      fs.appendFileSync(path.join(dir, "run-ids.jsonl"), JSON.stringify({ ref, runId }) + "\n")
    }

    const keyOk = (kind: "metric" | "tag" | "param", key: string): boolean => {
      if (validKeys.has(key)) return true
      if (badKeys.has(key)) return false
      const reason = invalidKeyReason(key)
      if (reason === undefined) {
        validKeys.add(key)
        return true
      }
      badKeys.add(key)
      warn(`dropping ${kind} ${JSON.stringify(key)}: ${reason}`)
      return false
    }

    // ---- spooling ----------------------------------------------------------------------------------

    const forgetOpenRun = (id: string): void => {
      const ref = refOf.get(id) ?? id
      fs.rmSync(path.join(dir, "open-runs", `${ref}.json`), { force: true })
    }

    /** A copy of a file in the spool's blobs (the original may move once the engine gets control back). */
    const blobOf = (localPath: string): string => {
      const blob = path.join(dir, "blobs", `${randomUUID()}-${path.basename(localPath)}`)
      fs.copyFileSync(localPath, blob)
      return blob
    }

    const spoolable = (record: TrackingRecord): TrackingRecord | undefined => {
      if (record.t === "artifact" && !record.blob) {
        try {
          return { ...record, localPath: blobOf(record.localPath), blob: true }
        } catch (error) {
          warn(`artifact ${record.localPath} could not be spooled: ${(error as Error).message}`)
          return undefined
        }
      }
      if (record.t === "model" && !record.blob) {
        const files: Array<{ localPath: string; artifactPath: string }> = []
        try {
          for (const file of record.files) files.push({ localPath: blobOf(file.localPath), artifactPath: file.artifactPath })
          return { ...record, files, blob: true }
        } catch (error) {
          for (const file of files) fs.rmSync(file.localPath, { force: true })
          warn(`model ${record.name} could not be spooled: ${(error as Error).message}`)
          return undefined
        }
      }
      return record
    }

    /** Writes items to the spool (synchronously: their order holds across a crash) and settles them. */
    const spoolItems = (items: ReadonlyArray<Queued>): void => {
      const records = items.flatMap(({ record }) => {
        const r = record === undefined ? undefined : spoolable(record)
        return r === undefined ? [] : [r]
      })
      try {
        spool.append(records)
      } catch (error) {
        warn(`spool write failed, ${records.length} tracking records lost: ${(error as Error).message}`)
      }
      for (const record of records) if (record.t === "end") forgetOpenRun(record.ref)
      for (const item of items) item.settle?.(undefined)
    }

    /** Everything not yet delivered, oldest first, taken out of memory (the caller spools it). */
    const takeUndelivered = (includeInFlight: boolean): Array<Queued> => {
      const items = [...(includeInFlight ? inFlight : []), ...pending]
      if (includeInFlight) inFlight = []
      pending = []
      for (let taken = Queue.takeUnsafe(queue); taken !== undefined && Exit.isSuccess(taken); taken = Queue.takeUnsafe(queue)) items.push(taken.value)
      queuedPoints = 0
      return items
    }

    const startRecovery = () => Queue.offerUnsafe(recoverSignal, undefined)

    /** The server failed: `items` and everything behind them go to the spool, in order. */
    const enterSpooling = (items: ReadonlyArray<Queued>, why: string): void => {
      if (!unreachableNow && phase !== "failed") warn(`tracking degraded (${why}); records are spooled under ${spool.dir} and replayed when the server is back`)
      spooling = true
      unreachableNow = true
      spoolItems(items)
      startRecovery()
    }

    const enqueue = (item: Queued): void => {
      if (closed && item.record !== undefined) warn(`tracker already closed; spooling a late ${item.record.t} record`)
      if (spooling || closed) return spoolItems([item])
      Queue.offerUnsafe(queue, item)
      if (item.record?.t !== "metrics") return
      queuedPoints += item.record.points.length
      // (not while a create/end/artifact is in flight: if it failed it would land behind the backlog)
      if (queuedPoints > maxQueuedPoints && inFlight.every((i) => i.record?.t === "metrics" || i.record?.t === "tags")) {
        // the server ingests slower than stages log: keep memory bounded, deliver from disk
        spilled++
        spooling = true
        spoolItems(takeUndelivered(false))
        startRecovery()
      }
    }

    /** Records still in memory when the process exits are spooled, not lost (process.exit, fatal errors). */
    const spoolEverything = (): void => {
      const items = takeUndelivered(true)
      if (items.some((i) => i.record !== undefined)) enterSpooling(items, "process exiting with undelivered records")
      else spoolItems(items)
    }
    process.on("exit", spoolEverything)

    // ---- delivery ----------------------------------------------------------------------------------

    const api = (): MlflowClientShape => {
      if (client === undefined) throw new Error("tracking server not known yet") // delivery starts only once it is
      return client
    }

    /** The real run id for a ref, undefined when its create failed or never happened. */
    const resolve = (ref: string): string | undefined => {
      if (ref.startsWith("local-")) return undefined // a run this tracker could not record at all
      if (!ref.startsWith(pendingPrefix)) return ref
      if (failedRefs.has(ref)) return undefined
      const id = runIds.get(ref)
      if (id === undefined) warn(`records for run ${ref} arrived without its create; dropped`)
      return id
    }

    const translateTagValue = (value: string): string => {
      if (value.startsWith(pendingPrefix)) return runIds.get(value) ?? value
      const m = hitPending.exec(value)
      if (m !== null) {
        const id = runIds.get(m[1]!)
        return id === undefined ? value : `hit:${id}`
      }
      return value
    }

    const runInfoOf = (runId: string) =>
      Effect.gen(function*() {
        const known = runInfo.get(runId)
        if (known !== undefined) return known
        const run = yield* api().getRun(runId)
        const info = { artifactUri: run.info.artifactUri, experimentId: run.info.experimentId }
        runInfo.set(runId, info)
        return info
      })

    /** Metrics and tags of consecutive records, coalesced per run into log-batch requests, `concurrency`
     * in flight. Bodies are prepared lazily by the sending fibers, so the first request leaves before the
     * whole group is serialised. Fails only when the server is unreachable: re-sending the whole group
     * later is safe (MLflow de-duplicates identical metric points and tags). */
    const deliverLogs = (records: ReadonlyArray<TrackingRecord>) => {
      type Entry = { metrics: Array<{ key: string; value: number; step: number; timestamp: number }>; tags: Array<{ key: string; value: string }> }
      const byRun = new Map<string, Entry>()
      for (const r of records) {
        if (r.t !== "metrics" && r.t !== "tags") continue
        const runId = resolve(r.ref)
        if (runId === undefined) continue
        let entry = byRun.get(runId)
        if (entry === undefined) byRun.set(runId, entry = { metrics: [], tags: [] })
        if (r.t === "metrics") for (const [key, value, step, timestamp] of r.points) entry.metrics.push({ key, value: typeof value === "number" ? value : decodeDouble(value), step, timestamp })
        else for (const [key, value] of Object.entries(r.tags)) entry.tags.push({ key, value: translateTagValue(value) })
      }
      const jobs: Array<{ runId: string } & Entry> = []
      for (const [runId, entry] of byRun) {
        if (entry.metrics.length === 0) jobs.push({ runId, metrics: [], tags: entry.tags })
        for (let i = 0; i < entry.metrics.length; i += limits.metricsPerBatch) {
          jobs.push({ runId, metrics: entry.metrics.slice(i, i + limits.metricsPerBatch), tags: i === 0 ? entry.tags : [] })
        }
      }
      return Effect.forEach(jobs, ({ runId, metrics, tags }) =>
        Effect.suspend(() => {
          let bodies: Array<string>
          try {
            bodies = api().prepareLogBatch(runId, { metrics, tags })
          } catch (error) {
            warn(`metrics/tags for run ${runId} not logged: ${(error as Error).message}`)
            return Effect.void
          }
          return Effect.forEach(bodies, (body) =>
            api().sendLogBatch(body).pipe(
              Effect.catchIf((error) => !isTransient(error), (error) => Effect.sync(() => warn(`MLflow rejected metrics/tags for run ${runId}: ${error.message}`)))
            ), { discard: true })
        }), { concurrency, discard: true })
    }

    const deliverCreate = (record: Extract<TrackingRecord, { t: "create" }>, replaying: boolean) =>
      Effect.gen(function*() {
        const known = runIds.get(record.ref)
        if (known !== undefined) return known // created before a crash cut the replay short
        let experimentId = experimentIds.get(record.experiment)
        if (experimentId === undefined) {
          experimentId = yield* api().getOrCreateExperiment(record.experiment, experimentKindTag)
          experimentIds.set(record.experiment, experimentId)
          firstExperimentUrl ??= `${trackingUri}/#/experiments/${experimentId}${trainingView}`
        }
        const tags: Record<string, string> = {}
        for (const [key, value] of Object.entries(record.tags)) tags[key] = translateTagValue(value)
        if (record.parent !== undefined) {
          const parentId = resolve(record.parent)
          if (parentId === undefined) warn(`run ${record.runName}: its parent run was never created; logging it at top level`)
          else tags["mlflow.parentRunId"] = parentId
        }
        let runId: string | undefined
        if (replaying) {
          // a create cut short by a crash may have reached the server: find it by its token first
          const found = yield* api().searchRuns({ experimentIds: [experimentId], filter: `tags.\`vw2.create_token\` = '${record.ref}'`, runViewType: "ALL", maxResults: 1 })
          runId = found[0]?.info.runId
          if (found[0] !== undefined) runInfo.set(found[0].info.runId, { artifactUri: found[0].info.artifactUri, experimentId })
        }
        if (runId === undefined) {
          const info = yield* api().createRun({ experimentId, runName: record.runName, startTime: record.startTime, ...(tags["mlflow.user"] === undefined ? {} : { userId: tags["mlflow.user"] }), tags, createToken: record.ref })
          runId = info.runId
          runInfo.set(runId, { artifactUri: info.artifactUri, experimentId })
        }
        rememberRunId(record.ref, runId)
        const params = Object.entries(record.params).map(([key, value]) => ({ key, value }))
        if (params.length > 0) yield* api().logBatch(runId, { params })
        return runId
      })

    const deliverArtifact = (record: Extract<TrackingRecord, { t: "artifact" }>) =>
      Effect.gen(function*() {
        const runId = resolve(record.ref)
        if (runId === undefined) return
        const info = yield* runInfoOf(runId)
        if (!fs.existsSync(record.localPath)) return warn(`artifact ${record.localPath} is gone; not uploaded`)
        yield* api().uploadArtifact(info.artifactUri, record.localPath, record.artifactPath)
        if (record.blob) fs.rmSync(record.localPath, { force: true })
      })

    const deliverModel = (record: Extract<TrackingRecord, { t: "model" }>) =>
      Effect.gen(function*() {
        const runId = resolve(record.ref)
        if (runId === undefined) return
        const gone = record.files.filter((f) => !fs.existsSync(f.localPath))
        if (gone.length > 0) return warn(`model ${record.name}: ${gone[0]!.localPath} is gone; not logged`)
        const { experimentId } = yield* runInfoOf(runId)
        // A crash between create and READY leaves a PENDING model that the replay does not reuse: the UI shows
        // it as pending, never as a usable model.
        const model = yield* api().createLoggedModel({ experimentId, name: record.name.replace(/[/:.%"']/g, "-"), sourceRunId: runId, modelType: record.kind, tags: record.tags })
        yield* Effect.forEach(record.files, (file) => api().uploadArtifact(model.artifactUri, file.localPath, file.artifactPath), { discard: true }).pipe(
          Effect.tapError((error) => (isTransient(error) ? Effect.void : Effect.ignore(api().finalizeLoggedModel(model.modelId, "UPLOAD_FAILED"))))
        )
        yield* api().finalizeLoggedModel(model.modelId, "READY")
        yield* api().logRunOutputs(runId, [{ modelId: model.modelId }])
        const output = record.tags["vw2.output"]
        if (output !== undefined) yield* api().setTag(runId, modelTag(output), model.modelId)
        if (record.blob) for (const file of record.files) fs.rmSync(file.localPath, { force: true })
      })

    const deliverRegister = (record: Extract<TrackingRecord, { t: "register" }>) =>
      Effect.gen(function*() {
        const runId = resolve(record.ref)
        if (runId === undefined) return undefined
        const run = yield* api().getRun(runId)
        const modelId = run.tags[modelTag(record.output)]
        if (modelId === undefined) {
          warn(`run ${runId} (${run.info.runName}) logged no model for output ${JSON.stringify(record.output)}; ${record.name} not registered`)
          return undefined
        }
        yield* api().ensureRegisteredModel(record.name)
        const version = yield* api().createModelVersion({ name: record.name, source: `models:/${modelId}`, runId, modelId })
        return version.version
      })

    const deliverOne = (record: TrackingRecord, replaying: boolean): Effect.Effect<string | undefined, MlflowError> => {
      switch (record.t) {
        case "create":
          return deliverCreate(record, replaying)
        case "artifact":
          return Effect.as(deliverArtifact(record), undefined)
        case "model":
          return Effect.as(deliverModel(record), undefined)
        case "register":
          return deliverRegister(record)
        case "end": {
          const runId = resolve(record.ref)
          const update = runId === undefined ? Effect.void : api().updateRun(runId, { status: record.status, endTime: record.endTime })
          return Effect.as(Effect.tap(update, () => Effect.sync(() => forgetOpenRun(record.ref))), undefined)
        }
        default:
          return Effect.succeed(undefined)
      }
    }

    /**
     * Delivers one group in order: consecutive metric/tag records, or one other record. Fails (with a
     * transient error) only when the server is unreachable; permanent rejections are reported and dropped
     * so one bad record never blocks the stream. Returns, per record, the real run id for creates.
     */
    const deliver = (records: ReadonlyArray<TrackingRecord>, replaying: boolean): Effect.Effect<Array<string | undefined>, MlflowError> => {
      const first = records[0]
      if (first === undefined) return Effect.succeed([])
      const none = records.map(() => undefined)
      const delivered: Effect.Effect<Array<string | undefined>, MlflowError> = first.t === "metrics" || first.t === "tags"
        ? Effect.as(deliverLogs(records), none)
        : deliverOne(first, replaying).pipe(
          Effect.catchIf((error) => !isTransient(error), (error) =>
            Effect.sync(() => {
              warn(`MLflow rejected a ${first.t} record for run ${first.ref}: ${error.message}`)
              if (first.t === "create") failedRefs.add(first.ref)
              return undefined
            })),
          Effect.map((runId) => [runId])
        )
      // a bug or a full disk while delivering loses these records, never the delivery fiber
      return Effect.catchDefect(delivered, (defect) =>
        Effect.sync(() => {
          warn(`a ${first.t} record for run ${first.ref} was not delivered: ${defect instanceof Error ? defect.message : String(defect)}`)
          return none
        }))
    }

    const isLog = (item: Queued) => item.record?.t === "metrics" || item.record?.t === "tags"

    /** The next group off `pending`: consecutive metric/tag records up to ~100k points, or one other item.
     * (Large groups keep all `concurrency` requests in flight for longer: each group ends with a tail of fewer.) */
    const takeGroup = (): Array<Queued> => {
      if (!isLog(pending[0]!)) return pending.splice(0, 1)
      let points = 0
      let n = 0
      for (const item of pending) {
        if (!isLog(item)) break
        points += item.record!.t === "metrics" ? item.record!.points.length : 1
        n++
        if (points >= 100_000) break
      }
      const group = pending.splice(0, n)
      for (const item of group) if (item.record!.t === "metrics") queuedPoints -= item.record!.points.length
      return group
    }

    /** The delivery fiber: takes what is queued, delivers it group by group, spools it all when the server fails. */
    const deliveryLoop = Effect.forever(
      Effect.gen(function*() {
        pending.push(...(yield* Queue.takeAll(queue)))
        while (pending.length > 0) {
          const group = takeGroup()
          inFlight = group
          const records = group.flatMap((g) => (g.record === undefined ? [] : [g.record]))
          const outcome = yield* Effect.result(Semaphore.withPermit(delivering, deliver(records, false)))
          if (inFlight !== group) continue // spooled meanwhile (process exiting)
          inFlight = []
          if (outcome._tag === "Failure") {
            enterSpooling([...group, ...takeUndelivered(false)], outcome.failure.message)
            continue
          }
          let next = 0
          for (const item of group) item.settle?.(item.record === undefined ? undefined : outcome.success[next++])
        }
      })
    )

    /** Replays the spool in order while the server answers; fails (transient) when it stops answering. */
    const replay = Effect.gen(function*() {
      for (;;) {
        const batch = spool.peek(500)
        if (batch === undefined) {
          // synchronously with the check above: no record can land in the spool after it was found empty
          if (unreachableNow) warn("tracking recovered: spooled records delivered")
          spooling = false
          unreachableNow = false
          return
        }
        // a prefix of at most ~20k points at a time, committing the cursor after each delivered chunk
        let start = 0
        while (start < batch.lines.length) {
          let end = start
          let points = 0
          // a chunk is either consecutive metric/tag records or exactly one other record (as takeGroup)
          while (end < batch.lines.length && points < 20_000) {
            const r = batch.lines[end]!.record
            const log = r.t === "metrics" || r.t === "tags"
            if (!log && end > start) break
            points += r.t === "metrics" ? r.points.length : 1
            end++
            if (!log) break
          }
          yield* deliver(batch.lines.slice(start, end).map((l) => l.record), true)
          spool.commit(batch.segment, batch.lines[end - 1]!.end)
          start = end
        }
      }
    })

    /** One attempt to catch up: probe, replay; fails while the server does not answer. */
    const replayAttempt: Effect.Effect<void, string> = Semaphore.withPermit(
      delivering,
      Effect.gen(function*() {
        if (!spooling || phase !== "connected") return
        if (!(yield* api().health())) return yield* Effect.fail(`tracking server ${trackingUri} is not reachable`)
        yield* Effect.mapError(replay, (error) => error.message)
      })
    )

    // ---- orphan runs -------------------------------------------------------------------------------

    const markKilled = (runId: string) =>
      Effect.gen(function*() {
        const run = yield* api().getRun(runId)
        if (run.info.status !== "RUNNING") return
        yield* api().updateRun(runId, { status: "KILLED", endTime: Date.now() })
        warn(`run ${runId} (${run.info.runName}) was left RUNNING by a vw2 process that died; marked KILLED`)
      })

    /** The run a create reached the server with, found by the token it carried (`vw2.create_token` = ref). */
    const findByCreateToken = (record: OpenRunRecord) =>
      Effect.gen(function*() {
        const ids = record.experiment === undefined
          ? (yield* api().searchExperiments()).map((e) => e.experimentId)
          : [(yield* api().getExperimentByName(record.experiment))?.experimentId].filter((id): id is string => id !== undefined)
        if (ids.length === 0) return undefined
        const found = yield* api().searchRuns({ experimentIds: ids, filter: `tags.\`vw2.create_token\` = '${record.ref}'`, runViewType: "ALL", maxResults: 1 })
        if (found[0] !== undefined) rememberRunId(record.ref, found[0].info.runId)
        return found[0]?.info.runId
      })

    const closeRunsByDriverTag = Effect.gen(function*() {
      const ids = (yield* api().searchExperiments()).map((e) => e.experimentId)
      const host = os.hostname()
      // LIKE narrows the search to this host; the tag is parsed again below (`_` in a host name is a wildcard)
      const filter = `attributes.status = 'RUNNING' AND tags.\`vw2.driver\` LIKE 'host=${host.replace(/'/g, "")} %'`
      for (let i = 0; i < ids.length; i += 100) {
        for (const run of yield* api().searchRuns({ experimentIds: ids.slice(i, i + 100), filter })) {
          const driver = parseDriverTag(run.tags["vw2.driver"])
          if (driver === undefined || driverIsDead(driver, "unknown") !== true) continue
          yield* markKilled(run.info.runId)
        }
      }
    })

    /**
     * Runs whose driver died without ending them (kill -9, power loss) are marked KILLED: first the open-run
     * records of this VW2_HOME (a run whose id was never recorded, because the driver died while its create
     * was in flight, is found by its create token), then every RUNNING run on the server whose `vw2.driver`
     * is a dead process of this host (other experiments, other VW2_HOMEs).
     */
    const closeRunsOfDeadDrivers = Effect.gen(function*() {
      const openRuns = path.join(dir, "open-runs")
      for (const name of fs.readdirSync(openRuns)) {
        const file = path.join(openRuns, name)
        let record: OpenRunRecord
        try {
          record = JSON.parse(fs.readFileSync(file, "utf8")) as OpenRunRecord
        } catch {
          continue
        }
        // (an empty URI: written while the server was starting, so it is this tracker's server)
        if ((record.trackingUri !== "" && record.trackingUri !== trackingUri) || driverIsDead(record, "dead") !== true) continue
        const known = runIds.get(record.ref)
        // not created yet: its create may still sit in a spool segment nobody has replayed; keep it for then
        if (known === undefined && spoolHasSegments(spool.dir)) continue
        const closedRun = Effect.gen(function*() {
          const runId = known ?? (yield* findByCreateToken(record))
          if (runId !== undefined) yield* markKilled(runId)
        })
        const outcome = yield* Effect.result(closedRun)
        // kept on other failures: retried on a later start
        if (outcome._tag === "Success" || isErrorCode(outcome.failure, "RESOURCE_DOES_NOT_EXIST")) fs.rmSync(file, { force: true })
      }
      if (sweptDeadDrivers) return
      const swept = yield* Effect.result(closeRunsByDriverTag)
      if (swept._tag === "Success") sweptDeadDrivers = true
      else warn(`could not look for runs left RUNNING by dead vw2 processes: ${swept.failure.message}`)
    })

    // ---- fibers ------------------------------------------------------------------------------------

    /** The recovery fiber: whenever spooling starts, replay on an exponential probe schedule until caught up. */
    const probeSchedule = Schedule.exponential(Duration.millis(probe.min), 2).pipe(
      Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(probe.max))))
    )
    const recoveryLoop = Effect.forever(
      Effect.gen(function*() {
        yield* Queue.takeAll(recoverSignal)
        if (!spooling || phase !== "connected") return
        yield* Effect.retry(replayAttempt, probeSchedule)
        yield* Effect.ignore(closeRunsOfDeadDrivers)
      })
    )

    /** Learns the server's URL, replays what was spooled meanwhile (and by dead processes), closes orphans. */
    const connect = Effect.gen(function*() {
      const uri = typeof options.trackingUri === "string" ? Effect.succeed(options.trackingUri) : options.trackingUri
      const found = yield* Effect.result(uri)
      if (found._tag === "Failure") {
        phase = "failed"
        const why = found.failure instanceof Error ? found.failure.message : String(found.failure)
        warn(`tracking degraded: no MLflow server (${why}); the run goes on, its records are spooled under ${spool.dir} and delivered by the next vw2 run that reaches a server`)
        return
      }
      trackingUri = found.success.replace(/\/+$/, "")
      // Few, quick retries: after that the spool takes over, so a dead server never stalls the run.
      client = makeMlflowClient({ trackingUri, retry: { maxRetries: 2, backoffFactorMs: 200, jitterMs: 100 }, timeoutMs: 30_000, warn, ...options.client })
      phase = "connected"
      const caughtUp = yield* Effect.result(replayAttempt)
      if (caughtUp._tag === "Failure") {
        enterSpooling([], caughtUp.failure)
        return
      }
      yield* Effect.ignore(closeRunsOfDeadDrivers)
    }).pipe(Effect.ensuring(Deferred.succeed(started, undefined)))

    spool.claimOrphans()
    const fibers: Array<Fiber.Fiber<unknown, unknown>> = [yield* Effect.forkIn(deliveryLoop, scope), yield* Effect.forkIn(recoveryLoop, scope)]
    // A known URL is checked now (the engine then gets real run ids from the first run on); a server still
    // starting is waited for in the background.
    if (typeof options.trackingUri === "string") yield* connect
    else fibers.push(yield* Effect.forkIn(connect, scope))

    // ---- the Tracker service -----------------------------------------------------------------------

    /** Waits for the server to be known, then until everything queued so far is delivered, or spooled after
     * a fresh attempt to reach the server (so a server that came back is caught up before the CLI exits). */
    const flush = Effect.gen(function*() {
      if (closed) return
      if (phase === "starting") warn("the MLflow server is still starting: waiting for it to deliver the records spooled meanwhile (interrupted, they stay spooled for the next run)")
      yield* Deferred.await(started)
      const barrier = Deferred.makeUnsafe<void>()
      enqueue({ settle: () => Deferred.doneUnsafe(barrier, Effect.void) })
      yield* Deferred.await(barrier)
      if (spooling && phase === "connected") yield* Effect.ignore(replayAttempt)
    })

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* flush
        closed = true
        for (const fiber of fibers) yield* Fiber.interrupt(fiber)
        spoolEverything()
        process.off("exit", spoolEverything)
        if (client !== undefined) yield* client.close()
      })
    )

    const startRun = (experiment: string, parent: string | undefined, runName: string, tags: Record<string, string>, params: Readonly<Record<string, string>>) =>
      Effect.suspend(() => {
        const ref = `${pendingPrefix}${randomUUID()}`
        const goodTags = Object.fromEntries(Object.entries({ ...tags, "vw2.driver": driverTag() }).filter(([key]) => keyOk("tag", key)))
        const goodParams = Object.fromEntries(Object.entries(params).filter(([key]) => keyOk("param", key)))
        const record: OpenRunRecord = { ref, pid: process.pid, trackingUri: trackingUri ?? "", startedAt: Date.now(), experiment, host: os.hostname(), boot: bootToken, pidns: pidNamespace }
        fs.writeFileSync(path.join(dir, "open-runs", `${ref}.json`), JSON.stringify(record))
        experimentOfRef.set(ref, experiment)
        refOf.set(ref, ref)
        const created = Deferred.makeUnsafe<string | undefined>()
        enqueue({
          record: { t: "create", ref, experiment, parent, runName, startTime: Date.now(), tags: goodTags, params: goodParams },
          settle: (runId) => Deferred.doneUnsafe(created, Effect.succeed(runId))
        })
        return Effect.map(Deferred.await(created), (runId) => {
          const id = runId ?? ref
          experimentOfRef.set(id, experiment)
          refOf.set(id, ref)
          return id
        })
      })

    const experimentOf = (parent: string): string => {
      const experiment = experimentOfRef.get(parent)
      if (experiment === undefined) throw new Error(`run ${parent} was not started by this tracker`)
      return experiment
    }

    /** Waits for a record to be delivered or spooled (the caller may move its files afterwards). */
    const settled = <A>(record: TrackingRecord, value: (runId: string | undefined) => A): Effect.Effect<A> =>
      Effect.suspend(() => {
        const done = Deferred.makeUnsafe<A>()
        enqueue({ record, settle: (runId) => Deferred.doneUnsafe(done, Effect.succeed(value(runId))) })
        return Deferred.await(done)
      })

    /** A bug or a full disk here must not fail the pipeline: every effect catches, warns and carries on
     * (a run that could not be recorded gets a local id). */
    const safe = <A>(what: string, fallback: () => A, body: Effect.Effect<A, unknown>): Effect.Effect<A> =>
      body.pipe(
        Effect.catchCause((cause) =>
          Effect.sync(() => {
            warn(`${what} failed, not tracked: ${String(cause)}`)
            return fallback()
          })
        )
      )
    const localId = () => `local-${randomUUID()}`

    const shape: MlflowTrackerShape = {
      describe: () => firstExperimentUrl ?? trackingUri ?? "MLflow (starting in the background)",
      state: () => (phase === "starting" ? "starting" : phase === "failed" ? "degraded" : spooling && unreachableNow ? "spooling" : "up"),
      degraded: () => phase === "failed" || (spooling && unreachableNow),
      resolveRunId: (id) => (id.startsWith(pendingPrefix) ? runIds.get(id) : id),
      spills: () => spilled,
      startExperimentRun: (info) =>
        safe("starting the experiment run", localId, Effect.suspend(() => {
          const tags: Record<string, string> = {
            "mlflow.user": userName(),
            "mlflow.source.type": "LOCAL",
            "mlflow.source.name": process.argv[1] ?? "vw2",
            "vw2.command": process.argv.slice(1).join(" "),
            "vw2.config_hash": info.configHash
          }
          const commit = gitCommit()
          if (commit !== undefined) tags["mlflow.source.git.commit"] = commit
          if (process.env.VW2_TF_BACKEND) tags["vw2.tf_backend"] = process.env.VW2_TF_BACKEND
          return startRun(info.experiment, undefined, `${info.experiment}@${info.configHash.slice(0, 8)}`, { ...tags, ...info.tags }, info.params)
        })),
      startTrialRun: (parent, info) =>
        safe("starting a trial run", localId, Effect.suspend(() => {
          const tags = { "vw2.trial": info.trialId, "vw2.seed": String(info.seed), ...info.tags }
          return startRun(experimentOf(parent), parent, info.runName ?? `trial ${info.trialId} seed ${info.seed}`, tags, info.params)
        })),
      startStageRun: (parent, info) =>
        safe("starting a stage run", localId, Effect.suspend(() => {
          const cache = info.cache._tag === "miss" ? "miss" : `hit:${info.cache.producedBy ?? "unknown"}`
          const tags = { "vw2.step": info.step, "vw2.stage": info.stage, "vw2.stage_hash": info.stageHash, "vw2.cache": cache, ...info.tags }
          return startRun(experimentOf(parent), parent, info.runName ?? info.step, tags, info.params)
        })),
      logMetrics: (run, points: ReadonlyArray<MetricPoint>) =>
        safe("logging metrics", () => undefined, Effect.sync(() => {
          const wire: Array<readonly [string, number | string, number, number]> = []
          for (const p of points) {
            if (!keyOk("metric", p.key)) continue
            wire.push([p.key, Number.isFinite(p.value) ? p.value : encodeDouble(p.value), Math.trunc(p.step), Math.trunc(p.timestamp)])
          }
          if (wire.length > 0) enqueue({ record: { t: "metrics", ref: run, points: wire } })
        })),
      setTags: (run, tags) =>
        safe("setting tags", () => undefined, Effect.sync(() => {
          const ok = Object.fromEntries(Object.entries(tags).filter(([key]) => keyOk("tag", key)))
          if (Object.keys(ok).length > 0) enqueue({ record: { t: "tags", ref: run, tags: ok } })
        })),
      logArtifacts: (run, files) =>
        safe("logging artifacts", () => undefined, Effect.asVoid(Effect.forEach(files, (file) =>
          settled({ t: "artifact", ref: run, localPath: file.localPath, artifactPath: file.artifactPath, blob: false }, () => undefined)))),
      /**
       * Logs an output as an MLflow 3 logged model of `run`: created with the run as its source, its files
       * uploaded under the model's artifact root, then marked READY and listed as an output of the run; the
       * run's tag `vw2.model.<output>` names it. Resolves once uploaded or copied into the spool.
       */
      logModel: (run, model) =>
        safe("logging a model", () => undefined, settled({
          t: "model",
          ref: run,
          name: model.name,
          kind: model.kind,
          files: model.files.map((f) => ({ localPath: f.localPath, artifactPath: f.artifactPath })),
          tags: { ...model.tags, "vw2.output": model.output },
          blob: false
        }, () => undefined)),
      /**
       * Registers the logged model of `output` of run `run` (a stage run, or for a cache hit the run that
       * produced it) as a new version of registered model `name`, created when missing: the version once
       * delivered, or undefined when it was spooled or could not be registered (warned).
       */
      registerModel: (name, run, output) => safe("registering a model", () => undefined, settled({ t: "register", ref: run, name, output }, (version) => version)),
      endRun: (run, status) => safe("ending a run", () => undefined, Effect.sync(() => enqueue({ record: { t: "end", ref: run, status, endTime: Date.now() } }))),
      flush: safe("flushing", () => undefined, flush)
    }
    return shape
  })

/** `VW2_HOME`, defaulting to `.vw2` in the working directory (where the engine keeps its store). */
export const vw2Home = (): string => path.resolve(process.env.VW2_HOME ?? ".vw2")

/** The Tracker service backed by MLflow; flushed and closed with its scope. */
export const layer = (options: MlflowTrackerOptions): Layer.Layer<CoreTracker.Tracker> => Layer.effect(CoreTracker.Tracker)(make(options))

// ---- persistent state ----------------------------------------------------------------------------

const loadRunIds = (dir: string): Map<string, string> => {
  const ids = new Map<string, string>()
  let text = ""
  try {
    text = fs.readFileSync(path.join(dir, "run-ids.jsonl"), "utf8")
  } catch {
    return ids
  }
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue
    try {
      const { ref, runId } = JSON.parse(line) as { ref: string; runId: string }
      ids.set(ref, runId)
    } catch {
      // torn line from a crash
    }
  }
  return ids
}

const spoolHasSegments = (spoolDir: string): boolean => {
  try {
    return fs.readdirSync(spoolDir).some((f) => f.endsWith(".jsonl"))
  } catch {
    return false
  }
}
