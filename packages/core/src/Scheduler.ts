/**
 * The scheduler: runs a Plan on the Executor, reusing what the ArtifactStore already holds, and reports
 * the run tree to the Tracker. It never prints: everything a human sees goes through a SchedulerObserver.
 *
 * Per invocation (all invocations are started at once; each waits for its inputs, the executor queues
 * them by resources):
 *   inputs failed/skipped → skipped
 *   store entry verifies → cached (a corrupt entry is moved to trash/ and recomputed)
 *   otherwise: take the invocation lock (another vw2 process may be computing it; wait, then re-check),
 *   stage a temp dir, run on the executor, publish atomically, release the lock.
 * A failure marks only its dependents skipped; interruption kills running workers, discards staging dirs
 * and ends every open tracker run as KILLED.
 *
 * What the run tree records so that runs compare (SweepRollup.ts): stage runs named `<step> · <trial label>`
 * with their config slice, seed and inputs as params and system metrics (SystemMetrics.ts); a cache hit
 * carries the producer's final metrics from the manifest (`vw2.metrics_copied_from`); a failed stage its
 * error (`vw2.error`) and `stage.log`; trial runs their stages' final metrics; the experiment run the
 * per-group statistics over seeds and `rollup.json`.
 */
import { Data, Deferred, Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Manifest } from "./ArtifactStore.ts"
import { ArtifactStore } from "./ArtifactStore.ts"
import { flattenConfig } from "./Config.ts"
import type { ExecutorEvent } from "./Executor.ts"
import { Executor } from "./Executor.ts"
import type { Plan, PlannedInvocation, PlannedTrial } from "./Planner.ts"
import type { InputArtifact, MetricPoint } from "./Stage.ts"
import { redactText } from "./Redaction.ts"
import { bestGroup, rollup, rollupMetrics, rollupTags, stageRunName, trialLabels, trialMetrics } from "./SweepRollup.ts"
import { makeSystemSampler } from "./SystemMetrics.ts"
import type { ModelUpload, RunStatus, StageRunInfo, TrackedRunId, TrackerShape } from "./Tracker.ts"
import { Tracker } from "./Tracker.ts"

export type InvocationStatus = "cached" | "pending" | "waiting" | "running" | "done" | "failed" | "skipped" | "interrupted"

export interface InvocationResult {
  readonly hash: string
  readonly step: string
  readonly stage: string
  readonly trials: ReadonlyArray<string>
  /** the stage's declared headline metrics */
  readonly headline: ReadonlyArray<string>
  readonly status: InvocationStatus
  readonly durationMs?: number
  readonly gpus?: ReadonlyArray<string>
  readonly error?: string
  /** last lines of a failed worker's stderr */
  readonly stderrTail?: string
  /** last value of each metric the stage reported */
  readonly metrics: Readonly<Record<string, number>>
  /** tracker run that produced the artifact (this run's, or the one recorded in the manifest for a cache hit) */
  readonly producedBy?: string
}

export interface RunSummary {
  readonly status: "succeeded" | "failed" | "interrupted"
  readonly experimentRunId: string
  readonly durationMs: number
  readonly results: ReadonlyArray<InvocationResult>
}

export interface StatusDetail {
  readonly gpus?: ReadonlyArray<string>
  readonly error?: string
  readonly durationMs?: number
  /** why a cached entry was not used, e.g. "corrupt: model/w.bin does not match its sha256" */
  readonly note?: string
  /** last lines of a failed worker's stderr */
  readonly stderrTail?: string
}

/** Life-cycle hooks; progress displays, loggers and tests are observers side by side. */
export interface SchedulerObserver {
  readonly onStart?: (plan: Plan, experimentRunId: string) => void
  readonly onStatus?: (invocation: PlannedInvocation, status: InvocationStatus, detail: StatusDetail) => void
  readonly onProgress?: (invocation: PlannedInvocation, done: number, total: number, message: string | undefined) => void
  readonly onMetrics?: (invocation: PlannedInvocation, values: Readonly<Record<string, number>>, step: number) => void
  readonly onLog?: (invocation: PlannedInvocation, message: string) => void
  readonly onEnd?: (summary: RunSummary) => void
}

