/**
 * The MLflow run tree as an observer of the run-event stream (RunEvent.ts): it maps a run's events onto the
 * Tracker (experiment run → trial runs → stage runs) and is the only code that calls it during a run. It needs
 * nothing but the events, so a recorded stream replayed into a fresh run tree records the same tree
 * (docs/engine.md, "The run-event stream").
 *
 * What it records so that runs compare (SweepRollup.ts): stage runs named `<step> · <trial label>` with their
 * config slice, seed and inputs as params, their metrics and system metrics; a cache hit carries the producer's
 * final metrics (`vw2.metrics_copied_from`); a failed stage its error (`vw2.error`) and `stage.log`; a published
 * stage its manifest, uploads, `stage.log` and checkpoints as logged models; trial runs their stages' final
 * metrics; the experiment run the per-group statistics over seeds, the best group and `rollup.json`. At the end
 * of the run every run it opened and did not end is ended KILLED, and the tracker is flushed.
 *
 * `RunLinks` is the narrow way back: the Scheduler asks it for the stage run of an invocation (the producer link
 * a manifest records) and for the experiment run (RunSummary); each answers once the run tree has handled the
 * event that opens that run.
 */
import { Deferred, Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { flattenConfig } from "./Config.ts"
import type { PlannedInvocation, PlannedTrial, Plan } from "./Planner.ts"
import { redactText } from "./Redaction.ts"
import type { RunEvent, RunObserver } from "./RunEvent.ts"
import { bestGroup, rollup, rollupMetrics, rollupTags, stageRunName, trialLabels } from "./SweepRollup.ts"
import type { ModelUpload, RunStatus, StageRunInfo, TrackedRunId, TrackerShape } from "./Tracker.ts"

/** MLflow's limit on a tag value (mlflow/utils/validation.py, MAX_TAG_VAL_LENGTH), in code points */
const tagValueLimit = 8000
/** lines of a stage's log kept in memory for `stage.log` */
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
const checkpointsOf = (inv: PlannedInvocation, files: ReadonlyArray<string>, entryDir: string): Array<ModelUpload> =>
  Object.entries(inv.outputs).filter(([, kind]) => isCheckpointKind(kind)).map(([output, kind]) => ({
    output,
    kind,
    name: `${inv.step}.${output}`,
    files: files
      .filter((f) => f.startsWith(`${output}/`))
      .map((f) => ({ localPath: path.join(entryDir, f), artifactPath: f.slice(output.length + 1) })),
    tags: { "vw2.step": inv.step, "vw2.stage": inv.stage, "vw2.stage_hash": inv.hash }
  }))

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

/** What the Scheduler asks the run tree (the only answers tracking gives back to the engine). */
export interface RunLinks {
  /** the experiment run, once opened (undefined if the tracker could not open it) */
  readonly experimentRun: Effect.Effect<TrackedRunId | undefined>
  /** the stage run recording `invocation`'s own execution, once opened (when the invocation started running) */
  readonly stageRun: (invocation: string) => Effect.Effect<TrackedRunId | undefined>
  /** the experiment run if it is open already, without waiting (records written on Ctrl-C) */
  readonly experimentRunNow: () => TrackedRunId | undefined
}

export type RunTree = RunObserver & RunLinks

/** A run id some code waits for; settled once, with undefined where the tracker call never answered. */
const link = () => {
  const deferred = Deferred.makeUnsafe<TrackedRunId | undefined>()
  let value: TrackedRunId | undefined
  return {
    await: Deferred.await(deferred),
    now: () => value,
    settle: (id: TrackedRunId | undefined) => {
      value ??= id
      Deferred.doneUnsafe(deferred, Effect.succeed(id))
    }
  }
}

/** The run tree of one run on `tracker`. Feed it the run's events in order (Scheduler.ts does). */
export const makeRunTree = (tracker: TrackerShape): RunTree => {
  let plan: Plan | undefined
  let labels = new Map<string, string>()
  let invocations = new Map<string, PlannedInvocation>()
  let trials = new Map<string, PlannedTrial>()
  const experimentRun = link()
  const trialRuns = new Map<string, TrackedRunId>()
  const stageRuns = new Map<string, ReturnType<typeof link>>()
  const stageRunLink = (hash: string) => {
    let l = stageRuns.get(hash)
    if (l === undefined) stageRuns.set(hash, (l = link()))
    return l
  }
  // every run opened and not ended yet: ended KILLED at the end of the run
  const openRuns = new Set<TrackedRunId>()
  const startRun = (start: Effect.Effect<TrackedRunId>) => Effect.tap(start, (id) => Effect.sync(() => openRuns.add(id)))
  const endRun = (id: TrackedRunId | undefined, status: RunStatus) =>
    Effect.suspend(() => (id !== undefined && openRuns.delete(id) ? tracker.endRun(id, status) : Effect.void))
  // each invocation's log lines (worker output and ctx.log), for `stage.log`
  const logs = new Map<string, Array<string>>()

  const stageRunInfo = (inv: PlannedInvocation, trialId: string, cache: StageRunInfo["cache"]): StageRunInfo => ({
    step: inv.step,
    runName: stageRunName(inv.step, labels.get(trialId) ?? ""),
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

  /** the owner trial's stage run for `inv`'s own execution, opened on first need */
  const openStageRun = (inv: PlannedInvocation) =>
    Effect.gen(function*() {
      const l = stageRunLink(inv.hash)
      if (l.now() !== undefined) return l.now()
      const parent = trialRuns.get(inv.trials[0]!)
      if (parent === undefined) return undefined
      const id = yield* startRun(tracker.startStageRun(parent, stageRunInfo(inv, inv.trials[0]!, { _tag: "miss" })))
      l.settle(id)
      return id
    })

  /**
   * stage runs recording `inv` under each of `trialIds`, ended right away (cache hits, skips, failures of shared
   * invocations); `copied` are the producer's final metrics, logged on each so a cache hit compares like a run
   */
  const recordStageRuns = (
    inv: PlannedInvocation,
    trialIds: ReadonlyArray<string>,
    producedBy: TrackedRunId | undefined,
    status: RunStatus,
    extraTags: Record<string, string> = {},
    copied: Readonly<Record<string, number>> = {},
    timestamp = Date.now()
  ) =>
    Effect.forEach(trialIds, (trialId) =>
      Effect.gen(function*() {
        const parent = trialRuns.get(trialId)
        if (parent === undefined) return
        const info = stageRunInfo(inv, trialId, { _tag: "hit", producedBy })
        const copiedPoints = Object.entries(copied).map(([key, value]) => ({ key, value, step: 0, timestamp }))
        const copyTags: Record<string, string> = copiedPoints.length > 0 && producedBy !== undefined ? { "vw2.metrics_copied_from": producedBy } : {}
        const id = yield* startRun(tracker.startStageRun(parent, { ...info, tags: { ...info.tags, ...copyTags, ...extraTags } }))
        if (copiedPoints.length > 0) yield* tracker.logMetrics(id, copiedPoints)
        yield* endRun(id, status)
      }), { discard: true })

  const logText = (hash: string) => (logs.get(hash) ?? []).slice(-stageLogLines)

  const handle = (event: RunEvent): Effect.Effect<void> =>
    Effect.gen(function*() {
      switch (event.type) {
        case "run-started": {
          plan = event.plan
          // labels become run names and tags: a swept secret is masked like in params
          labels = new Map([...trialLabels(plan.trials)].map(([id, label]) => [id, redactText(label)]))
          invocations = new Map(plan.invocations.map((inv) => [inv.hash, inv]))
          trials = new Map(plan.trials.map((t) => [t.id, t]))
          const id = yield* startRun(tracker.startExperimentRun({
            experiment: plan.experiment,
            configHash: plan.configHash,
            params: flattenConfig(plan.config),
            tags: {
              "vw2.config_hash": plan.configHash,
              "vw2.backend": event.backend,
              "vw2.trials": String(plan.trials.length),
              "vw2.invocations": String(plan.invocations.length),
              ...event.tags
            }
          }))
          experimentRun.settle(id)
          if (event.artifacts.length > 0) yield* tracker.logArtifacts(id, event.artifacts)
          return
        }
        case "trial-started": {
          const trial = trials.get(event.trial)
          const parent = experimentRun.now()
          if (trial === undefined || parent === undefined) return
          const id = yield* startRun(tracker.startTrialRun(parent, {
            trialId: trial.id,
            runName: labels.get(trial.id) || trial.id,
            seed: trial.seed,
            params: Object.fromEntries(Object.entries(trial.assignments).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])),
            tags: { "vw2.trial": trial.id, "vw2.trial_config_hash": trial.configHash, "vw2.seed": String(trial.seed) }
          }))
          trialRuns.set(trial.id, id)
          return
        }
        case "log": {
          if (event.invocation === undefined) return
          const lines = logs.get(event.invocation) ?? []
          logs.set(event.invocation, lines)
          lines.push(`${new Date(event.timestamp).toISOString()} ${event.message}`)
          if (lines.length > 2 * stageLogLines) lines.splice(0, lines.length - stageLogLines)
          return
        }
        case "metrics":
        case "system-metrics": {
          const id = event.invocation === undefined ? undefined : stageRunLink(event.invocation).now()
          if (id === undefined) return
          // one call per event: the tracker batches deliveries (the only batching of a metric point)
          const points = Object.entries(event.values).map(([key, value]) => ({ key, value, step: event.step, timestamp: event.timestamp }))
          if (points.length > 0) yield* tracker.logMetrics(id, points)
          return
        }
        case "cache-hit": {
          const inv = invocations.get(event.invocation)
          if (inv !== undefined) yield* recordStageRuns(inv, inv.trials, event.producedBy, "FINISHED", {}, event.metrics, event.timestamp)
          return
        }
        case "published": {
          const inv = invocations.get(event.invocation)
          const id = stageRunLink(event.invocation).now()
          if (inv === undefined || id === undefined) return
          yield* tracker.logArtifacts(id, [
            { localPath: path.join(event.entryDir, "manifest.json"), artifactPath: "manifest.json" },
            ...event.uploads.map((u) => ({ localPath: path.join(event.entryDir, u), artifactPath: u }))
          ])
          // the stage's log (worker stdout/stderr and ctx.log lines) beside its outputs, as for a failed stage
          const log = logText(inv.hash)
          if (log.length > 0) yield* uploadText(tracker, id, "stage.log", log.join("\n") + "\n")
          // checkpoints become models of this run, uploaded in the background: a published entry never moves,
          // and the tracker's flush at the end of the run waits for them
          if (tracker.logModel !== undefined) {
            for (const model of checkpointsOf(inv, event.files, event.entryDir)) yield* Effect.forkDetach(tracker.logModel(id, model))
          }
          yield* endRun(id, "FINISHED")
          yield* recordStageRuns(inv, inv.trials.slice(1), id, "FINISHED", {}, event.metrics, event.timestamp)
          return
        }
        case "status": {
          const inv = invocations.get(event.invocation)
          if (inv === undefined) return
          switch (event.status) {
            case "running":
              yield* openStageRun(inv)
              return
            case "skipped":
              yield* recordStageRuns(inv, inv.trials, undefined, "KILLED", { "vw2.status": "skipped" })
              return
            case "paused": {
              // stopped at an early-stopping rung, its checkpoint kept for a later resume (which opens a run of its own)
              const l = stageRunLink(inv.hash)
              const id = l.now()
              if (id === undefined) return
              yield* tracker.setTags(id, { "vw2.status": "paused", ...(event.note === undefined ? {} : { "vw2.note": event.note }) })
              yield* endRun(id, "FINISHED")
              stageRuns.delete(inv.hash)
              return
            }
            case "failed": {
              // a stage that failed before it started (its executor refused it) still gets its run and record
              const id = yield* openStageRun(inv)
              const error = event.error ?? "failed"
              const header = event.publishing === true ? `--- publishing ${inv.step} failed ---` : `--- ${inv.step} failed ---`
              const stderr = event.stderrTail === undefined || event.stderrTail === "" ? [] : ["", "--- stderr (last lines) ---", event.stderrTail]
              if (id !== undefined) {
                yield* tracker.setTags(id, { "vw2.error": truncateTagValue(redactText(error)) })
                yield* uploadText(tracker, id, "stage.log", redactText([...logText(inv.hash), "", header, error, ...stderr].join("\n") + "\n"))
                yield* endRun(id, "FAILED")
              }
              if (event.publishing !== true) {
                yield* recordStageRuns(inv, inv.trials.slice(1), id, "FAILED", { "vw2.status": "failed", "vw2.error": truncateTagValue(redactText(error)) })
              }
              return
            }
            default:
              return
          }
        }
        case "rollup": {
          const current = plan
          const parent = experimentRun.now()
          if (current === undefined || parent === undefined) return
          const finalMetrics = new Map<string, Record<string, number>>()
          for (const trial of event.trials) {
            finalMetrics.set(trial.trial, { ...trial.metrics })
            const id = trialRuns.get(trial.trial)
            if (id === undefined) continue
            const points = Object.entries(trial.metrics).map(([key, value]) => ({ key, value, step: 0, timestamp: event.timestamp }))
            if (points.length > 0) yield* tracker.logMetrics(id, points)
            yield* endRun(id, trial.ok ? "FINISHED" : "FAILED")
          }
          const rolledUp = rollup({ experiment: current.experiment, configHash: current.configHash, trials: current.trials, metrics: finalMetrics, runIds: trialRuns })
          const points = Object.entries(rollupMetrics(rolledUp)).map(([key, value]) => ({ key, value, step: 0, timestamp: event.timestamp }))
          if (points.length > 0) yield* tracker.logMetrics(parent, points)
          const groupTags = Object.fromEntries(Object.entries(rollupTags(rolledUp)).map(([key, label]) => [key, redactText(label)]))
          const best = current.objective === undefined ? undefined : bestGroup(rolledUp, current.objective)
          if (best !== undefined) groupTags["vw2.best_group"] = `${best.id} ${redactText(best.label)}`.trim()
          if (Object.keys(groupTags).length > 0) yield* tracker.setTags(parent, groupTags)
          yield* uploadText(tracker, parent, "rollup.json", redactText(JSON.stringify(rolledUp, null, 2)) + "\n")
          return
        }
        case "run-ended": {
          if (event.status !== "interrupted") yield* endRun(experimentRun.now(), event.status === "failed" ? "FAILED" : "FINISHED")
          // whatever is still open (an interrupted run: its trials, running stages, the experiment run) was killed
          yield* Effect.forEach([...openRuns], (id) => endRun(id, "KILLED"), { discard: true })
          yield* tracker.flush
          return
        }
        default:
          return
      }
    }).pipe(
      // links nobody will settle any more must not keep the Scheduler waiting
      Effect.ensuring(Effect.sync(() => {
        if (event.type === "run-started") experimentRun.settle(undefined)
        if (event.type === "status" && (event.status === "running" || event.status === "failed")) stageRunLink(event.invocation).settle(undefined)
        if (event.type === "run-ended") {
          experimentRun.settle(undefined)
          for (const l of stageRuns.values()) l.settle(undefined)
        }
      }))
    )

  return {
    onEvent: handle,
    experimentRun: experimentRun.await,
    stageRun: (invocation) => stageRunLink(invocation).await,
    experimentRunNow: experimentRun.now
  }
}

/** Feeds a recorded stream to a run tree, in order (a replay: RunTree.test.ts). */
export const replayInto = (tree: RunObserver, events: Iterable<RunEvent>): Effect.Effect<void, unknown> =>
  Effect.forEach(events, (event) => tree.onEvent(event), { discard: true })
