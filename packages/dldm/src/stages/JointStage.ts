/**
 * Stages `dldm` (disentangled training of the dLDM jointly with the VDM, after warm-up) and
 * `openx-cotrain` (the same objective continued on a weighted mixture of Craft and Open-X-format data).
 * Both train encoder + queries + decoder + DiT (+ control branch, + code projection) with one AdamW, and
 * write the dLDM ("dldm-checkpoint") and the fine-tuned DiT ("vdm-checkpoint"). AdamW moments restart at
 * each stage (the checkpoints carry weights, not optimiser state). Before and after training, a held-out
 * probe logs how much the DiT's x0 error depends on the codes (`dldm/code_drop_gain`) against
 * repeat-the-first-frame (docs/paper.md §Components, "VDM"; issue 13).
 */
import { defineStage, type StageContext } from "@vw2/core"
import { ditConfigSchema, preconditionings, miniDiT, prepareVdm, readsCodes, readVdmCheckpointConfig, saveVdmCheckpoint, type FlowObjectiveConfig, type VideoDiT, type VideoDiTConfig, validateFlowObjective } from "@vw2/diffusion"
import { Dataset, shuffledBatches } from "@vw2/data"
import { runTraining } from "@vw2/nn"
import type * as tf from "@tensorflow/tfjs"
import { Schema } from "effect"
import { loadDldm, saveDldm } from "../checkpoint.ts"
import { PositiveNumber, UnitInterval, int, nonNegInt, nonNegative, positive, withDefault } from "../internal/schema.ts"
import { colourAugment } from "../train/augment.ts"
import { batchTensor, endlessBatches, mixedBatches, openClips, resumableBatches, resumableNoise } from "../train/data.ts"
import { codeUse, detachedHint, jointLoss, type CodeUse } from "../train/joint.ts"
import type { Dldm } from "../Dldm.ts"
import { OptimConfigSchema, clipOf, makeOptimizer, makeSchedule, resumeCadence } from "../train/optim.ts"
import { runStageBody, useBackend } from "./common.ts"
import type { Batch } from "@vw2/data"
import type { PositionedIterator } from "@vw2/nn"

/** Objective fields that replace the vdm checkpoint's; no defaults here (an absent field keeps the checkpoint's). */
const FlowObjectivePartial = Schema.Struct({
  pMean: Schema.optionalKey(Schema.Finite),
  pStd: Schema.optionalKey(PositiveNumber),
  scaleSigmaByFrames: Schema.optionalKey(Schema.Boolean),
  conditionFrames: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  conditionFrameTime: Schema.optionalKey(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))),
  preconditioning: Schema.optionalKey(Schema.Literals(preconditionings)),
  sigmaData: Schema.optionalKey(PositiveNumber),
  residual: Schema.optionalKey(Schema.Boolean),
  samplingSigmaMax: Schema.optionalKey(PositiveNumber),
  samplingSigmaMin: Schema.optionalKey(PositiveNumber)
})

