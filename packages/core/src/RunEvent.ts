/**
 * The run-event stream: the one shape an event of a run has, from the stage that emits it to every observer
 * (terminal progress, log files, the MLflow run tree in RunTree.ts). docs/engine.md, "The run-event stream".
 *
 * Two families share one Schema union, discriminated by `type`:
 * - invocation events, emitted by a running stage (progress, metrics, log, upload, checkpoint) or by what runs
 *   it (started, done, failed). They cross process boundaries as JSON lines (`encodeEventLine`): the worker's
 *   events fd, the Ray bridge, a Python process stage (python/vw2_stage). That wire form is fixed:
 *   `{"vw2":1,"type":"metrics","step":3,"timestamp":1700000000000,"values":{"fit/loss":0.5}}`. In the driver the
 *   Scheduler stamps `invocation` (the invocation hash) on each before observers see it; the wire never has it.
 * - life-cycle events, emitted by the Scheduler: run and trial started, invocation status changes, cache hits,
 *   published stages, system metrics, the trials' final metrics (rollup) and the end of the run.
 * Every event is plain JSON data, so a recorded stream (`Schema.encodeSync(RunEvent)` per event) can be replayed
 * into an observer later and gives the same result (RunTree.test.ts rebuilds an MLflow run tree that way).
 */
import type { Effect } from "effect"
import { Option, Schema } from "effect"
import type { Plan } from "./Planner.ts"

const Values = Schema.Record(Schema.String, Schema.Number)
const StringRecord = Schema.Record(Schema.String, Schema.String)
/** the invocation hash an event is about: stamped by the Scheduler, never on the wire */
const stamped = { invocation: Schema.optionalKey(Schema.String) }

// ---- invocation events: what a running stage (and whatever runs it) reports ----------------------------------

export const Progress = Schema.Struct({
  type: Schema.tag("progress"),
  done: Schema.Number,
  total: Schema.Number,
  message: Schema.optionalKey(Schema.String),
  ...stamped
})

/** one step's scalar metrics; values are finite (JSON has no NaN: ctx.metrics drops the rest) */
export const Metrics = Schema.Struct({
  type: Schema.tag("metrics"),
  step: Schema.Number,
  /** milliseconds since the epoch */
  timestamp: Schema.Number,
  values: Values,
  ...stamped
})

/** a log line: the stage's ctx.log, or a line its worker printed on stdout/stderr */
export const Log = Schema.Struct({ type: Schema.tag("log"), message: Schema.String, timestamp: Schema.Number, ...stamped })

/** a file under the output root marked for upload with the stage run (ctx.upload) */
export const Upload = Schema.Struct({ type: Schema.tag("upload"), path: Schema.String, ...stamped })

/** a durable mid-stage checkpoint at `step` of `total` now sits in the invocation's resume directory */
export const Checkpoint = Schema.Struct({ type: Schema.tag("checkpoint"), step: Schema.Number, total: Schema.Number, ...stamped })

/** The stage started: a worker says its `pid`; an executor says which GPUs it granted (and the pid, where it knows it). */
export const Started = Schema.Struct({
  type: Schema.tag("started"),
  pid: Schema.optionalKey(Schema.Number),
  gpus: Schema.optionalKey(Schema.Array(Schema.String)),
  ...stamped
})

/** the stage finished; its outputs wait under the output root (the parent verifies and publishes them) */
export const Done = Schema.Struct({ type: Schema.tag("done"), ...stamped })

export const Failed = Schema.Struct({ type: Schema.tag("failed"), message: Schema.String, stack: Schema.optionalKey(Schema.String), ...stamped })

export const InvocationEvent = Schema.Union([Progress, Metrics, Log, Upload, Checkpoint, Started, Done, Failed])
export type InvocationEvent = typeof InvocationEvent.Type
/** the invocation events a stage itself emits through its StageContext */
export type StageContextEvent = Extract<InvocationEvent, { readonly type: "progress" | "metrics" | "log" | "upload" | "checkpoint" }>

// ---- life-cycle events: what the Scheduler reports ---------------------------------------------------------------

/** A plan is engine data (JSON all through: Planner.ts); carried as is. */
const PlanData = Schema.declare((u: unknown): u is Plan => typeof u === "object" && u !== null && Array.isArray((u as { invocations?: unknown }).invocations) && Array.isArray((u as { trials?: unknown }).trials))

export const ArtifactFile = Schema.Struct({ localPath: Schema.String, artifactPath: Schema.String })

/** The run begins: its plan, the executor, and what the experiment run records besides (tags, artifacts). */
export const RunStarted = Schema.Struct({
  type: Schema.tag("run-started"),
  plan: PlanData,
  /** the executor's name: "inline", "local", "ray" */
  backend: Schema.String,
  /** extra tags for the experiment run (command line, git, host) */
  tags: StringRecord,
  /** files for the experiment run (resolved config, experiment file, git diff) */
  artifacts: Schema.Array(ArtifactFile),
  timestamp: Schema.Number
})

