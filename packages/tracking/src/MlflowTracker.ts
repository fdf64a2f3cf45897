/**
 * The MLflow implementation of core's Tracker service.
 *
 * Everything the engine reports becomes a record in one ordered queue, delivered by a background loop
 * (metrics of consecutive records coalesced into log-batch requests, a few in flight at once). When the
 * server cannot be reached, the queue and every later record go to the on-disk spool (`Spool.ts`) instead,
 * `degraded()` turns true, and the loop replays the spool in order once `/health` answers again. Nothing
 * here ever fails the pipeline: problems become warnings.
 *
 * Run ids: a run's create is delivered before `start*Run` returns when the server is up, so the engine
 * gets the real MLflow run id. While degraded it gets a provisional `pending-<uuid>` id instead; the
 * mapping to the real id is recorded in VW2_HOME when the create is replayed, and later records (also
 * `vw2.cache = hit:pending-…` tags written by a later process) are translated through it.
 */
import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { Tracker as CoreTracker } from "@vw2/core"
import type { MetricPoint } from "@vw2/core"
import { MlflowClient, type MlflowClientOptions } from "./MlflowClient.ts"
import { MlflowApiError, isTransient } from "./MlflowError.ts"
import { encodeDouble, decodeDouble } from "./internal/json.ts"
import { Spool, isProcessAlive } from "./Spool.ts"
import { invalidKeyReason, limits } from "./Validation.ts"

type RunStatus = CoreTracker.RunStatus
type TrackerShape = CoreTracker.TrackerShape

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
export interface ModelUpload {
  /** the stage's output name, e.g. "checkpoint" (the run tag `vw2.model.<output>` names the logged model) */
  readonly output: string
  /** the output's artifact kind, e.g. "dldm-checkpoint" (the logged model's type) */
  readonly kind: string
  /** shown in MLflow's model list; MLflow forbids / : . % and quotes, which become "-" */
  readonly name: string
  readonly files: ReadonlyArray<CoreTracker.ArtifactUpload>
  readonly tags?: Readonly<Record<string, string>>
}

/** The run tag that names the logged model of an output. */
export const modelTag = (output: string) => `vw2.model.${output}`

interface Queued {
  readonly record: TrackingRecord
  /** called once the record is delivered (with the run id for creates) or spooled (undefined) */
  readonly settle?: (runId: string | undefined) => void
}

export interface MlflowTrackerOptions {
  readonly trackingUri: string
  /** VW2_HOME: spool, run-id map and open-run records live under `<home>/tracking` */
  readonly home: string
  readonly client?: Omit<MlflowClientOptions, "trackingUri">
  /** log-batch requests in flight at once */
  readonly concurrency?: number
  /** where warnings go (default: stderr) */
  readonly warn?: (message: string) => void
  /** first/maximum delay between /health probes while degraded */
  readonly probeMs?: { readonly min: number; readonly max: number }
  /** metric points held in memory before the backlog moves to the spool (bounds memory when stages
   * log faster than the server ingests; default 1,000,000 ≈ 100 MB) */
  readonly maxQueuedPoints?: number
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

export class MlflowTracker {
  readonly client: MlflowClient
  readonly trackingUri: string
  readonly #dir: string
  readonly #spool: Spool<TrackingRecord>
  readonly #warn: (message: string) => void
  readonly #concurrency: number
  readonly #probe: { readonly min: number; readonly max: number }

  #queue: Array<Queued> = []
  #inFlight: Array<Queued> = []
  #spooling = false
  /** spooling because the server failed (not merely because of a backlog) */
  #unreachable = false
  #queuedPoints = 0
  readonly #maxQueuedPoints: number
  #spilled = 0
  #closed = false
  #wake: (() => void) | undefined
  #iterationWaiters: Array<() => void> = []
  /** replay attempts made since start (flush waits for a fresh one while degraded) */
  #replayAttempts = 0
  #replayNow = false

  /** provisional ref → real run id (persisted in run-ids.jsonl) */
  readonly #runIds = new Map<string, string>()
  /** real run id → artifact uri, experiment id */
  readonly #runInfo = new Map<string, { artifactUri: string; experimentId: string }>()
  readonly #experimentIds = new Map<string, string>()
  readonly #experimentOfRef = new Map<string, string>()
  /** ids handed to the engine (real or provisional) → the run's provisional ref (open-run record name) */
  readonly #refOf = new Map<string, string>()
  readonly #failedRefs = new Set<string>()
  readonly #badKeys = new Set<string>()
  readonly #validKeys = new Set<string>()
  #firstExperimentUrl: string | undefined
  /** RUNNING runs of dead drivers on this host were looked for (once per process) */
  #sweptDeadDrivers = false
  #loop: Promise<void> | undefined
  readonly #onExit: () => void

