/**
 * The mini dLDM warm-up trained by the tfjs stage and by the PyTorch process stage, in one run, on one dataset, through
 * the engine (the pipeline's engine-selecting warm-up: packages/pipelines/src/WarmupEngine.ts): `warmup.engine`
 * "tfjs" (WarmupStage.ts, this process, the first available tfjs backend), "torch" with 1 process, and "torch" with 2
 * processes (torchrun, DDP over gloo, one thread per rank). Prints step ms (mean over the steps after the first, as
 * each stage reports it in its checkpoint's train_state.json), each torch row's ratio to tfjs, and the machine's load.
 *
 *   npm run bench -- --only=torch-stage          (or: node bench/torchStage.ts)
 *   VW2_BENCH_TORCH_STEPS=60 VW2_BENCH_TORCH_BATCH=8 VW2_BENCH_TORCH_DDP=0 to resize / skip the 2-process row
 *
 * Threads: the tfjs native backend uses TensorFlow's own pool (every core); a torch rank gets the stage's CPUs divided
 * by its ranks (1 here), so the 1-process torch row uses one core and the 2-process row two.
 */
import { ArtifactStore, defineExperiment, definePipeline, InlineExecutor, parseOverride, planExperiment, runPlan, Tracker } from "@vw2/core"
import { miniStageConfigs } from "@vw2/dldm"
import { warmupEngineStage } from "@vw2/pipelines"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { craftSource } from "../packages/pipelines/src/DataSources.ts"

const steps = Number(process.env["VW2_BENCH_TORCH_STEPS"] ?? 30)
const batch = Number(process.env["VW2_BENCH_TORCH_BATCH"] ?? 8)

const pipeline = definePipeline()
  .step("craft-data", craftSource, {})
  .step("warmup", warmupEngineStage, { dataset: "craft-data.dataset" })

/** The quickstart's warm-up (mini dLDM, lr, schedule) for `steps` steps, on MiniCraft with 2 train episodes per task. */
export const experiment = defineExperiment({
  name: "bench-torch-stage",
  pipeline,
  config: {
    "craft-data": { source: "minicraft", trainEpisodesPerTask: 2, testEpisodesPerTask: 1 },
    warmup: { ...miniStageConfigs.warmup, steps, optim: { ...miniStageConfigs.warmup.optim, batchSize: batch } }
  }
})

export default experiment

interface Row {
  readonly engine: string
  readonly processes: number
  readonly meanStepMs: number
  readonly stageSeconds: number
  readonly firstLoss: number
  readonly lastLoss: number
  readonly backend: string
  readonly load1: number
}

const main = async () => {
  const file = fileURLToPath(import.meta.url)
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-bench-torch-stage-"))
  const layer = Layer.mergeAll(ArtifactStore.layer(home), InlineExecutor.layer, Tracker.layerNoop)
  const variants = [
    { engine: "tfjs", processes: 1, overrides: [] as Array<string> },
    { engine: "torch", processes: 1, overrides: ["warmup.engine=torch"] },
    ...(process.env["VW2_BENCH_TORCH_DDP"] === "0" ? [] : [{ engine: "torch", processes: 2, overrides: ["warmup.engine=torch", "warmup.processes=2"] }])
  ]
  const loadAtStart = os.loadavg().map((l) => +l.toFixed(2))
  process.stderr.write(`torch-stage: ${steps} warm-up steps at batch ${batch}, load ${loadAtStart.join(" ")}\n`)
  const rows: Array<Row> = []
  try {
    for (const v of variants) {
      const plan = planExperiment(experiment, v.overrides.map(parseOverride))
      const load1 = +os.loadavg()[0]!.toFixed(2)
      const summary = await Effect.runPromise(runPlan({ plan, experimentFile: file }).pipe(Effect.provide(layer)))
      const warmup = summary.results.find((r) => r.step === "warmup")!
      if (summary.status !== "succeeded") throw new Error(`${v.engine}×${v.processes}: ${JSON.stringify(summary.results.find((r) => r.status === "failed"))}`)
      const state = JSON.parse(fs.readFileSync(path.join(home, "store", warmup.hash, "checkpoint", "train_state.json"), "utf8")) as Record<string, number | string>
      rows.push({
        engine: v.engine, processes: v.processes, meanStepMs: +Number(state["meanStepMs"]).toFixed(1), stageSeconds: +((warmup.durationMs ?? 0) / 1000).toFixed(1),
        firstLoss: Number(state["firstLoss"]), lastLoss: Number(state["lastLoss"]), backend: String(state["backend"]), load1
      })
      process.stderr.write(`torch-stage: ${v.engine} × ${v.processes}: ${rows.at(-1)!.meanStepMs} ms/step (${state["backend"]})\n`)
    }
  } finally {
    fs.rmSync(home, { recursive: true, force: true })
  }
  const tfjs = rows.find((r) => r.engine === "tfjs")!
  const ratios = Object.fromEntries(rows.filter((r) => r.engine === "torch").map((r) => [`torch${r.processes}_over_tfjs`, +(r.meanStepMs / tfjs.meanStepMs).toFixed(3)]))
  const result = { steps, batch, cores: os.availableParallelism(), loadAtStart, loadAtEnd: os.loadavg().map((l) => +l.toFixed(2)), ...ratios, rows }
  if (process.env["VW2_BENCH_OUT"] !== undefined) fs.writeFileSync(process.env["VW2_BENCH_OUT"], JSON.stringify(result, null, 2))
  const lines = [
    `mini dLDM warm-up, ${steps} steps at batch ${batch}, same MiniCraft data; ${result.cores} cores, load ${loadAtStart.join(" / ")} at start, ${result.loadAtEnd.join(" / ")} at end`,
    "",
    "| engine | processes | ms/step | ÷ tfjs | stage s | loss first → last | backend | load (1 min) |",
    "|---|---:|---:|---:|---:|---|---|---:|",
    ...rows.map((r) => `| ${r.engine} | ${r.processes} | ${r.meanStepMs} | ${(r.meanStepMs / tfjs.meanStepMs).toFixed(2)} | ${r.stageSeconds} | ${r.firstLoss.toFixed(4)} → ${r.lastLoss.toFixed(4)} | ${r.backend} | ${r.load1} |`)
  ]
  process.stdout.write(`${lines.join("\n")}\n`)
}

// not a top-level await: the executor imports this file for the experiment while main() runs
if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(`torch-stage: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
    process.exit(1)
  })
}