export const TrialStarted = Schema.Struct({ type: Schema.tag("trial-started"), trial: Schema.String, timestamp: Schema.Number })

// issue 15: "paused" = stopped at an early-stopping rung with its checkpoint in resumeDir, not published (runPlan);
// "stopped" = early stopping ended the trial at a rung, not failed, never published (SweepScheduler.ts)
export const InvocationStatus = Schema.Literals(["cached", "pending", "waiting", "running", "done", "failed", "skipped", "interrupted", "paused", "stopped"])
export type InvocationStatus = typeof InvocationStatus.Type

export const Status = Schema.Struct({
  type: Schema.tag("status"),
  invocation: Schema.String,
  status: InvocationStatus,
  gpus: Schema.optionalKey(Schema.Array(Schema.String)),
  error: Schema.optionalKey(Schema.String),
  durationMs: Schema.optionalKey(Schema.Number),
  /** why a cached entry was not used, that another process holds the lock, ... */
  note: Schema.optionalKey(Schema.String),
  /** last lines of a failed worker's stderr */
  stderrTail: Schema.optionalKey(Schema.String),
  /** the stage ran but publishing its outputs failed */
  publishing: Schema.optionalKey(Schema.Boolean),
  timestamp: Schema.Number
})

/** The store already holds the invocation: `metrics` are its producer's final metrics (from the manifest). */
export const CacheHit = Schema.Struct({
  type: Schema.tag("cache-hit"),
  invocation: Schema.String,
  /** the tracked run that produced the entry, as its manifest records it */
  producedBy: Schema.optionalKey(Schema.String),
  metrics: Values,
  timestamp: Schema.Number
})

/** The invocation ran and its outputs are in the store (`entryDir`, holding `files` and manifest.json). */
export const Published = Schema.Struct({
  type: Schema.tag("published"),
  invocation: Schema.String,
  entryDir: Schema.String,
  /** the manifest's files, relative to entryDir */
  files: Schema.Array(Schema.String),
  /** the files the stage marked with ctx.upload, relative to entryDir */
  uploads: Schema.Array(Schema.String),
  /** the last value of each metric the stage reported */
  metrics: Values,
  durationMs: Schema.Number,
  gpus: Schema.Array(Schema.String),
  timestamp: Schema.Number
})

/** A sample of the process running a stage (CPU, RSS, GPUs: SystemMetrics.ts), under MLflow's `system/` names. */
export const SystemMetrics = Schema.Struct({
  type: Schema.tag("system-metrics"),
  invocation: Schema.String,
  step: Schema.Number,
  timestamp: Schema.Number,
  values: Values
})

/** Every invocation has settled: each trial's final stage metrics (`<step>/<metric>`) and whether all its stages succeeded. */
export const Rollup = Schema.Struct({
  type: Schema.tag("rollup"),
  trials: Schema.Array(Schema.Struct({ trial: Schema.String, ok: Schema.Boolean, metrics: Values })),
  timestamp: Schema.Number
})

export const RunEnded = Schema.Struct({
  type: Schema.tag("run-ended"),
  status: Schema.Literals(["succeeded", "failed", "interrupted"]),
  durationMs: Schema.Number,
  timestamp: Schema.Number
})

export const LifecycleEvent = Schema.Union([RunStarted, TrialStarted, Status, CacheHit, Published, SystemMetrics, Rollup, RunEnded])
export type LifecycleEvent = typeof LifecycleEvent.Type

export const RunEvent = Schema.Union([InvocationEvent, LifecycleEvent])
export type RunEvent = typeof RunEvent.Type

const invocationTypes = new Set(["progress", "metrics", "log", "upload", "checkpoint", "started", "done", "failed"])
export const isInvocationEvent = (event: RunEvent): event is InvocationEvent => invocationTypes.has(event.type)

// ---- the wire form of invocation events ----------------------------------------------------------------------------

const encodeInvocationEvent = Schema.encodeSync(InvocationEvent)
const decodeInvocationEvent = Schema.decodeUnknownOption(InvocationEvent)

/** One line of the events fd / Ray bridge payload, without the trailing newline: `{"vw2":1,"type":…,…}`. */
export const encodeEventLine = (event: InvocationEvent): string => {
  const { invocation: _invocation, ...wire } = encodeInvocationEvent(event) as Record<string, unknown>
  return JSON.stringify({ vw2: 1, ...wire })
}

/** An invocation event from one line, or undefined for anything else: a parent treats such lines as log text. */
export const decodeEventLine = (line: string): InvocationEvent | undefined => {
  if (!line.startsWith("{")) return undefined
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof value !== "object" || value === null || (value as { vw2?: unknown }).vw2 !== 1) return undefined
  const { vw2: _vw2, invocation: _invocation, ...event } = value as Record<string, unknown>
  return Option.getOrUndefined(decodeInvocationEvent(event))
}

/** Observers see every event of a run in order (Scheduler.ts feeds each through its own queue); a failure is logged, never fails the run. */
export interface RunObserver {
  readonly onEvent: (event: RunEvent) => Effect.Effect<void, unknown>
}