const jointFields = {
  /** mini default: 150 steps (at batch 2 ≈ 57 s process CPU on the 2-core machine, native, load ≈ 5; batch 4 about
   * twice that); 10 steps left the codes unread (issue 13) */
  steps: int(150),
  /** authors' dLDM optimiser: AdamW lr 1e-4 (batch 128), wd 0.1, betas (0.9, 0.99). Mini: batch 4 — at batch 2
   * whether the DiT learns to read the codes within 150 steps was a coin flip between seeds (code_drop_gain 9.6 /
   * 0.3 %, seeds 0 / 1), at 4 it is 2.5 / 7.5 % with a lower x0 error (scripts/vdm-code-use.ts) */
  optim: withDefault(OptimConfigSchema, { lr: 1e-3, batchSize: 4 }),
  /** the dLDM's learning rate relative to optim.lr (ours; authors: 1, one AdamW for everything). Mini 0.1: codes
   * that move under the DiT while it learns to read them stayed unread (train-clip code_drop_gain −6 % at 1, +3 %
   * at 0.1, scripts/vdm-code-use.ts) */
  dldmLrScale: positive(0.1),
  /** the learning rate of the DiT's code path (code projection, code modulation, cross-attention and its gates:
   * @vw2/diffusion `readsCodes`) relative to optim.lr (ours; authors: 1). It starts from nothing after
   * vdm-pretrain, while the rest of the DiT is already trained */
  codePathLrScale: positive(1),
  /** authors: loss = 10 · diffusion + reconstruction */
  diffusionWeight: nonNegative(10),
  reconstructionWeight: nonNegative(1),
  /** hint decoded from stop-gradient codes (authors' code); only matters with dit.control.stopGradient = false */
  hintFromDetachedCodes: withDefault(Schema.Boolean, true),
  /** probability of dropping the ControlNet hint for a training sample (ours; authors: 0, always given). The
   * hint (low-fi video decoded from the codes) carries the motion, so without dropout the DiT's code path has
   * nothing left to learn; dropped samples make the codes carry it. Mini 0.5 (without it: code_drop_gain 3.6 %
   * with the hint carrying 34 %) */
  hintDropout: withDefault(UnitInterval, 0.5),
  /** extra diffusion-loss weight on pixels that moved since the first frame (train/joint.ts `motionWeights`; ours;
   * authors: 0): the codes only tell where things move, and most pixels never do. Mini 1 (0: code_drop_gain
   * ≤ 2.5 %; 4: 16 % on seed 0 but x0 l1 .031 vs .022 and seed 1 1.2 %). It biases the x0 estimate towards
   * motion where the codes leave it unsure (l1 at σ = 1 .023–.025 vs .021 without) */
  motionWeight: nonNegative(1),
  /** strength of a per-clip colour transform of the training clips, as in warm-up (train/augment.ts; ours; 0 = off,
   * the authors'): the DiT learns to read the codes beside colours it will not see in the train split. Mini 1 */
  colourAugment: nonNegative(1),
  /** the DiT's switches (control branch, stop-grad, grayscale, causal cross-attention, training mode);
   * architecture fields are taken from the vdm checkpoint */
  dit: withDefault(ditConfigSchema(miniDiT), {}),
  /** the diffusion objective: the vdm checkpoint's (residual and scalings are part of what its weights
   * mean), with the fields given here replacing its (e.g. the training σ distribution). Default pMean 0, the
   * authors' value: the mini vdm-pretrain trains at p_mean −2 (σ ≈ 0.14), where the noisy frames show the motion
   * and the codes have nothing to add; around σ = 1 they do */
  objective: withDefault(FlowObjectivePartial, { pMean: 0 }),
  split: withDefault(Schema.String, "train"),
  /** held-out check after training (issue 13): x0 error at σ with and without the codes on clips of `split`;
   * 0 clips = off */
  probe: withDefault(
    Schema.Struct({ clips: nonNegInt(16), sigmas: withDefault(Schema.Array(PositiveNumber), [1, 3]), split: withDefault(Schema.String, "test") }),
    {}
  ),
  /** frames between training clip starts (0 = 1 + temporalCompression) */
  clipStride: nonNegInt(0),
  /** mid-stage checkpoint (for resume) every n steps; 0 = the training harness's default cadence */
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
    const objective: FlowObjectiveConfig = { ...vdmMeta.objective, ...config.objective }
    validateFlowObjective(objective, `${stage}.objective`)
    const c = dldm.config
    const clipOptions = { split: config.split, clipStride: config.clipStride || undefined }
    const craft = openClips(sources.craft, c, clipOptions, "craft")
    let batches: PositionedIterator<Batch>
    if (sources.openx === undefined) {
      batches = resumableBatches([craft], ([c]) => endlessBatches(c!, config.optim.batchSize, ctx.seed))
      ctx.log(`${stage}: ${craft.count} clips of ${c.frames} frames`)
    } else {
      const openx = openClips(sources.openx.dir, c, clipOptions, "openx")
      const weights = sources.openx
      batches = resumableBatches([craft, openx], ([craftSource, openxSource]) =>
        mixedBatches(
          [
            { clips: craftSource!, weight: weights.craftWeight },
            { clips: openxSource!, weight: weights.openxWeight }
          ],
          config.optim.batchSize,
          ctx.seed
        )
      )
      ctx.log(`${stage}: mixture of ${craft.count} Craft and ${openx.count} Open-X clips, weights ${sources.openx.craftWeight}:${sources.openx.openxWeight}`)
    }
    // one AdamW per model (same settings; the dLDM's rate × dldmLrScale), one global-norm clip over both;
    // names prefixed so they cannot collide
    // (and the DiT's code path × codePathLrScale)
    const dldmVars = new Map<string, tf.Variable>()
    const ditVars = new Map<string, tf.Variable>()
    const codePathVars = new Map<string, tf.Variable>()
    for (const [k, v] of dldm.trainableVariables()) dldmVars.set(`dldm.${k}`, v)
    for (const [k, v] of dit.trainableVariables()) (readsCodes(k) ? codePathVars : ditVars).set(`dit.${k}`, v)
    const optimizers = [
      { variables: dldmVars, optimizer: makeOptimizer(config.optim), lrScale: config.dldmLrScale },
      { variables: ditVars, optimizer: makeOptimizer(config.optim), lrScale: 1 },
      { variables: codePathVars, optimizer: makeOptimizer(config.optim), lrScale: config.codePathLrScale }
    ]
    const lr = makeSchedule(config.optim, config.steps)
    const outDldm = ctx.outputDir("checkpoint")
    const outVdm = ctx.outputDir("vdm")
    const vdmMetaOut = { objective, clip: { length: c.frames, frameStep: 1, height: c.height, width: c.width }, pixelRange: vdmMeta.pixelRange }
    const save = async (step: number, extra: Record<string, unknown> = {}) => {
      await saveDldm(outDldm, dldm, { trainState: { step, stage, ...extra } })
      await saveVdmCheckpoint(outVdm, dit, vdmMetaOut)
    }
    const probe = heldOutProbe(ctx, stage, sources.craft, config, dldm, dit, objective)
    try {
      const result = await runTraining({
        ctx,
        name: stage,
        steps: config.steps,
        modules: { dldm, dit },
        groups: optimizers,
        schedule: lr,
        clipNorm: clipOf(config.optim),
        state: { batches, decoderNoise: resumableNoise(dldm) },
        stepTimeMetric: true,
        ...resumeCadence(config.checkpointEvery),
        atStart: () => probe?.(0),
        progress: { message: (_, values) => Object.entries(values).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" ") },
        step: (step) => {
          const batch: Batch = batches.next()
          const raw = batchTensor(batch)
          const video = config.colourAugment > 0 ? colourAugment(raw, config.colourAugment, ctx.seed * 1_000_003 + step) : raw
          if (video !== raw) raw.dispose()
          let hint: tf.Tensor | undefined
          try {
            hint = detachedHint(dldm, dit, video, true)
          } catch (e) {
            video.dispose()
            throw e
          }
          const openxShare = batch.sources.filter((s) => s === "openx").length / batch.sources.length
          return {
            loss: () => {
              const l = jointLoss(dldm, dit, video, {
                diffusionWeight: config.diffusionWeight,
                reconstructionWeight: config.reconstructionWeight,
                hintFromDetachedCodes: config.hintFromDetachedCodes,
                hintDropout: config.hintDropout,
                motionWeight: config.motionWeight,
                codeContext: true,
                objective,
                seed: ctx.seed * 1_000_003 + step,
                train: true,
                hint
              })
              return { loss: l.loss, aux: { diffusion: l.diffusion, reconstruction: l.reconstruction, mse: l.mse } }
            },
            metrics: (r) => ({
              loss: r.loss,
              diffusion: r.aux["diffusion"]!,
              reconstruction: r.aux["reconstruction"]!,
              x0_mse: r.aux["mse"]!,
              grad_norm: r.gradNorm,
              lr: r.lr,
              ...(sources.openx !== undefined ? { openx_fraction: openxShare } : {})
            }),
            dispose: () => {
              video.dispose()
              hint?.dispose()
            }
          }
        }
      })
      if (result.status === "paused") return
      probe?.(config.steps)
      await save(config.steps, { backend, meanStepMs: result.meanStepMs, firstLoss: result.first["loss"], lastLoss: result.last["loss"] })
      ctx.log(`${stage}: loss ${result.first["loss"]?.toFixed(4)} → ${result.last["loss"]?.toFixed(4)}, ${result.meanStepMs.toFixed(0)} ms/step on ${backend}`)
    } finally {
      for (const o of optimizers) o.optimizer.dispose()
    }
  } finally {
    dldm.dispose()
    dit.dispose()
  }
}