  private constructor(options: MlflowTrackerOptions) {
    this.trackingUri = options.trackingUri.replace(/\/+$/, "")
    this.#warn = options.warn ?? ((message) => process.stderr.write(`[vw2 tracking] ${message}\n`))
    // Few, quick retries: after that the spool takes over, so a dead server never stalls the run.
    this.client = new MlflowClient({
      trackingUri: this.trackingUri,
      retry: { maxRetries: 2, backoffFactorMs: 200, jitterMs: 100 },
      timeoutMs: 30_000,
      warn: this.#warn,
      ...options.client
    })
    this.#dir = path.join(options.home, "tracking")
    fs.mkdirSync(path.join(this.#dir, "open-runs"), { recursive: true })
    fs.mkdirSync(path.join(this.#dir, "blobs"), { recursive: true })
    this.#spool = new Spool(path.join(this.#dir, "spool"))
    this.#concurrency = options.concurrency ?? 4
    this.#probe = options.probeMs ?? { min: 250, max: 5000 }
    this.#maxQueuedPoints = options.maxQueuedPoints ?? 1_000_000
    this.#loadRunIds()
    // Records still in memory when the process exits are spooled, not lost (process.exit, fatal errors).
    this.#onExit = () => this.#spoolEverything()
    process.on("exit", this.#onExit)
  }

  /**
   * Opens the tracker: replays spools left by dead vw2 processes and closes their runs left RUNNING as
   * KILLED (when the server is reachable; otherwise that happens on a later start), then starts the
   * delivery loop.
   */
  static async open(options: MlflowTrackerOptions): Promise<MlflowTracker> {
    const tracker = new MlflowTracker(options)
    const orphans = tracker.#spool.claimOrphans()
    if (orphans > 0 || !tracker.#spool.isEmpty) tracker.#spooling = true
    if (await tracker.client.health()) {
      if (tracker.#spooling) await tracker.#replay()
      if (!tracker.#spooling) await tracker.#closeRunsOfDeadDrivers()
    } else {
      tracker.#enterSpooling([], `tracking server ${tracker.trackingUri} is not reachable`)
    }
    tracker.#loop = tracker.#run()
    return tracker
  }

  // ---- the Tracker service ---------------------------------------------------------------------

  /** The Tracker service. A bug or a full disk here must not fail the pipeline: every effect catches,
   * warns, and carries on (a run that could not be recorded gets a local id). */
  get shape(): TrackerShape & {
    readonly logModel: (run: string, model: ModelUpload) => Effect.Effect<void>
    readonly registerModel: (name: string, run: string, output: string) => Effect.Effect<string | undefined>
  } {
    const safe = <A>(what: string, fallback: () => A, body: () => A | Promise<A>): Effect.Effect<A> =>
      Effect.promise(async () => {
        try {
          return await body()
        } catch (error) {
          this.#warn(`${what} failed, not tracked: ${(error as Error).message}`)
          return fallback()
        }
      })
    const localId = () => `local-${randomUUID()}`
    return {
      describe: () => this.describe(),
      startExperimentRun: (info) => safe("starting the experiment run", localId, () => this.startExperimentRun(info)),
      startTrialRun: (parent, info) => safe("starting a trial run", localId, () => this.startTrialRun(parent, info)),
      startStageRun: (parent, info) => safe("starting a stage run", localId, () => this.startStageRun(parent, info)),
      logMetrics: (run, points) => safe("logging metrics", () => undefined, () => this.logMetrics(run, points)),
      setTags: (run, tags) => safe("setting tags", () => undefined, () => this.setTags(run, tags)),
      logArtifacts: (run, files) => safe("logging artifacts", () => undefined, () => this.logArtifacts(run, files)),
      logModel: (run, model) => safe("logging a model", () => undefined, () => this.logModel(run, model)),
      registerModel: (name, run, output) => safe("registering a model", () => undefined, () => this.registerModel(name, run, output)),
      endRun: (run, status) => safe("ending a run", () => undefined, () => this.endRun(run, status)),
      flush: safe("flushing", () => undefined, () => this.flush()),
      degraded: () => this.degraded()
    }
  }

  describe(): string | undefined {
    return this.#firstExperimentUrl ?? this.trackingUri
  }

  /** true while the server cannot be reached and records wait in the spool */
  degraded(): boolean {
    return this.#spooling && this.#unreachable
  }

  /** how many times a metric backlog was moved from memory to the spool */
  get spills(): number {
    return this.#spilled
  }

  /** The real MLflow run id behind an id this tracker handed out (provisional ids resolve once replayed). */
  resolveRunId(id: string): string | undefined {
    return id.startsWith(pendingPrefix) ? this.#runIds.get(id) : id
  }

  startExperimentRun(info: CoreTracker.ExperimentRunInfo): Promise<string> {
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
    return this.#startRun(info.experiment, undefined, `${info.experiment}@${info.configHash.slice(0, 8)}`, { ...tags, ...info.tags }, info.params)
  }

  startTrialRun(parent: string, info: CoreTracker.TrialRunInfo): Promise<string> {
    const tags = { "vw2.trial": info.trialId, "vw2.seed": String(info.seed), ...info.tags }
    return this.#startRun(this.#experimentOf(parent), parent, info.runName ?? `trial ${info.trialId} seed ${info.seed}`, tags, info.params)
  }

  startStageRun(parent: string, info: CoreTracker.StageRunInfo): Promise<string> {
    const cache = info.cache._tag === "miss" ? "miss" : `hit:${info.cache.producedBy ?? "unknown"}`
    const tags = { "vw2.step": info.step, "vw2.stage": info.stage, "vw2.stage_hash": info.stageHash, "vw2.cache": cache, ...info.tags }
    return this.#startRun(this.#experimentOf(parent), parent, info.runName ?? info.step, tags, info.params)
  }

  logMetrics(run: string, points: ReadonlyArray<MetricPoint>): void {
    const wire: Array<readonly [string, number | string, number, number]> = []
    for (const p of points) {
      if (!this.#keyOk("metric", p.key)) continue
      wire.push([p.key, Number.isFinite(p.value) ? p.value : encodeDouble(p.value), Math.trunc(p.step), Math.trunc(p.timestamp)])
    }
    if (wire.length > 0) this.#enqueue({ record: { t: "metrics", ref: run, points: wire } })
  }

  setTags(run: string, tags: Readonly<Record<string, string>>): void {
    const ok = Object.fromEntries(Object.entries(tags).filter(([key]) => this.#keyOk("tag", key)))
    if (Object.keys(ok).length > 0) this.#enqueue({ record: { t: "tags", ref: run, tags: ok } })
  }

  /** Resolves once the files are uploaded or copied into the spool: the caller may move them afterwards. */
  logArtifacts(run: string, files: ReadonlyArray<CoreTracker.ArtifactUpload>): Promise<void> {
    const settled = files.map((file) =>
      new Promise<void>((resolve) => this.#enqueue({ record: { t: "artifact", ref: run, localPath: file.localPath, artifactPath: file.artifactPath, blob: false }, settle: () => resolve() }))
    )
    return Promise.all(settled).then(() => undefined)
  }

  /**
   * Logs an output as an MLflow 3 logged model of `run`: created with the run as its source, its files
   * uploaded under the model's artifact root, then marked READY and listed as an output of the run; the
   * run's tag `vw2.model.<output>` names it. Resolves once uploaded or copied into the spool.
   */
  logModel(run: string, model: ModelUpload): Promise<void> {
    return new Promise<void>((resolve) =>
      this.#enqueue({
        record: { t: "model", ref: run, name: model.name, kind: model.kind, files: model.files.map((f) => ({ localPath: f.localPath, artifactPath: f.artifactPath })), tags: { ...model.tags, "vw2.output": model.output }, blob: false },
        settle: () => resolve()
      })
    )
  }

  /**
   * Registers the logged model of `output` of run `run` (a stage run, or for a cache hit the run that
   * produced it) as a new version of registered model `name`, created when missing. Resolves with the
   * version once delivered, or undefined when it was spooled or could not be registered (warned).
   */
  registerModel(name: string, run: string, output: string): Promise<string | undefined> {
    return new Promise((resolve) => this.#enqueue({ record: { t: "register", ref: run, name, output }, settle: resolve }))
  }

  endRun(run: string, status: RunStatus): void {
    this.#enqueue({ record: { t: "end", ref: run, status, endTime: Date.now() } })
  }

  /** Resolves when everything queued so far is delivered, or spooled after a fresh attempt to reach
   * the server (so a server that came back is caught up before the CLI exits). */
  async flush(): Promise<void> {
    if (this.#closed) return
    const attemptsBefore = this.#replayAttempts
    this.#replayNow = true
    this.#wake?.()
    while (!this.#closed) {
      const idle = this.#queue.length === 0 && this.#inFlight.length === 0
      if (idle && (!this.#spooling || this.#replayAttempts > attemptsBefore)) return
      await new Promise<void>((resolve) => this.#iterationWaiters.push(resolve))
    }
  }

  /** Flushes, stops the delivery loop and releases connections. Records not delivered stay spooled. */
  async close(): Promise<void> {
    if (this.#closed) return
    await this.flush()
    this.#closed = true
    this.#wake?.()
    await this.#loop
    this.#spoolEverything()
    process.off("exit", this.#onExit)
    await this.client.close()
  }

  // ---- recording -------------------------------------------------------------------------------

  #experimentOf(parent: string): string {
    const experiment = this.#experimentOfRef.get(parent)
    if (experiment === undefined) throw new Error(`run ${parent} was not started by this tracker`)
    return experiment
  }

  #keyOk(kind: "metric" | "tag", key: string): boolean {
    if (this.#validKeys.has(key)) return true
    if (this.#badKeys.has(key)) return false
    const reason = invalidKeyReason(key)
    if (reason === undefined) {
      this.#validKeys.add(key)
      return true
    }
    this.#badKeys.add(key)
    this.#warn(`dropping ${kind} ${JSON.stringify(key)}: ${reason}`)
    return false
  }

  #startRun(experiment: string, parent: string | undefined, runName: string, tags: Record<string, string>, params: Readonly<Record<string, string>>): Promise<string> {
    const ref = `${pendingPrefix}${randomUUID()}`
    const goodTags = Object.fromEntries(Object.entries({ ...tags, "vw2.driver": driverTag() }).filter(([key]) => this.#keyOk("tag", key)))
    const goodParams = Object.fromEntries(Object.entries(params).filter(([key]) => {
      const reason = invalidKeyReason(key)
      if (reason !== undefined) this.#warn(`dropping param ${JSON.stringify(key)}: ${reason}`)
      return reason === undefined
    }))
    const record: OpenRunRecord = { ref, pid: process.pid, trackingUri: this.trackingUri, startedAt: Date.now(), experiment, host: os.hostname(), boot: bootToken, pidns: pidNamespace }
    fs.writeFileSync(path.join(this.#dir, "open-runs", `${ref}.json`), JSON.stringify(record))
    this.#experimentOfRef.set(ref, experiment)
    this.#refOf.set(ref, ref)
    return new Promise((resolve) => {
      this.#enqueue({
        record: { t: "create", ref, experiment, parent, runName, startTime: Date.now(), tags: goodTags, params: goodParams },
        settle: (runId) => {
          const id = runId ?? ref
          this.#experimentOfRef.set(id, experiment)
          this.#refOf.set(id, ref)
          resolve(id)
        }
      })
    })
  }

  #enqueue(item: Queued): void {
    if (this.#closed) {
      this.#warn(`tracker already closed; spooling a late ${item.record.t} record`)
    }
    if (this.#spooling || this.#closed) {
      this.#spoolItems([item])
      return
    }
    this.#queue.push(item)
    if (item.record.t === "metrics") {
      this.#queuedPoints += item.record.points.length
      // (not while a create/end/artifact is in flight: if it failed it would land behind the backlog)
      const inFlightIsLogs = this.#inFlight.every((i) => i.record.t === "metrics" || i.record.t === "tags")
      if (this.#queuedPoints > this.#maxQueuedPoints && inFlightIsLogs) {
        // the server ingests slower than stages log: keep memory bounded, deliver from disk
        this.#spilled++
        const backlog = this.#queue
        this.#queue = []
        this.#queuedPoints = 0
        this.#spooling = true
        this.#spoolItems(backlog)
      }
    }
    this.#wake?.()
  }

  #forgetOpenRun(id: string): void {
    const ref = this.#refOf.get(id) ?? id
    fs.rmSync(path.join(this.#dir, "open-runs", `${ref}.json`), { force: true })
  }

  /** Writes items to the spool (copying artifact files, which may move once we return) and settles them. */
  #spoolItems(items: ReadonlyArray<Queued>): void {
    const records = items.map(({ record }) => {
      if (record.t === "model" && !record.blob) return this.#spoolModelFiles(record)
      if (record.t !== "artifact" || record.blob) return record
      const blob = path.join(this.#dir, "blobs", `${randomUUID()}-${path.basename(record.localPath)}`)
      try {
        fs.copyFileSync(record.localPath, blob)
        return { ...record, localPath: blob, blob: true }
      } catch (error) {
        this.#warn(`artifact ${record.localPath} could not be spooled: ${(error as Error).message}`)
        return undefined
      }
    }).filter((r): r is TrackingRecord => r !== undefined)
    try {
      this.#spool.append(records)
    } catch (error) {
      this.#warn(`spool write failed, ${records.length} tracking records lost: ${(error as Error).message}`)
    }
    for (const record of records) if (record.t === "end") this.#forgetOpenRun(record.ref)
    for (const item of items) item.settle?.(undefined)
  }

  /** A model record whose files are copied into the spool's blobs (the originals may move once we return). */
  #spoolModelFiles(record: Extract<TrackingRecord, { t: "model" }>): TrackingRecord | undefined {
    const files: Array<{ localPath: string; artifactPath: string }> = []
    try {
      for (const file of record.files) {
        const blob = path.join(this.#dir, "blobs", `${randomUUID()}-${path.basename(file.localPath)}`)
        fs.copyFileSync(file.localPath, blob)
        files.push({ localPath: blob, artifactPath: file.artifactPath })
      }
      return { ...record, files, blob: true }
    } catch (error) {
      for (const file of files) fs.rmSync(file.localPath, { force: true })
      this.#warn(`model ${record.name} could not be spooled: ${(error as Error).message}`)
      return undefined
    }
  }

  #enterSpooling(items: ReadonlyArray<Queued>, why: string): void {
    if (!this.#unreachable) this.#warn(`tracking degraded (${why}); records are spooled under ${this.#spool.dir} and replayed when the server is back`)
    this.#spooling = true
    this.#unreachable = true
    this.#spoolItems(items)
  }

  #spoolEverything(): void {
    const items = [...this.#inFlight, ...this.#queue]
    this.#inFlight = []
    this.#queue = []
    this.#queuedPoints = 0
    if (items.length > 0) this.#enterSpooling(items, "process exiting with undelivered records")
  }

  // ---- delivery --------------------------------------------------------------------------------

  async #run(): Promise<void> {
    let probeDelay = this.#probe.min
    while (!this.#closed) {
      if (this.#spooling) {
        if (!this.#replayNow) await this.#idle(probeDelay)
        this.#replayNow = false
        if (this.#closed) break
        const healthy = await this.client.health()
        if (healthy) {
          await this.#replay()
          if (!this.#spooling) await this.#closeRunsOfDeadDrivers()
        }
        this.#replayAttempts++
        probeDelay = this.#spooling ? Math.min(this.#probe.max, probeDelay * 2) : this.#probe.min
      } else if (this.#queue.length === 0) {
        this.#notifyIteration()
        await this.#idle(undefined)
      } else {
        await this.#deliverNext()
      }
      this.#notifyIteration()
    }
    this.#notifyIteration()
  }

  #idle(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms)
      function done() {
        if (timer !== undefined) clearTimeout(timer)
        resolve()
      }
      this.#wake = () => {
        this.#wake = undefined
        done()
      }
    })
  }

  #notifyIteration(): void {
    const waiters = this.#iterationWaiters
    this.#iterationWaiters = []
    for (const w of waiters) w()
  }

  /** Takes the next group off the queue (consecutive metric/tag records, or one other record). */
  #takeGroup(): Array<Queued> {
    const first = this.#queue[0]!
    if (first.record.t !== "metrics" && first.record.t !== "tags") return this.#queue.splice(0, 1)
    let points = 0
    let n = 0
    for (const item of this.#queue) {
      if (item.record.t !== "metrics" && item.record.t !== "tags") break
      points += item.record.t === "metrics" ? item.record.points.length : 1
      n++
      if (points >= 20_000) break
    }
    const group = this.#queue.splice(0, n)
    for (const item of group) if (item.record.t === "metrics") this.#queuedPoints -= item.record.points.length
    return group
  }

  async #deliverNext(): Promise<void> {
    const group = this.#takeGroup()
    this.#inFlight = group
    try {
      const results = await this.#deliver(group.map((g) => g.record), false)
      if (this.#inFlight !== group) return // spooled meanwhile (process exiting)
      this.#inFlight = []
      group.forEach((item, i) => item.settle?.(results[i]))
    } catch (error) {
      if (this.#inFlight !== group) return
      this.#inFlight = []
      // The server is gone: this group and everything behind it goes to the spool, in order.
      const rest = this.#queue
      this.#queue = []
      this.#queuedPoints = 0
      this.#enterSpooling([...group, ...rest], (error as Error).message)
    }
  }

  /** Replays the spool in order while the server answers. */
  async #replay(): Promise<void> {
    for (;;) {
      const batch = this.#spool.peek(500)
      if (batch === undefined) {
        if (this.#unreachable) this.#warn("tracking recovered: spooled records delivered")
        this.#spooling = false
        this.#unreachable = false
        return
      }
      // deliver a prefix of at most ~20k points, committing the cursor after each delivered chunk
      let start = 0
      while (start < batch.lines.length) {
        let end = start
        let points = 0
        // a chunk is either consecutive metric/tag records or exactly one other record (as #takeGroup)
        while (end < batch.lines.length && points < 20_000) {
          const r = batch.lines[end]!.record
          const isLog = r.t === "metrics" || r.t === "tags"
          if (!isLog && end > start) break
          points += r.t === "metrics" ? r.points.length : 1
          end++
          if (!isLog) break
        }
        try {
          await this.#deliver(batch.lines.slice(start, end).map((l) => l.record), true)
        } catch {
          return // still unreachable: stay degraded, try again later
        }
        this.#spool.commit(batch.segment, batch.lines[end - 1]!.end)
        start = end
      }
    }
  }

  /**
   * Delivers records in order. Throws (a transient error) when the server is unreachable; permanent
   * rejections are reported and dropped so one bad record never blocks the stream.
   * Returns, per record, the real run id for creates.
   */
  async #deliver(records: ReadonlyArray<TrackingRecord>, replaying: boolean): Promise<Array<string | undefined>> {
    const first = records[0]
    if (first === undefined) return []
    if (first.t === "metrics" || first.t === "tags") {
      await this.#deliverLogs(records)
      return records.map(() => undefined)
    }
    try {
      switch (first.t) {
        case "create":
          return [await this.#deliverCreate(first, replaying)]
        case "artifact":
          await this.#deliverArtifact(first)
          return [undefined]
        case "model":
          await this.#deliverModel(first)
          return [undefined]
        case "register":
          return [await this.#deliverRegister(first)]
        case "end": {
          const runId = this.#resolve(first.ref)
          if (runId !== undefined) await this.client.updateRun(runId, { status: first.status, endTime: first.endTime })
          this.#forgetOpenRun(first.ref)
          return [undefined]
        }
        default:
          return [undefined]
      }
    } catch (error) {
      if (isTransient(error)) throw error
      this.#warn(`MLflow rejected a ${first.t} record for run ${first.ref}: ${(error as Error).message}`)
      if (first.t === "create") this.#failedRefs.add(first.ref)
      return [undefined]
    }
  }

  async #deliverLogs(records: ReadonlyArray<TrackingRecord>): Promise<void> {
    // coalesce per run, keeping each run's records in order
    type Entry = { metrics: Array<{ key: string; value: number; step: number; timestamp: number }>; tags: Array<{ key: string; value: string }> }
    const byRun = new Map<string, Entry>()
    for (const r of records) {
      if (r.t !== "metrics" && r.t !== "tags") continue
      const runId = this.#resolve(r.ref)
      if (runId === undefined) continue
      let entry = byRun.get(runId)
      if (entry === undefined) byRun.set(runId, entry = { metrics: [], tags: [] })
      if (r.t === "metrics") for (const [key, value, step, timestamp] of r.points) entry.metrics.push({ key, value: typeof value === "number" ? value : decodeDouble(value), step, timestamp })
      else for (const [key, value] of Object.entries(r.tags)) entry.tags.push({ key, value: this.#translateTagValue(value) })
    }
    // Bodies are prepared lazily, one log-batch's worth at a time, by the sending workers: the first request
    // leaves after ~3 ms instead of after the whole group is serialised, and later bodies are built while
    // earlier ones are on the wire (the server would otherwise idle through each group's preparation).
    const jobs: Array<{ runId: string } & Entry> = []
    for (const [runId, entry] of byRun) {
      if (entry.metrics.length === 0) jobs.push({ runId, metrics: [], tags: entry.tags })
      for (let i = 0; i < entry.metrics.length; i += limits.metricsPerBatch) {
        jobs.push({ runId, metrics: entry.metrics.slice(i, i + limits.metricsPerBatch), tags: i === 0 ? entry.tags : [] })
      }
    }
    let next = 0
    let transient: unknown
    const worker = async () => {
      while (next < jobs.length && transient === undefined) {
        const { runId, metrics, tags } = jobs[next++]!
        let bodies: Array<string>
        try {
          bodies = this.client.prepareLogBatch(runId, { metrics, tags })
        } catch (error) {
          this.#warn(`metrics/tags for run ${runId} not logged: ${(error as Error).message}`)
          continue
        }
        for (const body of bodies) {
          if (transient !== undefined) return
          try {
            await this.client.sendLogBatch(body)
          } catch (error) {
            if (isTransient(error)) transient = error
            else this.#warn(`MLflow rejected metrics/tags for run ${runId}: ${(error as Error).message}`)
          }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, jobs.length) }, worker))
    // re-sending the whole group later is safe: MLflow de-duplicates identical metric points and tags
    if (transient !== undefined) throw transient
  }

  async #deliverCreate(record: Extract<TrackingRecord, { t: "create" }>, replaying: boolean): Promise<string | undefined> {
    const known = this.#runIds.get(record.ref)
    if (known !== undefined) return known // created before a crash cut the replay short
    let experimentId = this.#experimentIds.get(record.experiment)
    if (experimentId === undefined) {
      experimentId = await this.client.getOrCreateExperiment(record.experiment, experimentKindTag)
      this.#experimentIds.set(record.experiment, experimentId)
      this.#firstExperimentUrl ??= `${this.trackingUri}/#/experiments/${experimentId}${trainingView}`
    }
    const tags: Record<string, string> = {}
    for (const [key, value] of Object.entries(record.tags)) tags[key] = this.#translateTagValue(value)
    if (record.parent !== undefined) {
      const parentId = this.#resolve(record.parent)
      if (parentId === undefined) {
        this.#warn(`run ${record.runName}: its parent run was never created; logging it at top level`)
      } else tags["mlflow.parentRunId"] = parentId
    }
    let runId: string | undefined
    if (replaying) {
      // a create cut short by a crash may have reached the server: find it by its token first
      const found = await this.client.searchRuns({ experimentIds: [experimentId], filter: `tags.\`vw2.create_token\` = '${record.ref}'`, runViewType: "ALL", maxResults: 1 })
      runId = found[0]?.info.runId
      if (found[0] !== undefined) this.#runInfo.set(found[0].info.runId, { artifactUri: found[0].info.artifactUri, experimentId })
    }
    if (runId === undefined) {
      const info = await this.client.createRun({ experimentId, runName: record.runName, startTime: record.startTime, userId: tags["mlflow.user"], tags, createToken: record.ref })
      runId = info.runId
      this.#runInfo.set(runId, { artifactUri: info.artifactUri, experimentId })
    }
    this.#rememberRunId(record.ref, runId)
    const params = Object.entries(record.params).map(([key, value]) => ({ key, value }))
    if (params.length > 0) await this.client.logBatch(runId, { params })
    return runId
  }

  async #runInfoOf(runId: string): Promise<{ artifactUri: string; experimentId: string }> {
    let info = this.#runInfo.get(runId)
    if (info === undefined) {
      const run = await this.client.getRun(runId)
      info = { artifactUri: run.info.artifactUri, experimentId: run.info.experimentId }
      this.#runInfo.set(runId, info)
    }
    return info
  }

  async #deliverModel(record: Extract<TrackingRecord, { t: "model" }>): Promise<void> {
    const runId = this.#resolve(record.ref)
    if (runId === undefined) return
    const gone = record.files.filter((f) => !fs.existsSync(f.localPath))
    if (gone.length > 0) {
      this.#warn(`model ${record.name}: ${gone[0]!.localPath} is gone; not logged`)
      return
    }
    const { experimentId } = await this.#runInfoOf(runId)
    // A crash between create and READY leaves a PENDING model that the replay does not reuse: the UI shows
    // it as pending, never as a usable model.
    const model = await this.client.createLoggedModel({ experimentId, name: record.name.replace(/[/:.%"']/g, "-"), sourceRunId: runId, modelType: record.kind, tags: record.tags })
    try {
      for (const file of record.files) await this.client.uploadArtifact(model.artifactUri, file.localPath, file.artifactPath)
    } catch (error) {
      if (!isTransient(error)) await this.client.finalizeLoggedModel(model.modelId, "UPLOAD_FAILED").catch(() => undefined)
      throw error
    }
    await this.client.finalizeLoggedModel(model.modelId, "READY")
    await this.client.logRunOutputs(runId, [{ modelId: model.modelId }])
    const output = record.tags["vw2.output"]
    if (output !== undefined) await this.client.setTag(runId, modelTag(output), model.modelId)
    if (record.blob) for (const file of record.files) fs.rmSync(file.localPath, { force: true })
  }

  async #deliverRegister(record: Extract<TrackingRecord, { t: "register" }>): Promise<string | undefined> {
    const runId = this.#resolve(record.ref)
    if (runId === undefined) return undefined
    const run = await this.client.getRun(runId)
    const modelId = run.tags[modelTag(record.output)]
    if (modelId === undefined) {
      this.#warn(`run ${runId} (${run.info.runName}) logged no model for output ${JSON.stringify(record.output)}; ${record.name} not registered`)
      return undefined
    }
    await this.client.ensureRegisteredModel(record.name)
    const version = await this.client.createModelVersion({ name: record.name, source: `models:/${modelId}`, runId, modelId })
    return version.version
  }

  async #deliverArtifact(record: Extract<TrackingRecord, { t: "artifact" }>): Promise<void> {
    const runId = this.#resolve(record.ref)
    if (runId === undefined) return
    const info = await this.#runInfoOf(runId)
    if (!fs.existsSync(record.localPath)) {
      this.#warn(`artifact ${record.localPath} is gone; not uploaded`)
      return
    }
    await this.client.uploadArtifact(info.artifactUri, record.localPath, record.artifactPath)
    if (record.blob) fs.rmSync(record.localPath, { force: true })
  }

  /** The real run id for a ref, undefined when its create failed or never happened. */
  #resolve(ref: string): string | undefined {
    if (ref.startsWith("local-")) return undefined // a run this tracker could not record at all
    if (!ref.startsWith(pendingPrefix)) return ref
    if (this.#failedRefs.has(ref)) return undefined
    const id = this.#runIds.get(ref)
    if (id === undefined) this.#warn(`records for run ${ref} arrived without its create; dropped`)
    return id
  }

  #translateTagValue(value: string): string {
    if (value.startsWith(pendingPrefix)) return this.#runIds.get(value) ?? value
    const m = hitPending.exec(value)
    if (m !== null) {
      const id = this.#runIds.get(m[1]!)
      return id === undefined ? value : `hit:${id}`
    }
    return value
  }

  // ---- persistent state ------------------------------------------------------------------------

  #loadRunIds(): void {
    let text = ""
    try {
      text = fs.readFileSync(path.join(this.#dir, "run-ids.jsonl"), "utf8")
    } catch {
      return
    }
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue
      try {
        const { ref, runId } = JSON.parse(line) as { ref: string; runId: string }
        this.#runIds.set(ref, runId)
      } catch {
        // torn line from a crash
      }
    }
  }

  #rememberRunId(ref: string, runId: string): void {
    this.#runIds.set(ref, runId)
    fs.appendFileSync(path.join(this.#dir, "run-ids.jsonl"), JSON.stringify({ ref, runId }) + "\n")
  }

  #spoolHasSegments(): boolean {
    try {
      return fs.readdirSync(this.#spool.dir).some((f) => f.endsWith(".jsonl"))
    } catch {
      return false
    }
  }

  /**
   * Runs whose driver died without ending them (kill -9, power loss) are marked KILLED: first the open-run
   * records of this VW2_HOME (a run whose id was never recorded, because the driver died while its create
   * was in flight, is found by its create token), then every RUNNING run on the server whose `vw2.driver`
   * is a dead process of this host (other experiments, other VW2_HOMEs).
   */
  async #closeRunsOfDeadDrivers(): Promise<void> {
    const dir = path.join(this.#dir, "open-runs")
    for (const name of fs.readdirSync(dir)) {
      const file = path.join(dir, name)
      let record: OpenRunRecord
      try {
        record = JSON.parse(fs.readFileSync(file, "utf8")) as OpenRunRecord
      } catch {
        continue
      }
      if (record.trackingUri !== this.trackingUri || driverIsDead(record, "dead") !== true) continue
      let runId = this.#runIds.get(record.ref)
      // not created yet: its create may still sit in a spool segment nobody has replayed; keep it for then
      if (runId === undefined && this.#spoolHasSegments()) continue
      try {
        runId ??= await this.#findByCreateToken(record)
        if (runId !== undefined) await this.#markKilled(runId)
        fs.rmSync(file, { force: true })
      } catch (error) {
        if (error instanceof MlflowApiError && error.errorCode === "RESOURCE_DOES_NOT_EXIST") fs.rmSync(file, { force: true })
        // otherwise: keep the record, retry on a later start
      }
    }
    if (this.#sweptDeadDrivers) return
    try {
      await this.#closeRunsByDriverTag()
      this.#sweptDeadDrivers = true
    } catch (error) {
      this.#warn(`could not look for runs left RUNNING by dead vw2 processes: ${(error as Error).message}`)
    }
  }

  /** The run a create reached the server with, found by the token it carried (`vw2.create_token` = ref). */
  async #findByCreateToken(record: OpenRunRecord): Promise<string | undefined> {
    const experimentIds = record.experiment === undefined
      ? (await this.client.searchExperiments()).map((e) => e.experimentId)
      : [(await this.client.getExperimentByName(record.experiment))?.experimentId].filter((id): id is string => id !== undefined)
    if (experimentIds.length === 0) return undefined
    const found = await this.client.searchRuns({ experimentIds, filter: `tags.\`vw2.create_token\` = '${record.ref}'`, runViewType: "ALL", maxResults: 1 })
    if (found[0] !== undefined) this.#rememberRunId(record.ref, found[0].info.runId)
    return found[0]?.info.runId
  }

  async #markKilled(runId: string): Promise<void> {
    const run = await this.client.getRun(runId)
    if (run.info.status !== "RUNNING") return
    await this.client.updateRun(runId, { status: "KILLED", endTime: Date.now() })
    this.#warn(`run ${runId} (${run.info.runName}) was left RUNNING by a vw2 process that died; marked KILLED`)
  }

  async #closeRunsByDriverTag(): Promise<void> {
    const experimentIds = (await this.client.searchExperiments()).map((e) => e.experimentId)
    const host = os.hostname()
    // LIKE narrows the search to this host; the tag is parsed again below (`_` in a host name is a wildcard)
    const filter = `attributes.status = 'RUNNING' AND tags.\`vw2.driver\` LIKE 'host=${host.replace(/'/g, "")} %'`
    for (let i = 0; i < experimentIds.length; i += 100) {
      for (const run of await this.client.searchRuns({ experimentIds: experimentIds.slice(i, i + 100), filter })) {
        const driver = parseDriverTag(run.tags["vw2.driver"])
        if (driver === undefined || driverIsDead(driver, "unknown") !== true) continue
        await this.#markKilled(run.info.runId)
      }
    }
  }
}

/** `VW2_HOME`, defaulting to `.vw2` in the working directory (where the engine keeps its store). */
export const vw2Home = (): string => path.resolve(process.env.VW2_HOME ?? ".vw2")

/** The Tracker service backed by MLflow at `trackingUri`; flushed and closed with its scope. */
export const layer = (options: MlflowTrackerOptions): Layer.Layer<CoreTracker.Tracker> =>
  Layer.effect(CoreTracker.Tracker)(
    Effect.map(
      Effect.acquireRelease(
        Effect.promise(() => MlflowTracker.open(options)),
        (tracker) => Effect.promise(() => tracker.close())
      ),
      (tracker) => tracker.shape
    )
  )
