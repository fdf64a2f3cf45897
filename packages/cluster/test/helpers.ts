/** Shared pieces of the Ray executor tests: the fixture experiment, running a plan, reading the stage log. */
import type { ExecutorShape, RunEvent, RunObserver, RunSummary } from "@vw2/core"
import { ArtifactStore, defineExperiment, definePipeline, Executor, planExperiment, runPlan, Tracker } from "@vw2/core"
import { Effect, Layer } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { configFor, pipeline, shortPipeline, source } from "./fixtures/experiment.ts"

export const fixtureFile = fileURLToPath(new URL("./fixtures/experiment.ts", import.meta.url))

const created: Array<string> = []

/** A fresh directory under the OS temp dir, removed by removeTempDirs(). */
export const tempDir = (prefix: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vw2-ray-${prefix}-`))
  created.push(dir)
  return dir
}

export const removeTempDirs = (): void => {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
}

export const experimentWith = (config: ReturnType<typeof configFor>) => defineExperiment({ name: "ray-test", pipeline, config })

export const runFixture = (
  executor: ExecutorShape,
  home: string,
  config: ReturnType<typeof configFor>,
  observer?: RunObserver
): Effect.Effect<RunSummary, unknown> => {
  const plan = planExperiment(experimentWith(config), [])
  return runPlan({ plan, experimentFile: fixtureFile, ...(observer ? { observers: [observer] } : {}) }).pipe(
    Effect.provide(Layer.mergeAll(ArtifactStore.layer(home), Layer.succeed(Executor, executor), Tracker.layerNoop))
  )
}

/** An observer of the run's events, each with the step of the invocation it is about (if any). */
export const observeSteps = (on: (event: RunEvent, step: string | undefined) => void): RunObserver => {
  const steps = new Map<string, string>()
  return {
    onEvent: (event) =>
      Effect.sync(() => {
        if (event.type === "run-started") for (const inv of event.plan.invocations) steps.set(inv.hash, inv.step)
        on(event, "invocation" in event && event.invocation !== undefined ? steps.get(event.invocation) : undefined)
      })
  }
}

export interface LogLine {
  readonly step: string
  readonly tag: string
  readonly phase: "start" | "end"
  readonly hash: string
  readonly pid: number
  readonly cuda: string | null
  readonly t: number
}

export const readLog = (file: string, tag: string): Array<LogLine> =>
  fs.existsSync(file)
    ? fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as LogLine).filter((l) => l.tag === tag)
    : []

export const waitFor = async <A>(what: string, probe: () => A | undefined, timeoutMs = 60_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Processes whose command line mentions `needle` (the process table, via ps). */
export const processesMentioning = (needle: string): Array<string> =>
  execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" }).split("\n").filter((line) => line.includes(needle) && !line.includes("ps -eo"))

/** A one-step plan (the fixture's `source`): the worker still finds the step in the fixture file. */
export const runSourceOnly = (executor: ExecutorShape, home: string, tag: string): Effect.Effect<RunSummary, unknown> => {
  const plan = planExperiment(defineExperiment({ name: "ray-test", pipeline: definePipeline().step("source", source, {}), config: { source: { count: 4, tag } } }), [])
  return runPlan({ plan, experimentFile: fixtureFile }).pipe(
    Effect.provide(Layer.mergeAll(ArtifactStore.layer(home), Layer.succeed(Executor, executor), Tracker.layerNoop))
  )
}

/** source → a (the fixture's steps, so the worker finds them in the fixture file). */
export const runShort = (executor: ExecutorShape, home: string, config: ReturnType<typeof configFor>, observer?: RunObserver): Effect.Effect<RunSummary, unknown> => {
  const plan = planExperiment(defineExperiment({ name: "ray-test", pipeline: shortPipeline, config: { source: config.source, a: config.a } }), [])
  return runPlan({ plan, experimentFile: fixtureFile, ...(observer ? { observers: [observer] } : {}) }).pipe(
    Effect.provide(Layer.mergeAll(ArtifactStore.layer(home), Layer.succeed(Executor, executor), Tracker.layerNoop))
  )
}
