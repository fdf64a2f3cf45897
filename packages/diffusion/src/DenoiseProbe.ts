/**
 * How well a DiT denoises, measured the way the issue states its target (docs/paper.md "VDM"): mean |x0_pred −
 * x0| over the generated frames at a fixed noise level σ, in [0, 1] pixel units, against the trivial
 * predictor "repeat the first frame". Fixed noise per seed, so two calls (with and without the codes) differ
 * only by what the network reads.
 */
import * as tf from "@tensorflow/tfjs"
import { denoise, expandToVideo, toSignal, type FlowObjectiveConfig } from "./RectifiedFlow.ts"
import type { CodeContext, VideoDiT } from "./VideoDiT.ts"

export interface DenoiseProbeOptions {
  readonly objective: FlowObjectiveConfig
  /** seeds ε (same seed → same noise) */
  readonly seed: number
  readonly context?: CodeContext | undefined
  /** [B, T, H, W, hintChannels] low-fi video in [−1, 1] for the control branch */
  readonly hint?: tf.Tensor | undefined
}

/** Mean absolute (l1) and squared (mse) error, both in [0, 1] pixel units. */
export interface FrameError {
  readonly l1: number
  readonly mse: number
}

/** Consumes `diff` (in [−1, 1] units). */
const errorOf = (diff: tf.Tensor): FrameError => {
  const [l1, mse] = tf.tidy(() => {
    const half = tf.div(diff, 2) // [−1, 1] → [0, 1] units
    return [tf.mean(tf.abs(half)).dataSync()[0]!, tf.mean(tf.square(half)).dataSync()[0]!]
  })
  diff.dispose()
  return { l1, mse }
}

/** x0_pred − x0 over the frames after the conditioning ones, as l1 and mse in [0, 1] units; `video` [B, T, H, W, C] in [−1, 1]. */
export const x0Error = (dit: VideoDiT, video: tf.Tensor, sigma: number, o: DenoiseProbeOptions): FrameError =>
  errorOf(tf.tidy(() => {
    const [b, t] = video.shape as [number, number, number, number, number]
    const k = o.objective.conditionFrames
    const signal = toSignal(video, o.objective)
    const eps = tf.randomNormal(video.shape, 0, 1, "float32", o.seed)
    const sigmaB = tf.fill([b], sigma)
    const xSigma = tf.add(signal, tf.mul(expandToVideo(sigmaB, video.shape), eps))
    const pred = denoise(dit.velocityNet(o.context, o.hint), xSigma, sigmaB, k > 0 ? video : undefined, o.objective)
    return tf.slice(tf.sub(pred, signal), [0, k], [-1, t - k]) // x0_pred − x0 = s_pred − s
  }))

/** The same error for "every frame equals the first frame" (the bar a denoiser must beat). */
export const repeatFirstFrameError = (video: tf.Tensor, conditionFrames = 1): FrameError =>
  errorOf(tf.tidy(() => {
    const t = video.shape[1]!
    const rest = tf.slice(video, [0, conditionFrames], [-1, t - conditionFrames])
    return tf.sub(rest, tf.slice(video, [0, 0], [-1, 1]))
  }))
