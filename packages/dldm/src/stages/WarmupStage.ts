/**
 * Stage `warmup` (docs/paper.md "Warm-up"; authors' code): train encoder → queries → FSQ → low-fi decoder with the
 * plain reconstruction loss (L1 [+ 0.1·LPIPS]) until the decoder reproduces coarse motion. Input: a video
 * dataset; output: a dLDM checkpoint (weights, config, optimiser state, train state).
 */
import { defineStage, type StageContext } from "@vw2/core"
import { Init, runTraining } from "@vw2/nn"
import { Schema } from "effect"
import { Dldm } from "../Dldm.ts"
import { DldmConfigSchema, validateDldmConfig, type DldmConfig } from "../DldmConfig.ts"
import { saveDldm } from "../checkpoint.ts"
import { nonNegInt, nonNegative, int, withDefault } from "../internal/schema.ts"
import { batchTensor, endlessBatches, mixedBatches, openClips, resumableBatches, resumableNoise } from "../train/data.ts"
import { colourAugment } from "../train/augment.ts"
import { OptimConfigSchema, clipOf, makeOptimizer, makeSchedule, resumeCadence } from "../train/optim.ts"
import { runStageBody, useBackend } from "./common.ts"

export const WarmupConfigSchema = Schema.Struct({
  /** the architecture (defaults: the mini preset); later stages read it from this stage's checkpoint */
  model: withDefault(DldmConfigSchema, {}),
  /** mini default: ≈ 1 minute on the pure-JS backend (≈ 1.1 s CPU per step at batch 4), ≈ 15 s on native */
  steps: int(60),
  optim: withDefault(OptimConfigSchema, {}),
  /** weight of LPIPS in the loss (authors: 0.1). Needs a differentiable LPIPS network in tfjs; none ships, so > 0 fails. */
  lpipsWeight: nonNegative(0),
  split: withDefault(Schema.String, "train"),
  /** frames between training clip starts (0 = 1 + temporalCompression) */
  clipStride: nonNegInt(0),
  /**
   * latentNorm "batch": after this fraction of the steps the norm standardises with its running statistics
   * in training too (and in every later stage: the flag is saved), so the last steps adapt the decoder to the
   * statistics tokenize, eval and the batch-2 joint stage use (LatentNorm.ts). 1 = at the end (after the last step).
   */
  latentNormFreeze: withDefault(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1)), 1),
  /** strength of a per-clip colour transform of the training clips (train/augment.ts; 0 = off, the authors') */
  colourAugment: nonNegative(0),
  /** mid-stage checkpoint (for resume, in the invocation's resume directory) every n steps; 0 = the training
   * harness's default cadence (@vw2/nn DEFAULT_CHECKPOINT_CADENCE) */
  checkpointEvery: nonNegInt(0)
})
export type WarmupConfig = typeof WarmupConfigSchema.Type

/** Robot clips mixed into the warm-up (MiniCALVIN / CALVIN frames), so the codes the CALVIN head reads come from a
 * dLDM that has seen robot motion (issue 13; docs/paper.md "CALVIN"). */
export interface RobotMix {
  readonly dir: string
  readonly craftWeight: number
  readonly robotWeight: number
}

