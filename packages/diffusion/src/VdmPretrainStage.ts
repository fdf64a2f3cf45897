/**
 * Stage `vdm-pretrain`: trains the video DiT on videos without codes — the "pretrained VDM" prior that
 * VideoWorld 2 fine-tunes (paper: Cosmos-Predict2 2B; mini setting: trained here on MiniCraft).
 * Input "video-dataset" (the shared episode layout), output "vdm-checkpoint" (+ a sample GIF when
 * `sample.count` > 0). The first frame of each clip is the condition, as in video2world.
 */
import { ConfigField, defineStage, StageError, type StageContext } from "@vw2/core"
import { Dataset, DatasetClips, shuffledBatches, type Batch } from "@vw2/data"
import { AdamW, describeBackend, Init, PositionedIterator, replayFrom, runTraining, selectBackend, warmupCosine } from "@vw2/nn"
import * as tf from "@tensorflow/tfjs"
import { Effect, Schema } from "effect"
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { repeatFirstFrameError, x0Error } from "./DenoiseProbe.ts"
import { ditConfigSchema, MiniFlowObjectiveSchema } from "./DiTConfigSchema.ts"
import { importWeights } from "./ImportWeights.ts"
import { sideBySideGif } from "./internal/gif.ts"
import { rectifiedFlowLoss, sample } from "./Objective.ts"
import { validateFlowObjective } from "./RectifiedFlow.ts"
import { saveVdmCheckpoint } from "./VdmCheckpoint.ts"
import { VideoDiT } from "./VideoDiT.ts"
import { miniDiT, type VideoDiTConfig } from "./VideoDiTConfig.ts"

const { int, literals, nonNegativeNumber, positiveNumber, withDefault } = ConfigField

/** Pretraining sees no codes and no hint: the mini DiT without its control branch. */
const pretrainDefaults: VideoDiTConfig = { ...miniDiT, control: { ...miniDiT.control, enabled: false } }

export const VdmPretrainConfig = Schema.Struct({
  model: withDefault(ditConfigSchema(pretrainDefaults), {}),
  /** mini defaults: residual from the first frame, edm scalings (see miniFlowObjective); the paper preset
   * sets the authors' (defaultFlowObjective) */
  objective: withDefault(MiniFlowObjectiveSchema, {}),
  /** the clip geometry the dldm stage and the eval use (the dLDM mini preset: 9 consecutive frames) */
  clip: withDefault(
    Schema.Struct({
      /** frames per training clip (first one is the condition) */
      length: int(2, 9),
      /** take every k-th frame of the episode */
      frameStep: int(1, 1),
      /** frames between clip starts */
      stride: int(1, 3)
    }),
    {}
  ),
  train: withDefault(
    Schema.Struct({
      /** mini: 200 steps at batch 8 ≈ 53 s process CPU on the 2-core machine (native, measured under load ≈ 6.5) */
      steps: int(1, 200),
      batchSize: int(1, 8),
      lr: positiveNumber(3e-3),
      /** the authors' dLDM optimizer: AdamW wd 0.1, betas (0.9, 0.99) */
      weightDecay: nonNegativeNumber(0.1),
      beta1: positiveNumber(0.9),
      beta2: positiveNumber(0.99),
      warmupSteps: int(0, 20),
      clipNorm: positiveNumber(1),
      logEvery: int(1, 10)
    }),
    {}
  ),
  /** held-out check after training: x0 error at σ = 0.2, 1, 3 on clips of `split` vs repeat-the-first-frame (0 clips = off) */
  probe: withDefault(Schema.Struct({ clips: int(0, 16), split: literals(["train", "test"], "test") }), {}),
  sample: withDefault(
    Schema.Struct({
      /** clips to generate after training (0 = none) */
      count: int(0, 2),
      steps: int(1, 20),
      solver: literals(["euler", "heun"], "heun"),
      split: literals(["train", "test"], "test")
    }),
    {}
  ),
  /** start from external weights (safetensors) instead of a random init */
  init: withDefault(
    Schema.Struct({ weights: Schema.optionalKey(Schema.String), layout: literals(["vw2", "cosmos-predict2"], "vw2") }),
    {}
  )
})
export type VdmPretrainConfig = typeof VdmPretrainConfig.Type

/** Batch of dataset clips ([0, 1]) → the model's [−1, 1] video tensor. */
const toModelRange = (batch: Batch): tf.Tensor => tf.tidy(() => tf.sub(tf.mul(tf.tensor(batch.frames, [...batch.shape]), 2), 1))

