/**
 * The disentangled objective (docs/paper.md "dLDM"; authors' main stage):
 *   loss = w_diff · diffusion + w_rec · reconstruction       (authors: w_diff = 10, w_rec = 1)
 * - reconstruction: L1 of the low-fi decoder's video (codes with straight-through gradient), as in warm-up;
 * - diffusion: rectified-flow loss of the DiT on the clip, first frame as condition, with
 *   · the codes (projected to the DiT's context width inside the DiT) as causal cross-attention context —
 *     the path by which the VDM teaches the codes dynamics;
 *   · the low-fi video as the ControlNet hint. Authors: decoded from *detached* codes, detached again,
 *     grayscale. Detaching and grayscale are the DiT's switches (dit.control.stopGradient/.grayscale);
 *     `hintFromDetachedCodes` is ours. Decoded from the first frame as at inference (see `hintOf`).
 * See docs/paper.md "dLDM" and "Facts from the authors' released code".
 */
import * as tf from "@tensorflow/tfjs"
import { codeVisibility, rectifiedFlowLoss, repeatFirstFrameError, x0Error, type FlowObjectiveConfig, type FrameError, type VideoDiT } from "@vw2/diffusion"
import { stopGradient } from "@vw2/nn"
import type { Dldm } from "../Dldm.ts"

export interface JointLossOptions {
  readonly diffusionWeight: number
  readonly reconstructionWeight: number
  /** decode the hint from stop-gradient codes (authors' code); matters only when the DiT does not detach the hint */
  readonly hintFromDetachedCodes: boolean
  /** give the DiT the codes as context (off isolates the ControlNet path, e.g. in the stop-gradient test) */
  readonly codeContext: boolean
  readonly objective: FlowObjectiveConfig
  /** seeds σ, ε and context dropout of this step */
  readonly seed: number
  /** draw the CFG context dropout (training) */
  readonly train: boolean
  /** probability of dropping the ControlNet hint for a training sample, so the codes must carry the motion there
   * (ours; authors: 0). Only drawn when `train` */
  readonly hintDropout?: number
  /** the ControlNet hint computed beforehand (`detachedHint`), used as is; omit to decode it inside the loss */
  readonly hint?: tf.Tensor | undefined
  /** extra diffusion-loss weight on pixels that differ from the first frame (by > 0.05 in a channel): weight
   * 1 + motionWeight there, 1 elsewhere (ours; authors: 0). Most pixels never move; their loss says nothing
   * about the codes */
  readonly motionWeight?: number
}

export interface JointLoss {
  readonly loss: tf.Scalar
  readonly diffusion: tf.Scalar
  readonly reconstruction: tf.Scalar
  readonly mse: tf.Scalar
}

/** video [B, T, H, W, 3] in [0, 1] → the joint loss and its parts (call inside a gradient scope). */
export function jointLoss(dldm: Dldm, dit: VideoDiT, video: tf.Tensor, o: JointLossOptions): JointLoss {
  return tf.tidy(() => {
    const f = dldm.forward(video, o.train)
    const reconstruction = dldm.reconstructionLoss(video, f.recon)
    const hint = !dit.config.control.enabled
      ? undefined
      : o.hint ?? hintOf(dldm, video, o.hintFromDetachedCodes ? stopGradient(f.codes) : f.codes)
    const context = o.codeContext ? { codes: f.codes, visibleFrom: codeVisibility(dldm.geo.transitions, dldm.config.temporalCompression) } : undefined
    const x0 = tf.sub(tf.mul(video, 2), 1)
    const elementWeight = (o.motionWeight ?? 0) > 0 ? motionWeights(video, o.motionWeight!) : undefined
    const parts = rectifiedFlowLoss(dit, x0, context, hint, {
      seed: o.seed,
      objective: o.objective,
      train: o.train,
      hintDropout: o.hintDropout ?? 0,
      ...(elementWeight !== undefined ? { elementWeight } : {})
    })
    const loss = tf.add(tf.mul(parts.loss, o.diffusionWeight), tf.mul(reconstruction, o.reconstructionWeight)) as tf.Scalar
    return { loss, diffusion: parts.loss, reconstruction, mse: parts.mse }
  })
}