export async function runWarmup(ctx: StageContext, config: WarmupConfig, datasetDir: string, robot?: RobotMix): Promise<void> {
  if (config.lpipsWeight > 0) {
    throw new Error(
      `warmup.lpipsWeight = ${config.lpipsWeight}: the perceptual term needs a differentiable LPIPS feature network in tfjs, ` +
        "and none is available in this build (the ONNX LPIPS in @vw2/eval has no gradients); set warmup.lpipsWeight to 0"
    )
  }
  const model = config.model as DldmConfig
  validateDldmConfig(model, "warmup.model")
  const backend = await useBackend(ctx)
  const clipOptions = { split: config.split, clipStride: config.clipStride || undefined }
  const clips = openClips(datasetDir, model, clipOptions, "craft")
  const robotClips = robot === undefined ? undefined : openClips(robot.dir, model, clipOptions, "robot")
  ctx.log(
    `warmup: ${clips.count} clips of ${model.frames} frames` +
      (robotClips === undefined ? "" : ` + ${robotClips.count} robot clips, weights ${robot!.craftWeight}:${robot!.robotWeight}`) +
      `; ${config.steps} steps at batch ${config.optim.batchSize}`
  )
  const dldm = new Dldm(Init.seeded(ctx.seed), model)
  const optimizer = makeOptimizer(config.optim)
  const lr = makeSchedule(config.optim, config.steps)
  const batches =
    robotClips === undefined
      ? resumableBatches([clips], ([craft]) => endlessBatches(craft!, config.optim.batchSize, ctx.seed))
      : resumableBatches([clips, robotClips], ([craft, robotSource]) =>
          mixedBatches([{ clips: craft!, weight: robot!.craftWeight }, { clips: robotSource!, weight: robot!.robotWeight }], config.optim.batchSize, ctx.seed)
        )
  const out = ctx.outputDir("checkpoint")
  try {
    const result = await runTraining({
      ctx,
      name: "warmup",
      steps: config.steps,
      modules: { dldm },
      groups: [{ variables: dldm.trainableVariables(), optimizer }],
      schedule: lr,
      clipNorm: clipOf(config.optim),
      state: { batches, decoderNoise: resumableNoise(dldm) },
      stepTimeMetric: true,
      ...resumeCadence(config.checkpointEvery),
      progress: { message: (_, values) => Object.entries(values).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" ") },
      step: (step) => {
        // a resumed run past this step has the switch in its weights (a buffer of the norm)
        if (dldm.latentNorm !== undefined && config.latentNormFreeze < 1 && step === Math.floor(config.latentNormFreeze * config.steps)) {
          dldm.latentNorm.useRunningStatistics()
          ctx.log(`warmup: latentNorm on running statistics in training from step ${step}`)
        }
        const raw = batchTensor(batches.next())
        const video = config.colourAugment > 0 ? colourAugment(raw, config.colourAugment, ctx.seed * 1_000_003 + step) : raw
        if (video !== raw) raw.dispose()
        return {
          loss: () => {
            const f = dldm.forward(video, true)
            const reconstruction = dldm.reconstructionLoss(video, f.recon)
            return { loss: reconstruction, aux: { reconstruction } }
          },
          metrics: (r) => ({ loss: r.loss, reconstruction: r.aux["reconstruction"]!, grad_norm: r.gradNorm, lr: r.lr }),
          dispose: () => video.dispose()
        }
      }
    })
    if (result.status === "paused") return
    dldm.latentNorm?.useRunningStatistics() // every later stage: the same statistics in training and at inference
    await saveDldm(out, dldm, {
      optimizer,
      trainState: { step: config.steps, stage: "warmup", backend, meanStepMs: result.meanStepMs, firstLoss: result.first["loss"], lastLoss: result.last["loss"] }
    })
    ctx.log(`warmup: loss ${result.first["loss"]?.toFixed(4)} → ${result.last["loss"]?.toFixed(4)}, ${result.meanStepMs.toFixed(0)} ms/step on ${backend}`)
  } finally {
    optimizer.dispose()
    dldm.dispose()
  }
}

export const warmupStage = defineStage({
  name: "warmup",
  headline: ["warmup/loss"],
  // 2: latentNorm / flowWarp in the model, running statistics in the checkpoint; 3: conv-unet decoder, frozen latentNorm;
  // 4: frame-difference encoder tokens and the Q-Former's difference context in the mini preset
  version: "4",
  config: WarmupConfigSchema,
  inputs: { dataset: "video-dataset" },
  outputs: { checkpoint: "dldm-checkpoint" },
  resources: () => ({ cpus: 1 }),
  run: (ctx, config, inputs) => runStageBody("warmup", ctx, (c) => runWarmup(c, config, inputs.dataset.dir))
})

export const WarmupRobotMixConfigSchema = Schema.Struct({
  ...WarmupConfigSchema.fields,
  /** mixture weights: expected fraction of training clips from each source ∝ weight */
  craftWeight: withDefault(Schema.Finite.check(Schema.isGreaterThan(0)), 3),
  robotWeight: withDefault(Schema.Finite.check(Schema.isGreaterThan(0)), 1)
})

/** `warmup` on Craft clips mixed with robot demos (same frame size), for pipelines whose dLDM also tokenizes CALVIN. */
export const warmupRobotMixStage = defineStage({
  name: "warmup",
  // the same training code as warmupStage: one version, bumped in one place
  headline: warmupStage.headline,
  version: warmupStage.version,
  config: WarmupRobotMixConfigSchema,
  inputs: { dataset: "video-dataset", robot: "robot-dataset" },
  outputs: { checkpoint: "dldm-checkpoint" },
  resources: () => ({ cpus: 1 }),
  run: (ctx, config, inputs) =>
    runStageBody("warmup", ctx, (c) =>
      runWarmup(c, config, inputs.dataset.dir, { dir: inputs.robot.dir, craftWeight: config.craftWeight, robotWeight: config.robotWeight })
    )
})