const renderSamples = async (ctx: StageContext, dit: VideoDiT, dataset: Dataset, config: VdmPretrainConfig, outDir: string): Promise<number> => {
  const { clip, sample: s } = config
  const split = dataset.episodes({ split: s.split }).length > 0 ? s.split : "train"
  const clips = new DatasetClips(dataset, clip, { filter: { split } })
  const count = Math.min(s.count, clips.count)
  if (count === 0) return Number.NaN
  const batch = shuffledBatches(clips, { batchSize: count, seed: 0, shuffle: false }).next().value as Batch
  const truth = toModelRange(batch)
  const generated = sample(dit, tf.slice(truth, [0, 0], [-1, 1]), undefined, undefined, {
    frames: clip.length,
    steps: s.steps,
    cfg: 0,
    solver: s.solver,
    seed: ctx.seed,
    objective: config.objective
  })
  const mse = tf.tidy(() => tf.mean(tf.square(tf.sub(tf.slice(generated, [0, 1]), tf.slice(truth, [0, 1])))).dataSync()[0]!)
  const toUnit = (t: tf.Tensor) => tf.tidy(() => tf.clipByValue(tf.div(tf.add(t, 1), 2), 0, 1).dataSync() as Float32Array)
  const [, frames, height, width] = batch.shape
  const size = frames * height * width * 3
  const truthData = toUnit(truth)
  const genData = toUnit(generated)
  truth.dispose()
  generated.dispose()
  const panels = Array.from({ length: count }, (_, b) => [
    { data: truthData.subarray(b * size, (b + 1) * size), frames, height, width },
    { data: genData.subarray(b * size, (b + 1) * size), frames, height, width }
  ]).flat()
  await mkdir(join(outDir, "samples"), { recursive: true })
  await writeFile(join(outDir, "samples", "vdm-samples.gif"), await sideBySideGif(panels))
  return mse
}

/** Logs `vdm/x0_err_sigma{0.2,1,3}` (l1) and `vdm/x0_mse_sigma…` beside `vdm/repeat_err` / `vdm/repeat_mse`. */
const probeHeldOut = (ctx: StageContext, dit: VideoDiT, dataset: Dataset, config: VdmPretrainConfig): void => {
  const { probe, clip, objective } = config
  if (probe.clips === 0 || objective.conditionFrames !== 1) return
  const clips = new DatasetClips(dataset, clip, { filter: { split: probe.split } })
  if (clips.count === 0) return ctx.log(`${ctx.step}: no ${probe.split} clips; held-out probe skipped`)
  const batch = shuffledBatches(clips, { batchSize: Math.min(probe.clips, clips.count), seed: 20261206 }).next().value as Batch
  const video = toModelRange(batch)
  try {
    const repeat = repeatFirstFrameError(video)
    const values: Record<string, number> = { "vdm/repeat_err": repeat.l1, "vdm/repeat_mse": repeat.mse }
    for (const sigma of [0.2, 1, 3]) {
      const e = x0Error(dit, video, sigma, { objective, seed: 99 })
      values[`vdm/x0_err_sigma${sigma}`] = e.l1
      values[`vdm/x0_mse_sigma${sigma}`] = e.mse
    }
    ctx.metrics(values, config.train.steps)
    const at = (kind: "err" | "mse") => [0.2, 1, 3].map((s) => values[`vdm/x0_${kind}_sigma${s}`]!.toFixed(kind === "err" ? 4 : 5)).join(" / ")
    ctx.log(
      `${ctx.step}: held-out x0 error at σ = 0.2 / 1 / 3 (${batch.refs.length} ${probe.split} clips): l1 ${at("err")} (repeat first frame ${repeat.l1.toFixed(4)}), ` +
        `mse ${at("mse")} (repeat ${repeat.mse.toFixed(5)})`
    )
  } finally {
    video.dispose()
  }
}