/** video [B, T, H, W, 3] in [0, 1] → [B, T, H, W, 3] loss weights: 1 + `extra` where any channel differs from frame 0 by > 0.05. */
export function motionWeights(video: tf.Tensor, extra: number): tf.Tensor {
  return tf.tidy(() => {
    const t = video.shape[1]!
    const first = tf.slice(video, [0, 0, 0, 0, 0], [-1, 1, -1, -1, -1])
    const change = tf.max(tf.abs(tf.sub(video, tf.concat(new Array<tf.Tensor>(t).fill(first), 1))), 4, true) // [B, T, H, W, 1]
    const moved = tf.cast(tf.greater(change, 0.05), "float32")
    return tf.add(1, tf.mul(tf.concat([moved, moved, moved], 4), extra))
  })
}

/**
 * The ControlNet hint [B, T, H, W, 3] in [−1, 1]: the low-fi video decoded from the first frame and the codes,
 * as at inference (`decodeLowFi`). Not the reconstruction `forward` returns: a decoder that renders each
 * transition from the clip's true previous frame (teacher forcing) would hand the DiT the true frames in
 * training and only its own chained frames at inference.
 */
function hintOf(dldm: Dldm, video: tf.Tensor, codes: tf.Tensor4D): tf.Tensor {
  return tf.tidy(() => {
    const first = tf.slice(video, [0, 0, 0, 0, 0], [-1, 1, -1, -1, -1])
    return tf.sub(tf.mul(dldm.decodeLowFi(first, codes), 2), 1)
  })
}

/**
 * The hint for `jointLoss` when the DiT detaches it anyway (dit.control.stopGradient): the same value, computed
 * outside the gradient scope, so the backward pass does not run the low-fi decoder on zero gradients
 * (stop-gradient is an identity whose gradient is zero, and tfjs still differentiates what lies behind it).
 * `train` as in the loss. Undefined when the loss must decode it itself.
 */
export function detachedHint(dldm: Dldm, dit: VideoDiT, video: tf.Tensor, train: boolean): tf.Tensor | undefined {
  if (!dit.config.control.enabled || !dit.config.control.stopGradient) return undefined
  // with batch statistics the codes depend on the batch in training: decode inside the loss. Otherwise training
  // normalises with the running statistics as they were before this step, which is what inference mode reads now
  // (and inference mode does not move them a second time).
  if (train && dldm.latentNorm !== undefined && !dldm.latentNorm.frozen) return undefined
  return tf.tidy(() => hintOf(dldm, video, dldm.codesOf(video, false).codes))
}

/**
 * What the DiT gets out of the codes on clips it did not train on (issue 13 "VDM" check): its x0 error at
 * noise level σ with the full condition, with the codes dropped (hint kept: what the causal cross-attention
 * adds beyond the low-fi video), and with codes and hint dropped, against repeat-the-first-frame. Same noise
 * in every variant. Errors in [0, 1] pixel units (see @vw2/diffusion `x0Error`).
 */
export interface CodeUse {
  readonly full: FrameError
  readonly noCodes: FrameError
  readonly noCondition: FrameError
  readonly repeat: FrameError
}

/** video [B, T, H, W, 3] in [0, 1]; evaluation mode (no context dropout, running latent statistics). */
export function codeUse(dldm: Dldm, dit: VideoDiT, video: tf.Tensor, o: { objective: FlowObjectiveConfig; sigma: number; seed: number }): CodeUse {
  const f = dldm.forward(video, false)
  const x0 = tf.tidy(() => tf.sub(tf.mul(video, 2), 1))
  const hint = dit.config.control.enabled ? hintOf(dldm, video, f.codes) : undefined
  const context = { codes: f.codes, visibleFrom: codeVisibility(dldm.geo.transitions, dldm.config.temporalCompression) }
  try {
    const probe = { objective: o.objective, seed: o.seed }
    return {
      full: x0Error(dit, x0, o.sigma, { ...probe, context, hint }),
      noCodes: x0Error(dit, x0, o.sigma, { ...probe, hint }),
      noCondition: x0Error(dit, x0, o.sigma, probe),
      repeat: repeatFirstFrameError(x0, o.objective.conditionFrames)
    }
  } finally {
    for (const t of [f.features, f.codes, f.indices, f.latents, f.recon, x0, hint]) t?.dispose()
  }
}
