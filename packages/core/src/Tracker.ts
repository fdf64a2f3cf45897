/**
 * Tracker service: where the engine reports the run tree (experiment run → trial runs → stage runs),
 * params, metrics, tags and artifacts. `@vw2/tracking` provides the MLflow implementation; core only
 * knows this interface. A tracker never fails the pipeline: its effects have no error channel, and an
 * implementation that cannot reach its backend spools and reports `degraded`.
 */
import { Context, Effect, Layer } from "effect"
import type { MetricPoint } from "./Stage.ts"

/** Opaque id of a run in the tracking backend (an MLflow run id). */
export type TrackedRunId = string

export type RunStatus = "FINISHED" | "FAILED" | "KILLED"

export interface ExperimentRunInfo {
  /** experiment name (one MLflow experiment per name) */
  readonly experiment: string
  readonly configHash: string
  /** flattened resolved config: "dldm.fsq.levels" -> "[8,5,5,5]" */
  readonly params: Readonly<Record<string, string>>
  readonly tags: Readonly<Record<string, string>>
}

export interface TrialRunInfo {
  readonly trialId: string
  /** display name, e.g. the trial's label `lr=0.001 seed=1` (trackers fall back to the trial id) */
  readonly runName?: string
  readonly seed: number
  /** the sweep point's assignments, flattened */
  readonly params: Readonly<Record<string, string>>
  readonly tags: Readonly<Record<string, string>>
}

export interface StageRunInfo {
  readonly step: string
  /** display name, `<step> · <trial label>` in a sweep (trackers fall back to the step) */
  readonly runName?: string
  readonly stage: string
  readonly stageHash: string
  /** "miss", or the tracked run that produced the cached artifact */
  readonly cache: { readonly _tag: "miss" } | { readonly _tag: "hit"; readonly producedBy: TrackedRunId | undefined }
  /** this stage's config slice, flattened */
  readonly params: Readonly<Record<string, string>>
  readonly tags: Readonly<Record<string, string>>
}

export interface ArtifactUpload {
  readonly localPath: string
  /** path inside the run's artifact root, e.g. "outputs/checkpoint/manifest.json" */
  readonly artifactPath: string
}

/** An output kept as a model of its stage run (a checkpoint; MLflow 3: a logged model listed under the run's outputs). */
export interface ModelUpload {
  /** the stage's output name, e.g. "checkpoint" */
  readonly output: string
  /** its artifact kind, e.g. "dldm-checkpoint" */
  readonly kind: string
  /** display name, e.g. "warmup.checkpoint" */
  readonly name: string
  /** the output's files, `artifactPath` relative to the model's root */
  readonly files: ReadonlyArray<ArtifactUpload>
  readonly tags?: Readonly<Record<string, string>>
}

export interface TrackerShape {
  /** human-facing location of the run tree (e.g. the MLflow UI URL), if any */
  readonly describe: () => string | undefined
  readonly startExperimentRun: (info: ExperimentRunInfo) => Effect.Effect<TrackedRunId>
  readonly startTrialRun: (parent: TrackedRunId, info: TrialRunInfo) => Effect.Effect<TrackedRunId>
  readonly startStageRun: (parent: TrackedRunId, info: StageRunInfo) => Effect.Effect<TrackedRunId>
  readonly logMetrics: (run: TrackedRunId, points: ReadonlyArray<MetricPoint>) => Effect.Effect<void>
  readonly setTags: (run: TrackedRunId, tags: Readonly<Record<string, string>>) => Effect.Effect<void>
  readonly logArtifacts: (run: TrackedRunId, files: ReadonlyArray<ArtifactUpload>) => Effect.Effect<void>
  /** keeps an output as a model of the run; resolves once uploaded or spooled (optional: trackers without models skip it) */
  readonly logModel?: (run: TrackedRunId, model: ModelUpload) => Effect.Effect<void>
  /** a new version of registered model `name` from the model `output` logged by `run`: its version, or undefined
   * when it was not registered now (spooled, or no such model: the tracker warns) */
  readonly registerModel?: (name: string, run: TrackedRunId, output: string) => Effect.Effect<string | undefined>
  readonly endRun: (run: TrackedRunId, status: RunStatus) => Effect.Effect<void>
  /** wait until everything logged so far is delivered (or spooled); called before the CLI exits */
  readonly flush: Effect.Effect<void>
  /** true while records are being spooled instead of delivered */
  readonly degraded: () => boolean
  /** where delivery stands, for the live progress: "starting" (the backend is starting; records spool), "up",
   * "spooling" (the backend stopped answering; records spool and are replayed when it is back), "degraded"
   * (no backend could be had: everything is spooled for the next run). Trackers without a backend omit it. */
  readonly state?: () => "starting" | "up" | "spooling" | "degraded"
}

export class Tracker extends Context.Service<Tracker, TrackerShape>()("@vw2/core/Tracker") {}

/** A tracker that records nothing (tests, `--no-track`). Run ids are local counters. */
export const makeNoopTracker = (): TrackerShape => {
  let next = 0
  const id = () => Effect.sync(() => `local-${++next}`)
  return {
    describe: () => undefined,
    startExperimentRun: () => id(),
    startTrialRun: () => id(),
    startStageRun: () => id(),
    logMetrics: () => Effect.void,
    setTags: () => Effect.void,
    logArtifacts: () => Effect.void,
    endRun: () => Effect.void,
    flush: Effect.void,
    degraded: () => false
  }
}

export const layerNoop: Layer.Layer<Tracker> = Layer.sync(Tracker, makeNoopTracker)