export interface RunOptions {
  readonly plan: Plan
  /** absolute path of the experiment file (workers import it) */
  readonly experimentFile: string
  readonly observer?: SchedulerObserver
  /** extra tags for the experiment run (command line, git commit) */
  readonly tags?: Readonly<Record<string, string>>
  /** metrics are sent to the tracker in batches at most this often */
  readonly metricsFlushMs?: number
  /** a running stage's system metrics (CPU, memory, RSS, GPUs) are sampled this often (default 5 s), and once at its end */
  readonly systemMetricsMs?: number
  /** files for the experiment run's artifacts (resolved config, experiment file, git diff: cli RunContext.ts) */
  readonly artifacts?: ReadonlyArray<{ readonly localPath: string; readonly artifactPath: string }>
}

/** The plan cannot run on this executor (e.g. a stage needs more GPUs than it has); nothing was started. */
export class PlanRejected extends Data.TaggedError("PlanRejected")<{ readonly problems: ReadonlyArray<string> }> {
  override get message() {
    return `the plan cannot run on this executor:\n${this.problems.map((p) => `  ${p}`).join("\n")}`
  }
}

type Outcome = "ok" | "failed" | "skipped" | "interrupted"

const metricsBatchSize = 100

/** MLflow's limit on a tag value (mlflow/utils/validation.py, MAX_TAG_VAL_LENGTH), in code points */
const tagValueLimit = 8000
/** lines of a stage's log kept in memory for `stage.log` when it fails */
const stageLogLines = 5000

/** `value` cut to MLflow's tag limit, with a marker saying how much was cut and where the rest is. */
export const truncateTagValue = (value: string, limit = tagValueLimit): string => {
  const chars = Array.from(value)
  if (chars.length <= limit) return value
  const markerFor = (cut: number) => ` … [${cut} more characters cut; see stage.log]`
  // room for the longest marker: the count cut never has more digits than the whole length
  const kept = limit - Array.from(markerFor(chars.length)).length
  return chars.slice(0, kept).join("") + markerFor(chars.length - kept)
}

/**
 * A stage run's params: its config slice, flattened; plus its seed (seeded stages) and which upstream output
 * each input is (`input.model` = `mlp.model@1a2b3c4d5e6f`), so a stage with an empty config (an evaluation)
 * still says what it ran on. A config key of the same name wins.
 */
export const stageParams = (inv: PlannedInvocation): Record<string, string> => ({
  ...(inv.seeded ? { seed: String(inv.seed) } : {}),
  ...Object.fromEntries(Object.entries(inv.inputs).map(([name, input]) => [`input.${name}`, `${input.step}.${input.output}@${input.hash.slice(0, 12)}`])),
  ...flattenConfig(inv.config)
})

/** A checkpoint is an output whose artifact kind says so (`dldm-checkpoint`, `ar-checkpoint`, `judge-checkpoint`). */
export const isCheckpointKind = (kind: string): boolean => /(^|-)checkpoint$/.test(kind)

/** The checkpoint outputs of a published invocation, as models for the tracker (files as the manifest lists them). */
const checkpointsOf = (inv: PlannedInvocation, manifest: Manifest, entry: string): Array<ModelUpload> =>
  Object.entries(inv.outputs).filter(([, kind]) => isCheckpointKind(kind)).map(([output, kind]) => ({
    output,
    kind,
    name: `${inv.step}.${output}`,
    files: manifest.files
      .filter((f) => f.path.startsWith(`${output}/`))
      .map((f) => ({ localPath: path.join(entry, f.path), artifactPath: f.path.slice(output.length + 1) })),
    tags: { "vw2.step": inv.step, "vw2.stage": inv.stage, "vw2.stage_hash": inv.hash }
  }))

/** the finite values of a metrics record (what a manifest can hold: JSON has no NaN) */
const finiteMetrics = (metrics: Readonly<Record<string, unknown>> | undefined): Record<string, number> =>
  Object.fromEntries(Object.entries(metrics ?? {}).filter((e): e is [string, number] => typeof e[1] === "number" && Number.isFinite(e[1])))