/**
 * The held-out check, or undefined when off or the split has no clip: logs at `step`, per σ in probe.sigmas,
 * the DiT's x0 error with codes and hint (`dldm/x0_err_sigma1`: l1, `dldm/x0_mse_sigma1`; `openx-cotrain/…` in that
 * stage), with the codes dropped (hint kept), with codes and hint dropped, repeat-the-first-frame (`dldm/repeat_err`),
 * and the relative change when the codes are dropped (`dldm/code_drop_gain` = mse without codes / mse with codes − 1
 * at σ = 1). Named by the stage, not `vdm/`: vdm-pretrain owns its own held-out `vdm/x0_err_*`.
 */
function heldOutProbe(
  ctx: StageContext,
  stage: string,
  dir: string,
  config: DldmStageConfig,
  dldm: Dldm,
  dit: VideoDiT,
  objective: FlowObjectiveConfig
): ((step: number) => void) | undefined {
  const p = config.probe
  if (p.clips === 0) return undefined
  if (!Dataset.open(dir).episodes({ split: p.split }).length) {
    ctx.log(`${stage}: no "${p.split}" episodes in ${dir}; held-out probe skipped`)
    return undefined
  }
  const clips = openClips(dir, dldm.config, { split: p.split }, "probe")
  const batch = shuffledBatches(clips, { batchSize: Math.min(p.clips, clips.count), seed: 20261206 }).next().value!
  return (step) => {
    const video = batchTensor(batch)
    try {
      for (const sigma of p.sigmas) {
        const u = codeUse(dldm, dit, video, { objective, sigma, seed: 99 })
        const tag = `sigma${sigma}`
        const gain = (e: "l1" | "mse", without: CodeUse["noCodes"]) => without[e] / u.full[e] - 1
        ctx.metrics(
          {
            [`${stage}/x0_err_${tag}`]: u.full.l1,
            [`${stage}/x0_mse_${tag}`]: u.full.mse,
            [`${stage}/x0_err_${tag}_nocodes`]: u.noCodes.l1,
            [`${stage}/x0_mse_${tag}_nocodes`]: u.noCodes.mse,
            [`${stage}/x0_err_${tag}_nocond`]: u.noCondition.l1,
            [`${stage}/x0_mse_${tag}_nocond`]: u.noCondition.mse,
            [sigma === 1 ? `${stage}/code_drop_gain` : `${stage}/code_drop_gain_${tag}`]: gain("mse", u.noCodes),
            [`${stage}/code_drop_gain_l1_${tag}`]: gain("l1", u.noCodes),
            [`${stage}/cond_drop_gain_${tag}`]: gain("mse", u.noCondition),
            [`${stage}/repeat_err`]: u.repeat.l1,
            [`${stage}/repeat_mse`]: u.repeat.mse
          },
          step
        )
        const f = (e: CodeUse["full"]) => `${e.mse.toFixed(5)} (l1 ${e.l1.toFixed(4)})`
        ctx.log(
          `${stage}: held-out (${batch.refs.length} ${p.split} clips) at step ${step}, σ = ${sigma}: x0 mse ${f(u.full)}; ` +
            `codes dropped ${f(u.noCodes)} (${(100 * gain("mse", u.noCodes)).toFixed(1)} %); codes + hint dropped ${f(u.noCondition)} ` +
            `(${(100 * gain("mse", u.noCondition)).toFixed(1)} %); repeat first frame ${f(u.repeat)}`
        )
      }
    } finally {
      video.dispose()
    }
  }
}

export const dldmStage = defineStage({
  name: "dldm",
  headline: ["dldm/loss", "dldm/code_drop_gain", "dldm/x0_mse_sigma1"],
  version: "2",
  config: DldmStageConfigSchema,
  inputs: { dataset: "video-dataset", warmup: "dldm-checkpoint", vdm: "vdm-checkpoint" },
  outputs: { checkpoint: "dldm-checkpoint", vdm: "vdm-checkpoint" },
  resources: () => ({ cpus: 1 }),
  run: (ctx, config, inputs) =>
    runStageBody("dldm", ctx, (c) => runJoint(c, "dldm", config, { craft: inputs.dataset.dir }, inputs.warmup.dir, inputs.vdm.dir))
})

export const openxCotrainStage = defineStage({
  name: "openx-cotrain",
  headline: ["openx-cotrain/loss", "openx-cotrain/code_drop_gain", "openx-cotrain/x0_mse_sigma1"],
  version: "2",
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
