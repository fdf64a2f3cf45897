/**
 * The disentangled objective (PAPER.md "dLDM"; authors' main stage):
 *   loss = w_diff · diffusion + w_rec · reconstruction       (authors: w_diff = 10, w_rec = 1)
 * - reconstruction: L1 of the low-fi decoder's video (codes with straight-through gradient), as in warm-up;
 * - diffusion: rectified-flow loss of the DiT on the clip, first frame as condition, with
 *   · the codes (projected to the DiT's context width inside the DiT) as causal cross-attention context —
 *     the path by which the VDM teaches the codes dynamics;
 *   · the low-fi reconstruction as the ControlNet hint. Authors: decoded from *detached* codes, detached
 *     again, grayscale. Detaching and grayscale are the DiT's switches (dit.control.stopGradient/.grayscale);
 *     `hintFromDetachedCodes` is ours.
 */
import * as tf from "@tensorflow/tfjs"
import { codeVisibility, rectifiedFlowLoss, type FlowObjectiveConfig, type VideoDiT } from "@vw2/diffusion"
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
    const useHint = dit.config.control.enabled
    let hint: tf.Tensor | undefined
    if (useHint) {
      // When the DiT detaches the hint anyway, the detached-codes decode has the same value: reuse f.recon.
      const separate = o.hintFromDetachedCodes && !dit.config.control.stopGradient
      const low = separate ? decodeFromDetachedCodes(dldm, f.features, f.codes, video) : f.recon
      hint = tf.sub(tf.mul(low, 2), 1) // [0,1] → [−1,1]
    }
    const context = o.codeContext ? { codes: f.codes, visibleFrom: codeVisibility(dldm.geo.transitions, dldm.config.temporalCompression) } : undefined
    const x0 = tf.sub(tf.mul(video, 2), 1)
    const parts = rectifiedFlowLoss(dit, x0, context, hint, { seed: o.seed, objective: o.objective, train: o.train })
    const loss = tf.add(tf.mul(parts.loss, o.diffusionWeight), tf.mul(reconstruction, o.reconstructionWeight)) as tf.Scalar
    return { loss, diffusion: parts.loss, reconstruction, mse: parts.mse }
  })
}

function decodeFromDetachedCodes(dldm: Dldm, features: tf.Tensor4D, codes: tf.Tensor4D, video: tf.Tensor): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, , s, d] = features.shape
    const f0 = tf.reshape(tf.slice(features, [0, 0, 0, 0], [b, 1, s, d]), [b, s, d]) as tf.Tensor3D
    return dldm.toVideo(dldm.decoder.call(f0, stopGradient(codes)), video)
  })
}