/** Uploads `text` as the run's artifact `name` through a temp file (tracking never fails the pipeline: errors are dropped). */
const uploadText = (tracker: TrackerShape, runId: TrackedRunId, name: string, text: string): Effect.Effect<void> =>
  Effect.acquireUseRelease(
    Effect.try({ try: () => fs.mkdtempSync(path.join(os.tmpdir(), "vw2-artifact-")), catch: (cause) => cause }),
    (dir) =>
      Effect.gen(function*() {
        const file = path.join(dir, name)
        yield* Effect.try({ try: () => fs.writeFileSync(file, text), catch: (cause) => cause })
        // resolves once uploaded or copied into the spool, so the file may go right after
        yield* tracker.logArtifacts(runId, [{ localPath: file, artifactPath: name }])
      }),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  ).pipe(Effect.ignore)

export const runPlan = (options: RunOptions): Effect.Effect<RunSummary, PlanRejected, ArtifactStore | Executor | Tracker> =>
  Effect.gen(function*() {
    const { plan, observer = {} } = options
    const store = yield* ArtifactStore
    const executor = yield* Executor
    const tracker = yield* Tracker
    const startedAt = Date.now()

    const problems = plan.invocations.flatMap((inv) => {
      const why = executor.canRun(inv.resources)
      return why === undefined ? [] : [`${inv.step} (${inv.hash.slice(0, 12)}): ${why}`]
    })
    if (problems.length > 0) return yield* new PlanRejected({ problems: [...new Set(problems)] })
    yield* store.cleanStaleStaging

    // Every tracker run this scheduler opened and has not ended yet: ended as KILLED on interruption.
    const openRuns = new Set<TrackedRunId>()
    const startRun = (start: Effect.Effect<TrackedRunId>) => Effect.tap(start, (id) => Effect.sync(() => openRuns.add(id)))
    const endRun = (id: TrackedRunId, status: RunStatus) =>
      Effect.suspend(() => (openRuns.delete(id) ? tracker.endRun(id, status) : Effect.void))

    const experimentRunId = yield* startRun(tracker.startExperimentRun({
      experiment: plan.experiment,
      configHash: plan.configHash,
      params: flattenConfig(plan.config),
      tags: {
        "vw2.config_hash": plan.configHash,
        "vw2.backend": executor.name,
        "vw2.trials": String(plan.trials.length),
        "vw2.invocations": String(plan.invocations.length),
        ...options.tags
      }
    }))
    if (options.artifacts !== undefined && options.artifacts.length > 0) yield* tracker.logArtifacts(experimentRunId, options.artifacts)

    const results = new Map<string, InvocationResult>()
    const trialsById = new Map(plan.trials.map((t) => [t.id, t]))
    const trialRuns = new Map<string, TrackedRunId>()
    // labels become run names and tags: a swept secret is masked like in params
    const labels = new Map([...trialLabels(plan.trials)].map(([id, label]) => [id, redactText(label)]))
    const finish = Effect.gen(function*() {
      for (const trial of plan.trials) {
        const id = yield* startRun(tracker.startTrialRun(experimentRunId, {
          trialId: trial.id,
          runName: labels.get(trial.id) || trial.id,
          seed: trial.seed,
          params: Object.fromEntries(Object.entries(trial.assignments).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])),
          tags: { "vw2.trial": trial.id, "vw2.trial_config_hash": trial.configHash, "vw2.seed": String(trial.seed) }
        }))
        trialRuns.set(trial.id, id)
      }
      observer.onStart?.(plan, experimentRunId)

      const outcomes = new Map(plan.invocations.map((inv) => [inv.hash, Deferred.makeUnsafe<Outcome>()]))
      const setStatus = (inv: PlannedInvocation, status: InvocationStatus, detail: StatusDetail & Partial<InvocationResult> = {}) => {
        const previous = results.get(inv.hash)
        results.set(inv.hash, {
          hash: inv.hash,
          step: inv.step,
          stage: inv.stage,
          trials: inv.trials,
          headline: inv.headline,
          metrics: previous?.metrics ?? {},
          ...previous,
          ...detail,
          status
        })
        observer.onStatus?.(inv, status, detail)
      }
      for (const inv of plan.invocations) setStatus(inv, "pending")

      const stageRunInfo = (inv: PlannedInvocation, trial: PlannedTrial, cache: { _tag: "miss" } | { _tag: "hit"; producedBy: string | undefined }): StageRunInfo => ({
        step: inv.step,
        runName: stageRunName(inv.step, labels.get(trial.id) ?? ""),
        stage: inv.stage,
        stageHash: inv.hash,
        cache,
        params: stageParams(inv),
        tags: {
          "vw2.stage": inv.stage,
          "vw2.stage_version": inv.stageVersion,
          "vw2.stage_hash": inv.hash,
          "vw2.step": inv.step,
          "vw2.cache": cache._tag === "miss" ? "miss" : `hit:${cache.producedBy ?? "unknown"}`,
          ...(inv.headline.length === 0 ? {} : { "vw2.headline": inv.headline.join(",") })
        }
      })

      /**
       * stage runs recording `inv` under each of `trials`, ended right away (cache hits, skips, failures of shared
       * invocations); `copied` are the producer's final metrics, logged on each so a cache hit compares like a run
       */
      const recordStageRuns = (
        inv: PlannedInvocation,
        trials: ReadonlyArray<string>,
        producedBy: string | undefined,
        status: RunStatus,
        extraTags: Record<string, string> = {},
        copied: Readonly<Record<string, number>> = {}
      ) =>
        Effect.forEach(trials, (trialId) =>
          Effect.gen(function*() {
            const info = stageRunInfo(inv, trialsById.get(trialId)!, { _tag: "hit", producedBy })
            const copiedPoints = Object.entries(copied).map(([key, value]) => ({ key, value, step: 0, timestamp: Date.now() }))
            const copyTags: Record<string, string> = copiedPoints.length > 0 && producedBy !== undefined ? { "vw2.metrics_copied_from": producedBy } : {}
            const id = yield* startRun(tracker.startStageRun(trialRuns.get(trialId)!, { ...info, tags: { ...info.tags, ...copyTags, ...extraTags } }))
            if (copiedPoints.length > 0) yield* tracker.logMetrics(id, copiedPoints)
            yield* endRun(id, status)
          }), { discard: true })

      /** a failed stage's record: its error as the `vw2.error` tag and its log as the `stage.log` artifact */
      const recordFailure = (runId: TrackedRunId, error: string, log: string) =>
        Effect.andThen(tracker.setTags(runId, { "vw2.error": truncateTagValue(redactText(error)) }), uploadText(tracker, runId, "stage.log", redactText(log)))

      const inputsOf = (inv: PlannedInvocation): Record<string, InputArtifact> =>
        Object.fromEntries(Object.entries(inv.inputs).map(([name, input]) => [name, { dir: path.join(store.entryDir(input.hash), input.output), kind: input.kind, hash: input.hash }]))

      const execute = (inv: PlannedInvocation, note: string | undefined): Effect.Effect<Outcome> =>
        Effect.scoped(Effect.gen(function*() {
          const [ownerTrial, ...otherTrials] = inv.trials as [string, ...Array<string>]
          yield* store.lock(inv.hash, () => setStatus(inv, "waiting", { note: "another vw2 process is computing it" }))
          const again = yield* Effect.orElseSucceed(store.verify(inv.hash), () => ({ _tag: "absent" as const }))
          if (again._tag === "valid") {
            const metrics = finiteMetrics(again.manifest.metrics)
            setStatus(inv, "cached", { producedBy: again.manifest.tracking.runId, metrics })
            yield* recordStageRuns(inv, inv.trials, again.manifest.tracking.runId, "FINISHED", {}, metrics)
            return "ok" as const
          }
          const stageRunId = yield* startRun(tracker.startStageRun(trialRuns.get(ownerTrial)!, stageRunInfo(inv, trialsById.get(ownerTrial)!, { _tag: "miss" })))
          const staging = yield* Effect.acquireRelease(
            Effect.orDie(store.stage(inv.hash)),
            (s) => store.discard(s) // after a successful publish the staging dir is gone already
          )
          const metricsBuffer: Array<MetricPoint> = []
          const lastMetrics: Record<string, number> = {}
          const flushMetrics = Effect.suspend(() => {
            if (metricsBuffer.length === 0) return Effect.void
            return tracker.logMetrics(stageRunId, metricsBuffer.splice(0, metricsBuffer.length))
          })
          yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(options.metricsFlushMs ?? 1000), flushMetrics)))
          yield* Effect.addFinalizer(() => flushMetrics)
          // system metrics go to the stage run only: not into lastMetrics, the manifest or the roll-ups
          let sampler: ReturnType<typeof makeSystemSampler> | undefined
          let systemStep = 0
          const sampleSystem = Effect.suspend(() => {
            if (sampler === undefined) return Effect.void
            const step = systemStep++
            return Effect.map(sampler.sample, (values) => {
              const timestamp = Date.now()
              for (const [key, value] of Object.entries(values)) metricsBuffer.push({ key, value, step, timestamp })
            })
          })
          yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(options.systemMetricsMs ?? 5000), sampleSystem)))
          // the stage's log lines (worker output and ctx.log), kept for `stage.log` if it fails
          const logLines: Array<string> = []
          let startedAtMs = Date.now()
          const onEvent = (event: ExecutorEvent) => {
            switch (event.type) {
              case "started": {
                startedAtMs = Date.now()
                // executors that say which process runs the stage get its RSS; in-process ones run it in this process
                const pid = event.pid ?? (executor.name === "inline" ? process.pid : undefined)
                sampler = makeSystemSampler({ gpus: event.gpus, ...(pid === undefined ? {} : { pid }) })
                setStatus(inv, "running", note === undefined ? { gpus: event.gpus } : { gpus: event.gpus, note })
                return
              }
              case "progress":
                observer.onProgress?.(inv, event.done, event.total, event.message)
                return
              case "metrics":
                for (const [key, value] of Object.entries(event.values)) {
                  lastMetrics[key] = value
                  metricsBuffer.push({ key, value, step: event.step, timestamp: event.timestamp })
                }
                results.set(inv.hash, { ...results.get(inv.hash)!, metrics: { ...lastMetrics } })
                observer.onMetrics?.(inv, event.values, event.step)
                if (metricsBuffer.length >= metricsBatchSize) Effect.runFork(flushMetrics)
                return
              case "log": {
                // a stage may print its config: secrets are masked before the terminal, log files and stage.log
                const message = redactText(event.message)
                logLines.push(`${new Date(event.timestamp).toISOString()} ${message}`)
                if (logLines.length > 2 * stageLogLines) logLines.splice(0, logLines.length - stageLogLines)
                observer.onLog?.(inv, message)
                return
              }
              case "upload":
              case "checkpoint":
                return
            }
          }
          const request = {
            experimentFile: options.experimentFile,
            step: inv.step,
            stageName: inv.stage,
            config: inv.config,
            seed: inv.seed,
            invocationHash: inv.hash,
            inputs: inputsOf(inv),
            outputRoot: staging.outputRoot,
            scratchDir: staging.scratchDir,
            resumeDir: store.resumeDirOf(inv.hash),
            resources: inv.resources
          }
          const ran = yield* Effect.exit(executor.run(request, onEvent))
          const durationMs = Date.now() - startedAtMs
          if (Exit.isFailure(ran) && Exit.hasInterrupts(ran)) return yield* Effect.interrupt
          yield* sampleSystem // at least one sample per stage, however short
          if (Exit.isFailure(ran)) {
            const error = ran.cause.reasons.map((r) => (r._tag === "Fail" ? r.error.message : String(r._tag === "Die" ? r.defect : "interrupted"))).join("; ")
            const stderrTail = ran.cause.reasons.flatMap((r) => (r._tag === "Fail" && r.error.stderrTail ? [r.error.stderrTail] : [])).join("\n")
            setStatus(inv, "failed", stderrTail === "" ? { error, durationMs } : { error, durationMs, stderrTail })
            const log = [...logLines.slice(-stageLogLines), "", `--- ${inv.step} failed ---`, error, ...(stderrTail === "" ? [] : ["", "--- stderr (last lines) ---", stderrTail])]
            yield* flushMetrics
            yield* recordFailure(stageRunId, error, log.join("\n") + "\n")
            yield* endRun(stageRunId, "FAILED")
            yield* recordStageRuns(inv, otherTrials, stageRunId, "FAILED", { "vw2.status": "failed", "vw2.error": truncateTagValue(redactText(error)) })
            return "failed" as const
          }
          // uninterruptible: a Ctrl-C waits for the rename instead of racing the staging cleanup
          const published = yield* Effect.exit(Effect.uninterruptible(store.publish(inv.hash, staging, {
            hash: inv.hash,
            step: inv.step,
            stage: inv.stage,
            stageVersion: inv.stageVersion,
            seed: inv.seed,
            config: inv.config,
            inputs: Object.fromEntries(Object.entries(inv.inputs).map(([k, v]) => [k, `${v.hash}/${v.output}`])),
            outputs: inv.outputs,
            uploads: ran.value.uploads,
            tracking: { runId: stageRunId },
            metrics: finiteMetrics(lastMetrics),
            durationMs
          })))
          if (Exit.isFailure(published)) {
            const error = published.cause.reasons.map((r) => (r._tag === "Fail" ? r.error.message : String(r))).join("; ")
            setStatus(inv, "failed", { error, durationMs })
            yield* flushMetrics
            yield* recordFailure(stageRunId, error, [...logLines.slice(-stageLogLines), "", `--- publishing ${inv.step} failed ---`, error].join("\n") + "\n")
            yield* endRun(stageRunId, "FAILED")
            return "failed" as const
          }
          const entry = store.entryDir(inv.hash)
          // the published outputs supersede the mid-stage checkpoints
          yield* store.dropResume(inv.hash)
          yield* tracker.logArtifacts(stageRunId, [
            { localPath: path.join(entry, "manifest.json"), artifactPath: "manifest.json" },
            ...ran.value.uploads.filter((u) => fs.existsSync(path.join(entry, u))).map((u) => ({ localPath: path.join(entry, u), artifactPath: u }))
          ])
          // the stage's log (worker stdout/stderr and ctx.log lines) beside its outputs, as for a failed stage
          if (logLines.length > 0) yield* uploadText(tracker, stageRunId, "stage.log", logLines.slice(-stageLogLines).join("\n") + "\n")
          // checkpoints become models of this run, uploaded in the background: a published entry never moves,
          // and the tracker's flush at the end of the run waits for them
          if (tracker.logModel !== undefined) {
            for (const model of checkpointsOf(inv, published.value, entry)) yield* Effect.forkDetach(tracker.logModel(stageRunId, model))
          }
          yield* flushMetrics
          setStatus(inv, "done", { durationMs, gpus: ran.value.gpus, producedBy: stageRunId })
          yield* endRun(stageRunId, "FINISHED")
          yield* recordStageRuns(inv, otherTrials, stageRunId, "FINISHED", {}, finiteMetrics(lastMetrics))
          return "ok" as const
        }))

      const runOne = (inv: PlannedInvocation): Effect.Effect<void> =>
        Effect.gen(function*() {
          const deps = yield* Effect.forEach(inv.dependsOn, (h) => Deferred.await(outcomes.get(h)!))
          let outcome: Outcome
          if (deps.some((d) => d !== "ok")) {
            const failedStep = inv.dependsOn.map((h) => results.get(h)!).find((r) => r.status !== "done" && r.status !== "cached")
            setStatus(inv, "skipped", { error: `input from ${failedStep?.step ?? "an upstream step"} is missing (${failedStep?.status ?? "failed"})` })
            yield* recordStageRuns(inv, inv.trials, undefined, "KILLED", { "vw2.status": "skipped" })
            outcome = "skipped"
          } else {
            const found = yield* Effect.orElseSucceed(store.verify(inv.hash), () => ({ _tag: "absent" as const }))
            if (found._tag === "valid") {
              const metrics = finiteMetrics(found.manifest.metrics)
              setStatus(inv, "cached", { producedBy: found.manifest.tracking.runId, metrics })
              yield* recordStageRuns(inv, inv.trials, found.manifest.tracking.runId, "FINISHED", {}, metrics)
              outcome = "ok"
            } else {
              const note = found._tag === "corrupt" ? `cached entry was corrupt (${found.reason}); recomputing` : undefined
              if (note !== undefined) observer.onLog?.(inv, note)
              outcome = yield* execute(inv, note)
            }
          }
          yield* Deferred.succeed(outcomes.get(inv.hash)!, outcome)
        }).pipe(
          Effect.onInterrupt(() =>
            Effect.gen(function*() {
              const current = results.get(inv.hash)?.status
              if (current === "running" || current === "pending" || current === "waiting") setStatus(inv, "interrupted")
              yield* Deferred.succeed(outcomes.get(inv.hash)!, "interrupted")
            })
          )
        )

      yield* Effect.forEach(plan.invocations, runOne, { concurrency: "unbounded", discard: true })

      const all = plan.invocations.map((inv) => results.get(inv.hash)!)
      // each trial run gets its stages' final metrics (`<step>/<metric>`); the experiment run their roll-up
      const finalMetrics = new Map<string, Record<string, number>>()
      for (const trial of plan.trials) {
        const byStep = Object.fromEntries(Object.entries(trial.invocations).flatMap(([step, hash]) => {
          const r = results.get(hash)
          return r !== undefined && (r.status === "done" || r.status === "cached") ? [[step, r.metrics]] : []
        }))
        const metrics = trialMetrics(byStep)
        finalMetrics.set(trial.id, metrics)
        const timestamp = Date.now()
        const points = Object.entries(metrics).map(([key, value]) => ({ key, value, step: 0, timestamp }))
        if (points.length > 0) yield* tracker.logMetrics(trialRuns.get(trial.id)!, points)
        const ok = Object.values(trial.invocations).every((h) => {
          const s = results.get(h)?.status
          return s === "done" || s === "cached"
        })
        yield* endRun(trialRuns.get(trial.id)!, ok ? "FINISHED" : "FAILED")
      }
      const rolledUp = rollup({ experiment: plan.experiment, configHash: plan.configHash, trials: plan.trials, metrics: finalMetrics, runIds: trialRuns })
      const timestamp = Date.now()
      const rollupPoints = Object.entries(rollupMetrics(rolledUp)).map(([key, value]) => ({ key, value, step: 0, timestamp }))
      if (rollupPoints.length > 0) yield* tracker.logMetrics(experimentRunId, rollupPoints)
      const groupTags = Object.fromEntries(Object.entries(rollupTags(rolledUp)).map(([key, label]) => [key, redactText(label)]))
      const best = plan.objective === undefined ? undefined : bestGroup(rolledUp, plan.objective)
      if (best !== undefined) groupTags["vw2.best_group"] = `${best.id} ${redactText(best.label)}`.trim()
      if (Object.keys(groupTags).length > 0) yield* tracker.setTags(experimentRunId, groupTags)
      yield* uploadText(tracker, experimentRunId, "rollup.json", redactText(JSON.stringify(rolledUp, null, 2)) + "\n")
      const failed = all.some((r) => r.status !== "done" && r.status !== "cached")
      yield* endRun(experimentRunId, failed ? "FAILED" : "FINISHED")
      return all
    })

    // Whatever happens (interruption included), no tracker run is left open and the tracker is flushed.
    const closeOpenRuns = Effect.suspend(() => Effect.forEach([...openRuns], (id) => endRun(id, "KILLED"), { discard: true }))
    const all = yield* finish.pipe(
      Effect.onInterrupt(() =>
        Effect.sync(() =>
          observer.onEnd?.({
            status: "interrupted",
            experimentRunId,
            durationMs: Date.now() - startedAt,
            results: plan.invocations.flatMap((inv) => results.get(inv.hash) ?? [])
          })
        )
      ),
      Effect.ensuring(Effect.andThen(closeOpenRuns, tracker.flush))
    )
    const summary: RunSummary = {
      status: all.every((r) => r.status === "done" || r.status === "cached") ? "succeeded" : "failed",
      experimentRunId,
      durationMs: Date.now() - startedAt,
      results: all
    }
    observer.onEnd?.(summary)
    return summary
  })

export type { Manifest }
