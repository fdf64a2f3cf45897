/**
 * The VideoDiT bound to the rectified-flow objective and the Karras sampler: the two calls the dLDM stage
 * (and `vdm-pretrain`) make. Videos are `[B, T, H, W, C]` in [−1, 1]; the first frame is the condition.
 */
import * as tf from "@tensorflow/tfjs"
import { defaultFlowObjective, rectifiedFlowObjective, sampleVideo, type FlowLossParts, type FlowObjectiveConfig, type OdeSolver } from "./RectifiedFlow.ts"
import type { KarrasScheduleConfig } from "./KarrasSchedule.ts"
import type { CodeContext, VideoDiT } from "./VideoDiT.ts"

export interface LossOptions {
  /** seeds σ, ε and the context dropout of this step */
  readonly seed: number
  readonly objective?: FlowObjectiveConfig
  /** drop the context per sample with dit.config.contextDropout (default true; false for evaluation) */
  readonly train?: boolean
  /** probability of dropping the hint for a training sample (its control residuals zeroed; independent of the
   * context dropout). Ours: the joint stage's `hintDropout`; default 0 (authors: the hint is always given) */
  readonly hintDropout?: number
  /** [B, T, H, W, C] per-element loss weight (see `rectifiedFlowObjective`); omitted = uniform (authors) */
  readonly elementWeight?: tf.Tensor
  /** explicit draws, for exact tests */
  readonly noise?: tf.Tensor
  readonly sigmaNormal?: tf.Tensor
}

/** [B] Bernoulli(1 − p) keep mask from a seed. */
const keepMask = (b: number, p: number, seed: number): tf.Tensor =>
  tf.tidy(() => tf.cast(tf.greaterEqual(tf.randomUniform([b], 0, 1, "float32", seed), p), "float32"))

/**
 * Diffusion loss of `dit` on clean videos `x0` given the code context and the low-fi hint (either may be
 * undefined). Differentiable w.r.t. the DiT, the context's codes and — unless dit.config.control.stopGradient —
 * the hint's source.
 */
export const rectifiedFlowLoss = (
  dit: VideoDiT,
  x0: tf.Tensor,
  context: CodeContext | undefined,
  hint: tf.Tensor | undefined,
  options: LossOptions
): FlowLossParts => {
  const b = x0.shape[0]!
  const p = dit.config.contextDropout
  const train = options.train ?? true
  const keep = train && p > 0 && context !== undefined ? keepMask(b, p, options.seed + 104729) : undefined
  const ph = options.hintDropout ?? 0
  const hintKeep = train && ph > 0 && hint !== undefined ? keepMask(b, ph, options.seed + 130363) : undefined
  try {
    return rectifiedFlowObjective(dit.velocityNet(context, hint, keep, hintKeep), x0, {
      seed: options.seed,
      config: options.objective ?? defaultFlowObjective,
      ...(options.noise !== undefined ? { noise: options.noise } : {}),
      ...(options.sigmaNormal !== undefined ? { sigmaNormal: options.sigmaNormal } : {}),
      ...(options.elementWeight !== undefined ? { elementWeight: options.elementWeight } : {})
    })
  } finally {
    keep?.dispose()
    hintKeep?.dispose()
  }
}

export interface SampleOptions {
  /** frames to generate, including the conditioning first frame (default: the hint's length) */
  readonly frames?: number
  /** Karras steps (authors: 35) */
  readonly steps?: number
  /** guidance g: D_cond + g·(D_cond − D_uncond) (authors: 7; 0 = off) */
  readonly cfg?: number
  readonly solver?: OdeSolver
  readonly seed?: number
  readonly schedule?: KarrasScheduleConfig
  readonly objective?: FlowObjectiveConfig
  readonly onStep?: (done: number, total: number) => void
}

/**
 * Generate videos [B, T, H, W, C] that start at `firstFrame` ([B, H, W, C] or [B, 1, H, W, C]), following the
 * codes (`context`) and the low-fi motion `hint`. The unconditional branch of CFG drops the codes and keeps the hint.
 */
export const sample = (
  dit: VideoDiT,
  firstFrame: tf.Tensor,
  context: CodeContext | undefined,
  hint: tf.Tensor | undefined,
  options: SampleOptions = {}
): tf.Tensor => {
  const first = firstFrame.rank === 4 ? tf.expandDims(firstFrame, 1) : firstFrame
  if (first.rank !== 5 || first.shape[1] !== 1) {
    throw new Error(`sample: firstFrame must be [B, H, W, C] or [B, 1, H, W, C], got [${firstFrame.shape.join(", ")}]`)
  }
  const [b, , h, w, c] = first.shape as [number, number, number, number, number]
  const frames = options.frames ?? hint?.shape[1]
  if (frames === undefined) throw new Error("sample: give options.frames (no hint to take the length from)")
  if (hint !== undefined && hint.shape[1] !== frames) throw new Error(`sample: hint has ${hint.shape[1]} frames, asked for ${frames}`)
  const objective = options.objective ?? defaultFlowObjective
  if (objective.conditionFrames !== 1) throw new Error("sample: conditions on exactly one first frame (objective.conditionFrames = 1)")
  const cfg = options.cfg ?? 7
  const clean = tf.tidy(() => tf.concat([first, tf.zeros([b, frames - 1, h, w, c])], 1))
  try {
    return sampleVideo(
      { cond: dit.velocityNet(context, hint), ...(cfg !== 0 ? { uncond: dit.velocityNet(undefined, hint) } : {}) },
      [b, frames, h, w, c],
      {
        seed: options.seed ?? 0,
        cleanCondition: clean,
        sampler: {
          steps: options.steps ?? 35,
          cfg,
          solver: options.solver ?? "heun",
          ...(options.schedule !== undefined ? { schedule: options.schedule } : {})
        },
        objective,
        ...(options.onStep !== undefined ? { onStep: options.onStep } : {})
      }
    )
  } finally {
    clean.dispose()
    if (first !== firstFrame) first.dispose()
  }
}
