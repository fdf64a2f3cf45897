/**
 * Stages `dldm` (disentangled training of the dLDM jointly with the VDM, after warm-up) and
 * `openx-cotrain` (the same objective continued on a weighted mixture of Craft and Open-X-format data).
 * Both train encoder + queries + decoder + DiT (+ control branch, + code projection) with one AdamW, and
 * write the dLDM ("dldm-checkpoint") and the fine-tuned DiT ("vdm-checkpoint"). AdamW moments restart at
 * each stage (the checkpoints carry weights, not optimiser state).
 */
import { defineStage, type StageContext } from "@vw2/core"
import { FlowObjectiveSchema, ditConfigSchema, miniDiT, prepareVdm, readVdmCheckpointConfig, saveVdmCheckpoint, type VideoDiTConfig } from "@vw2/diffusion"
import { trainStep } from "@vw2/nn"
import type * as tf from "@tensorflow/tfjs"
import { Schema } from "effect"
import { loadDldm, saveDldm } from "../checkpoint.ts"
import { int, nonNegInt, nonNegative, positive, withDefault } from "../internal/schema.ts"
import { batchTensor, endlessBatches, mixedBatches, openClips } from "../train/data.ts"
import { jointLoss } from "../train/joint.ts"
import { runSteps } from "../train/loop.ts"
import { OptimConfigSchema, clipOf, makeOptimizer, makeSchedule } from "../train/optim.ts"
import { runStageBody, useBackend } from "./common.ts"
import type { Batch } from "@vw2/data"

const jointFields = {
  /** mini default: ≈ 1 minute on the pure-JS backend (≈ 7 s CPU per step at batch 2, mostly the DiT), ≈ 10 s on native */
  steps: int(10),
  /** authors' dLDM optimiser: AdamW lr 1e-4 (batch 128), wd 0.1, betas (0.9, 0.99) */
  optim: withDefault(OptimConfigSchema, { lr: 1e-3, batchSize: 2 }),
  /** authors: loss = 10 · diffusion + reconstruction */
  diffusionWeight: nonNegative(10),
  reconstructionWeight: nonNegative(1),
  /** hint decoded from stop-gradient codes (authors' code); only matters with dit.control.stopGradient = false */
  hintFromDetachedCodes: withDefault(Schema.Boolean, true),
  /** the DiT's switches (control branch, stop-grad, grayscale, causal cross-attention, training mode);
   * architecture fields are taken from the vdm checkpoint */
  dit: withDefault(ditConfigSchema(miniDiT), {}),
  objective: withDefault(FlowObjectiveSchema, {}),
  split: withDefault(Schema.String, "train"),
  /** frames between training clip starts (0 = 1 + temporalCompression) */
  clipStride: nonNegInt(0),
  checkpointEvery: nonNegInt(0)
}

export const DldmStageConfigSchema = Schema.Struct(jointFields)
export type DldmStageConfig = typeof DldmStageConfigSchema.Type

export const OpenxCotrainConfigSchema = Schema.Struct({
  ...jointFields,
  /** mixture weights: expected fraction of clips from each source ∝ weight */
  craftWeight: positive(1),
  openxWeight: positive(1)
})
export type OpenxCotrainConfig = typeof OpenxCotrainConfigSchema.Type

interface Sources {
  readonly craft: string
  readonly openx?: { readonly dir: string; readonly craftWeight: number; readonly openxWeight: number }
}

