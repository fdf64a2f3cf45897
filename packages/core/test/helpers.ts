/** Shared test helpers: temp store dirs, a recording Tracker, the fixture experiment, the execution log. */
import { afterAll } from "vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as ArtifactStore from "../src/ArtifactStore.ts"
import { ConfigError } from "../src/Config.ts"
import type { Experiment } from "../src/Experiment.ts"
import type { ExecutorShape } from "../src/Executor.ts"
import { Executor } from "../src/Executor.ts"
import type { Override } from "../src/Config.ts"
import { planExperiment } from "../src/Planner.ts"
import type { InvocationStatus, RunObserver } from "../src/RunEvent.ts"
import type { RunSummary } from "../src/Scheduler.ts"
import { runPlan } from "../src/Scheduler.ts"
import type { RunStatus, TrackerShape } from "../src/Tracker.ts"
import { Tracker } from "../src/Tracker.ts"

export const fixtureFile = fileURLToPath(new URL("./fixtures/experiment.ts", import.meta.url))

const created: Array<string> = []
// registered while the importing test file is collected, so it runs after that file's tests
afterAll(() => {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

/** A fresh temp dir, removed after the test file. */
export const tempDir = (prefix: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vw2-${prefix}-`))
  created.push(dir)
  return dir
}

export { readLog, type LogLine } from "./fixtures/executionLog.ts"

export interface RecordedRun {
  readonly id: string
  readonly kind: "experiment" | "trial" | "stage"
  readonly parent?: string
  readonly info: Record<string, unknown>
  status?: RunStatus
  metrics: Array<{ key: string; value: number }>
  artifacts: Array<string>
}

/** A Tracker that keeps the run tree in memory (the tracker is outside the engine under test). */
export const recordingTracker = () => {
  const runs = new Map<string, RecordedRun>()
  let next = 0
  const start = (kind: RecordedRun["kind"], parent: string | undefined, info: object) =>
    Effect.sync(() => {
      const id = `run-${++next}`
      runs.set(id, { id, kind, ...(parent ? { parent } : {}), info: info as Record<string, unknown>, metrics: [], artifacts: [] })
      return id
    })
  const shape: TrackerShape = {
    describe: () => "memory",
    startExperimentRun: (info) => start("experiment", undefined, info),
    startTrialRun: (parent, info) => start("trial", parent, info),
    startStageRun: (parent, info) => start("stage", parent, info),
    logMetrics: (run, points) => Effect.sync(() => void runs.get(run)!.metrics.push(...points.map((p) => ({ key: p.key, value: p.value })))),
    setTags: () => Effect.void,
    logArtifacts: (run, files) => Effect.sync(() => void runs.get(run)!.artifacts.push(...files.map((f) => f.artifactPath))),
    endRun: (run, status) =>
      Effect.sync(() => {
        const r = runs.get(run)!
        if (r.status !== undefined) throw new Error(`run ${run} ended twice`)
        r.status = status
      }),
    flush: Effect.void,
    degraded: () => false
  }
  return { shape, runs, layer: Layer.succeed(Tracker, shape) }
}

export interface RunInProcess {
  readonly experiment: Experiment
  readonly home: string
  readonly executor: ExecutorShape
  readonly overrides?: ReadonlyArray<Override>
  readonly tracker?: TrackerShape
  readonly observers?: ReadonlyArray<RunObserver>
}

/** An observer that reports each status change with its step's name (what progress displays do). */
export const statusObserver = (on: (step: string, status: InvocationStatus) => void): RunObserver => {
  const steps = new Map<string, string>()
  return {
    onEvent: (event) =>
      Effect.sync(() => {
        if (event.type === "run-started") for (const inv of event.plan.invocations) steps.set(inv.hash, inv.step)
        if (event.type === "status") on(steps.get(event.invocation)!, event.status)
      })
  }
}

export const runInProcess = (options: RunInProcess): Effect.Effect<RunSummary, unknown> => {
  const plan = planExperiment(options.experiment, options.overrides ?? [])
  const tracker = options.tracker ?? recordingTracker().shape
  return runPlan({ plan, experimentFile: fixtureFile, ...(options.observers ? { observers: options.observers } : {}) }).pipe(
    Effect.provide(Layer.mergeAll(ArtifactStore.layer(options.home), Layer.succeed(Executor, options.executor), Layer.succeed(Tracker, tracker)))
  )
}

/** The ConfigError `f` throws (anything else is rethrown; no error fails the test). */
export const configErrorOf = (f: () => unknown): ConfigError => {
  try {
    f()
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error("expected a ConfigError")
}
