/**
 * Stage `craft-judge` (docs/paper.md "Evaluation"; "What the paper leaves open": a fair step classifier):
 * trains the step-state classifier on freshly rendered MiniCraft states at the dataset's resolution and
 * timing (dataset.json stats.minicraft), under appearances of the judge's own draw and heavy augmentation,
 * never on the dataset's episodes or any model's output; then calibrates it on the dataset's held-out test
 * episodes (Calibration.ts) and logs `judge/calib/<row>` to the tracker with a markdown + JSON table.
 * Not seeded by the trial: every method and seed is judged by the same judge.
 * Output `judge` ("judge-checkpoint"): model.safetensors, config.json (architecture + rules), calibration.{md,json}.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { ConfigField, defineStage, StageError, type StageContext } from "@vw2/core"
import { Dataset, MiniCraft } from "@vw2/data"
import { describeBackend, saveCheckpoint, selectBackend } from "@vw2/nn"
import { Effect, Schema } from "effect"
import { type CalibrationEpisode, calibrate, calibrationMarkdown } from "./Calibration.ts"
import { type CraftJudgeCheckpointConfig, JudgeRules } from "./CraftJudge.ts"
import { JudgeAugmentConfig, JudgeDataConfig, JudgeTrainConfig, trainCraftJudge } from "./JudgeTraining.ts"
import { StepClassifierConfig } from "./StepClassifier.ts"

const { nonNegativeInt, withDefault } = ConfigField

export const CraftJudgeConfig = Schema.Struct({
  model: withDefault(StepClassifierConfig, {}),
  data: withDefault(JudgeDataConfig, {}),
  train: withDefault(JudgeTrainConfig, {}),
  augment: withDefault(JudgeAugmentConfig, {}),
  rules: withDefault(JudgeRules, {}),
  /** added to the dataset's seed for the judge's own draws (appearances, scripts, augmentation) */
  seedOffset: nonNegativeInt(7919),
  /** test episodes per task to calibrate on (0 = all) */
  calibrationEpisodesPerTask: nonNegativeInt(0)
})
export type CraftJudgeConfig = typeof CraftJudgeConfig.Type

interface MiniCraftSettings {
  readonly seed: number
  readonly framesPerStep: number
  readonly idleFrames: number
  readonly supersample: number
}

const minicraftSettings = (dataset: Dataset, dir: string): MiniCraftSettings => {
  const stats = (dataset.manifest.stats as { minicraft?: Partial<MiniCraftSettings> } | undefined)?.minicraft
  if (stats === undefined || [stats.seed, stats.framesPerStep, stats.idleFrames, stats.supersample].some((v) => typeof v !== "number")) {
    throw new Error(`${dir}: dataset.json has no stats.minicraft (seed, framesPerStep, idleFrames, supersample): the craft judge renders MiniCraft states and needs a MiniCraft dataset`)
  }
  return stats as MiniCraftSettings
}

const writeOutput = (ctx: StageContext, relative: string, data: string): void => {
  const [output, ...rest] = relative.split("/")
  const file = path.join(ctx.outputDir(output!), ...rest)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, data)
  ctx.upload(relative)
}

/** The dataset's test episodes as calibration episodes (`perTask` 0 = all). */
export const testEpisodes = (dataset: Dataset, perTask: number): CalibrationEpisode[] => {
  const count = new Map<string, number>()
  return dataset
    .episodes({ split: "test" })
    .filter((ref) => {
      const n = count.get(ref.task) ?? 0
      count.set(ref.task, n + 1)
      return perTask === 0 || n < perTask
    })
    .map((ref) => {
      const meta = dataset.meta(ref.id)
      return {
        id: ref.id,
        task: ref.task,
        steps: MiniCraft.getTask(ref.task).steps.length,
        appearance: MiniCraft.decodeAppearance(meta.appearance, `${ref.id}/meta.json`),
        frames: dataset.readFrames(ref.id, Array.from({ length: ref.length }, (_, t) => t)),
        length: ref.length
      }
    })
}