export const vdmPretrain = defineStage({
  name: "vdm-pretrain",
  headline: ["vdm/x0_mse_sigma1", "vdm/repeat_mse", "vdm/loss"],
  version: "2",
  config: VdmPretrainConfig,
  inputs: { videos: "video-dataset" },
  outputs: { checkpoint: "vdm-checkpoint" },
  resources: () => ({ cpus: 1 }),
  run: (ctx, config, inputs) =>
    Effect.tryPromise({
      try: async () => {
        const where = ctx.step
        if (config.model.control.enabled) {
          throw new Error(`${where}.model.control.enabled: vdm-pretrain has no hint video; the control branch is added by the dldm stage (set it false)`)
        }
        const backend = await selectBackend()
        ctx.log(`${where}: tfjs backend ${describeBackend(backend)}`)
        const dataset = Dataset.open(inputs.videos.dir)
        const clips = new DatasetClips(dataset, config.clip, { filter: { split: "train" } })
        if (clips.count === 0) throw new Error(`${inputs.videos.dir}: no training clips of ${config.clip.length} frames (step ${config.clip.frameStep})`)
        const m = config.model
        if (dataset.height % m.patchSpatial !== 0 || dataset.width % m.patchSpatial !== 0) {
          throw new Error(`${where}.model.patchSpatial: ${m.patchSpatial} must divide the dataset's ${dataset.height}×${dataset.width} frames`)
        }
        if (m.inChannels !== 3) {
          throw new Error(`${where}.model.inChannels: ${m.inChannels} channels means tokenizer latents; this build has no video tokenizer and trains on RGB pixels (3)`)
        }
        if (config.clip.length % m.patchTemporal !== 0) {
          throw new Error(`${where}.clip.length: ${config.clip.length} must be a multiple of model.patchTemporal (${m.patchTemporal})`)
        }
        validateFlowObjective(config.objective, `${where}.objective`)
        if (config.objective.conditionFrames >= config.clip.length) {
          throw new Error(`${where}.objective.conditionFrames: must be < clip.length (${config.clip.length})`)
        }
        const dit = new VideoDiT(Init.seeded(ctx.seed), m)
        if (config.init.weights !== undefined) {
          const report = await importWeights(dit, config.init.weights, { layout: config.init.layout })
          ctx.log(`${where}: loaded ${report.loaded.length} tensors from ${config.init.weights} (${report.ignored.length} ignored)`)
        }
        ctx.log(`${where}: ${clips.count} training clips, DiT ${dit.paramCount()} parameters`)
        const { train } = config
        const optimizer = new AdamW({ lr: train.lr, beta1: train.beta1, beta2: train.beta2, weightDecay: train.weightDecay })
        const schedule = warmupCosine({ peakLr: train.lr, warmupSteps: train.warmupSteps, totalSteps: train.steps })
        // a resumed run replays the seeded order up to its checkpoint's position
        const batches = new PositionedIterator(replayFrom(() => shuffledBatches(clips, { batchSize: train.batchSize, seed: ctx.seed, epochs: Number.MAX_SAFE_INTEGER })))
        try {
          const result = await runTraining({
            ctx,
            name: where,
            metricPrefix: "vdm",
            steps: train.steps,
            modules: { dit },
            groups: [{ variables: dit.trainableVariables(), optimizer }],
            schedule,
            clipNorm: train.clipNorm,
            state: { batches },
            metricsEvery: train.logEvery,
            stepTimeMetric: true,
            step: (step) => {
              const x0 = toModelRange(batches.next())
              return {
                loss: () => {
                  const parts = rectifiedFlowLoss(dit, x0, undefined, undefined, { seed: ctx.seed * 1_000_003 + step, objective: config.objective })
                  return { loss: parts.loss, aux: { mse: parts.mse } }
                },
                metrics: (r) => ({ loss: r.loss, x0_mse: r.aux["mse"]!, grad_norm: r.gradNorm, lr: r.lr }),
                dispose: () => x0.dispose()
              }
            }
          })
          if (result.status === "paused") return
          probeHeldOut(ctx, dit, dataset, config)
          const outDir = ctx.outputDir("checkpoint")
          await saveVdmCheckpoint(
            outDir,
            dit,
            {
              objective: config.objective,
              clip: { length: config.clip.length, frameStep: config.clip.frameStep, height: dataset.height, width: dataset.width },
              pixelRange: [-1, 1]
            },
            optimizer
          )
          if (config.sample.count > 0) {
            const mse = await renderSamples(ctx, dit, dataset, config, outDir)
            if (Number.isFinite(mse)) {
              ctx.metrics({ "vdm/sample_mse": mse }, train.steps)
              ctx.upload("checkpoint/samples/vdm-samples.gif")
            }
          }
        } finally {
          optimizer.dispose()
          dit.dispose()
        }
      },
      catch: (cause) => new StageError({ stage: "vdm-pretrain", message: cause instanceof Error ? cause.message : String(cause), cause })
    })
})