async function runJoint(ctx: StageContext, stage: string, config: DldmStageConfig, sources: Sources, dldmDir: string, vdmDir: string): Promise<void> {
  const backend = await useBackend(ctx)
  const { model: dldm } = await loadDldm(dldmDir)
  const vdmMeta = await readVdmCheckpointConfig(vdmDir)
  const { dit, overridden } = await prepareVdm(config.dit as VideoDiTConfig, vdmDir, ctx.seed)
  try {
    if (overridden.length > 0) ctx.log(`${stage}: DiT architecture from ${vdmDir}: ${overridden.join(", ")}`)
    if (dit.config.inChannels !== 3) {
      throw new Error(
        `${stage}: the DiT in ${vdmDir} models ${dit.config.inChannels}-channel latents; the joint stage trains on pixels ` +
          "(a latent DiT needs the Cosmos video tokenizer, which this build does not include)"
      )
    }
    if (dit.config.codeDim !== dldm.fsq.dim) throw new Error(`${stage}.dit.codeDim: ${dit.config.codeDim} ≠ FSQ levels ${dldm.fsq.dim} of the dLDM`)
    const c = dldm.config
    const clipOptions = { split: config.split, clipStride: config.clipStride || undefined }
    const craft = openClips(sources.craft, c, clipOptions, "craft")
    let batches: Generator<Batch>
    if (sources.openx === undefined) {
      batches = endlessBatches(craft, config.optim.batchSize, ctx.seed)
      ctx.log(`${stage}: ${craft.count} clips of ${c.frames} frames`)
    } else {
      const openx = openClips(sources.openx.dir, c, clipOptions, "openx")
      batches = mixedBatches(
        [
          { clips: craft, weight: sources.openx.craftWeight },
          { clips: openx, weight: sources.openx.openxWeight }
        ],
        config.optim.batchSize,
        ctx.seed
      )
      ctx.log(`${stage}: mixture of ${craft.count} Craft and ${openx.count} Open-X clips, weights ${sources.openx.craftWeight}:${sources.openx.openxWeight}`)
    }
    // one optimiser over both models; names prefixed so they cannot collide
    const variables = new Map<string, tf.Variable>()
    for (const [k, v] of dldm.trainableVariables()) variables.set(`dldm.${k}`, v)
    for (const [k, v] of dit.trainableVariables()) variables.set(`dit.${k}`, v)
    const optimizer = makeOptimizer(config.optim)
    const lr = makeSchedule(config.optim, config.steps)
    const outDldm = ctx.outputDir("checkpoint")
    const outVdm = ctx.outputDir("vdm")
    const vdmMetaOut = { objective: config.objective, clip: { length: c.frames, frameStep: 1, height: c.height, width: c.width }, pixelRange: vdmMeta.pixelRange }
    const save = async (step: number, extra: Record<string, unknown> = {}) => {
      await saveDldm(outDldm, dldm, { trainState: { step, stage, ...extra } })
      await saveVdmCheckpoint(outVdm, dit, vdmMetaOut)
    }
    try {
      const result = await runSteps(
        ctx,
        config.steps,
        (step) => {
          const batch: Batch = batches.next().value!
          const video = batchTensor(batch)
          try {
            const r = trainStep({
              variables,
              optimizer,
              lr: lr(step),
              clipNorm: clipOf(config.optim),
              lossFn: () => {
                const l = jointLoss(dldm, dit, video, {
                  diffusionWeight: config.diffusionWeight,
                  reconstructionWeight: config.reconstructionWeight,
                  hintFromDetachedCodes: config.hintFromDetachedCodes,
                  codeContext: true,
                  objective: config.objective,
                  seed: ctx.seed * 1_000_003 + step,
                  train: true
                })
                return { loss: l.loss, aux: { diffusion: l.diffusion, reconstruction: l.reconstruction, mse: l.mse } }
              }
            })
            const openxShare = batch.sources.filter((s) => s === "openx").length / batch.sources.length
            return {
              loss: r.loss,
              diffusion: r.aux["diffusion"]!,
              reconstruction: r.aux["reconstruction"]!,
              x0_mse: r.aux["mse"]!,
              grad_norm: r.gradNorm,
              lr: lr(step),
              ...(sources.openx !== undefined ? { openx_fraction: openxShare } : {})
            }
          } finally {
            video.dispose()
          }
        },
        { every: config.checkpointEvery, write: (step) => save(step) }
      )
      await save(config.steps, { backend, meanStepMs: result.meanStepMs, firstLoss: result.first["loss"], lastLoss: result.last["loss"] })
      ctx.log(`${stage}: loss ${result.first["loss"]?.toFixed(4)} → ${result.last["loss"]?.toFixed(4)}, ${result.meanStepMs.toFixed(0)} ms/step on ${backend}`)
    } finally {
      optimizer.dispose()
    }
  } finally {
    dldm.dispose()
    dit.dispose()
  }
}

export const dldmStage = defineStage({
  name: "dldm",
  version: "1",
  config: DldmStageConfigSchema,
  inputs: { dataset: "video-dataset", warmup: "dldm-checkpoint", vdm: "vdm-checkpoint" },
  outputs: { checkpoint: "dldm-checkpoint", vdm: "vdm-checkpoint" },
  resources: () => ({ cpus: 1 }),
  run: (ctx, config, inputs) =>
    runStageBody("dldm", ctx, (c) => runJoint(c, "dldm", config, { craft: inputs.dataset.dir }, inputs.warmup.dir, inputs.vdm.dir))
})

export const openxCotrainStage = defineStage({
  name: "openx-cotrain",
  version: "1",
  config: OpenxCotrainConfigSchema,
  inputs: { craft: "video-dataset", openx: "robot-dataset", checkpoint: "dldm-checkpoint", vdm: "vdm-checkpoint" },
  outputs: { checkpoint: "dldm-checkpoint", vdm: "vdm-checkpoint" },
  resources: () => ({ cpus: 1 }),
  run: (ctx, config, inputs) =>
    runStageBody("openx-cotrain", ctx, (c) =>
        runJoint(
          c,
          "openx-cotrain",
          config,
          { craft: inputs.craft.dir, openx: { dir: inputs.openx.dir, craftWeight: config.craftWeight, openxWeight: config.openxWeight } },
          inputs.checkpoint.dir,
          inputs.vdm.dir
        )
    )
})