export const runCraftJudge = async (ctx: StageContext, config: CraftJudgeConfig, datasetDir: string): Promise<void> => {
  ctx.log(`tfjs backend: ${describeBackend(await selectBackend())}`)
  const started = performance.now()
  const dataset = Dataset.open(datasetDir)
  const mc = minicraftSettings(dataset, datasetDir)
  const stepsPerTask = (dataset.manifest.stats as { stepsPerTask?: Record<string, number> }).stepsPerTask
  const tasks = stepsPerTask !== undefined ? Object.keys(stepsPerTask) : [...new Set(dataset.episodes().map((r) => r.task))]
  if (tasks.length === 0) throw new Error(`${datasetDir}: no tasks`)
  const render = { height: dataset.height, width: dataset.width, supersample: mc.supersample, framesPerStep: mc.framesPerStep, idleFrames: mc.idleFrames }
  const seed = mc.seed + config.seedOffset
  const trained = await trainCraftJudge({
    tasks,
    steps: tasks.map((t) => MiniCraft.getTask(t).steps.length),
    render,
    seed,
    model: config.model,
    data: config.data,
    train: config.train,
    augment: config.augment,
    rules: config.rules,
    // metrics, progress, interruption, mid-stage checkpoints and resume (the training harness)
    ctx
  })
  try {
    if (trained.status === "paused") return // an early-stopping rung: no outputs
    ctx.log(`craft-judge: ${trained.samples} rendered frames (${trained.renderSeconds.toFixed(1)} s), ${config.train.steps} steps (${trained.trainSeconds.toFixed(1)} s)`)
    const dir = ctx.outputDir("judge")
    const ckConfig: CraftJudgeCheckpointConfig = { format: "vw2-craft-judge/1", arch: trained.arch, rules: config.rules }
    await saveCheckpoint(dir, { model: trained.model, config: ckConfig })

    const episodes = testEpisodes(dataset, config.calibrationEpisodesPerTask)
    if (episodes.length === 0) throw new Error(`${datasetDir}: no test episodes to calibrate the judge on`)
    const rows = calibrate(episodes, { ...render, seed }, (e, frames, length) => trained.judge.completedPrefix(e.task, frames, length))
    const metrics: Record<string, number> = {}
    for (const r of rows) {
      metrics[`judge/calib/${r.row}`] = r.pct
      metrics[`judge/calib/${r.row}/exact_pct`] = r.exactPct
    }
    const seconds = (performance.now() - started) / 1000
    metrics["judge/calib/pass_all"] = rows.every((r) => r.pass) ? 1 : 0
    metrics["judge/seconds"] = seconds
    ctx.metrics(metrics, config.train.steps)
    const title = `craft judge calibration: ${episodes.length} test episodes, ${dataset.height}×${dataset.width}, ${trained.samples} training frames, ${config.train.steps} steps, ${seconds.toFixed(1)} s`
    const markdown = calibrationMarkdown(rows, title)
    writeOutput(ctx, "judge/calibration.md", markdown)
    writeOutput(ctx, "judge/calibration.json", JSON.stringify({ format: "vw2-judge-calibration/1", rules: config.rules, seconds, rows }, null, 1) + "\n")
    ctx.log(`\n${markdown}`)
  } finally {
    trained.judge.dispose()
  }
}

/** The craft judge stage: dataset in, `judge` checkpoint out (wire `judge` into craft-eval and dldm-probe). */
export const craftJudge = defineStage({
  name: "craft-judge",
  headline: ["judge/calib/pass_all", "judge/calib/ground_truth", "judge/calib/frozen_hand"],
  // 2: border-linked hand mask, travel window to the end of the new state's run, test-weighted appearances
  version: "2",
  config: CraftJudgeConfig,
  inputs: { dataset: "video-dataset" },
  outputs: { judge: "judge-checkpoint" },
  seeded: false,
  run: (ctx, config, inputs) =>
    Effect.tryPromise({
      try: () => runCraftJudge(ctx, config, inputs.dataset.dir),
      catch: (e) => new StageError({ stage: "craft-judge", message: e instanceof Error ? e.message : String(e), cause: e })
    })
})
