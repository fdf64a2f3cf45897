/**
 * Engine benchmark (not a test): per-stage overhead of no-op stages on the inline and local executors, and
 * planning time of a 1000-trial sweep. Prints one JSON document and a one-line summary.
 *
 *   npx node bench/engine.ts            (VW2_BENCH_LOCAL_TRIALS / VW2_BENCH_INLINE_TRIALS to resize)
 *
 * Targets (issue #2): ≤ 50 ms engine overhead per stage, ≤ 2 s to plan 1000 trials.
 */
import {
  ArtifactStore,
  defineExperiment,
  Executor,
  InlineExecutor,
  LocalExecutor,
  planExperiment,
  runPlan,
  Tracker
} from "@vw2/core"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { noopPipeline } from "./engineExperiment.ts"

const experimentFile = fileURLToPath(new URL("./engineExperiment.ts", import.meta.url))

const timeRun = async (executor: "inline" | "local", trials: number, cpus: number) => {
  process.env.VW2_BENCH_TRIALS = String(trials)
  process.env.VW2_BENCH_RUN = `${executor}-${Date.now()}` // fresh hashes: nothing cached
  const { default: experiment } = await import(`${experimentFile}?${process.env.VW2_BENCH_RUN}`)
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-bench-"))
  // workers re-import the file: give them the same environment
  const plan = planExperiment(experiment)
  const layer = Layer.mergeAll(
    ArtifactStore.layer(home),
    executor === "inline" ? InlineExecutor.layer : LocalExecutor.layer({ cpus }),
    Tracker.layerNoop
  )
  const started = performance.now()
  const summary = await Effect.runPromise(runPlan({ plan, experimentFile }).pipe(Effect.provide(layer)))
  const wallMs = performance.now() - started
  if (summary.status !== "succeeded") throw new Error(`bench run failed: ${JSON.stringify(summary.results.find((r) => r.status === "failed"))}`)
  // second run: everything is a cache hit (verification + tracker bookkeeping only)
  const cachedStarted = performance.now()
  await Effect.runPromise(runPlan({ plan, experimentFile }).pipe(Effect.provide(layer)))
  const cachedMs = performance.now() - cachedStarted
  fs.rmSync(home, { recursive: true, force: true })
  const stages = plan.invocations.length
  return {
    executor,
    cpus: executor === "local" ? cpus : 1,
    stages,
    wallMs: Math.round(wallMs),
    /** wall time per stage with `cpus` stages in flight */
    msPerStage: +(wallMs / stages).toFixed(1),
    /** cost of one stage on one slot (wall × slots / stages): the latency a single stage pays */
    msPerStagePerSlot: +((wallMs * (executor === "local" ? cpus : 1)) / stages).toFixed(1),
    cachedMsPerStage: +(cachedMs / stages).toFixed(2)
  }
}

const timePlan = (trials: number) => {
  const experiment = defineExperiment({
    name: "bench-plan",
    pipeline: noopPipeline,
    config: { s0: { i: 0, run: "plan" }, s1: { k: 1 }, s2: { k: 2 }, s3: { k: 3 }, s4: { k: 4 } },
    // 10 × 10 × 10 grid: upstream steps are shared by many trials, as in real sweeps
    sweep: { grid: { "s2.k": [...Array(10).keys()], "s3.k": [...Array(10).keys()], "s4.k": [...Array(trials / 100).keys()] } }
  })
  planExperiment(experiment) // warm-up (module JIT)
  const started = performance.now()
  const plan = planExperiment(experiment)
  const ms = performance.now() - started
  return { trials: plan.trials.length, invocations: plan.invocations.length, planMs: Math.round(ms) }
}

const main = async () => {
  const inlineTrials = Number(process.env.VW2_BENCH_INLINE_TRIALS ?? "40")
  const localTrials = Number(process.env.VW2_BENCH_LOCAL_TRIALS ?? "20")
  const cpus = os.availableParallelism()
  const plan = timePlan(1000)
  const inline = await timeRun("inline", inlineTrials, 1)
  const local = await timeRun("local", localTrials, cpus)
  const result = {
    machine: { cpus, node: process.version, platform: `${os.platform()} ${os.arch()}`, loadavg: os.loadavg().map((l) => +l.toFixed(2)) },
    plan,
    inline,
    local,
    targets: { msPerStage: 50, planMs: 2000 }
  }
  console.log(JSON.stringify(result, null, 2))
  console.log(
    `engine: plan ${plan.trials} trials → ${plan.invocations} invocations in ${plan.planMs} ms; ` +
      `inline ${inline.msPerStage} ms/stage (${inline.stages} no-op stages); ` +
      `local ${local.msPerStage} ms/stage wall with ${local.cpus} slots, ${local.msPerStagePerSlot} ms per stage per slot (${local.stages} stages); ` +
      `cache hits ${inline.cachedMsPerStage} ms/stage`
  )
}

void Executor
await main()
