/**
 * Batch standardisation of the Q-Former's pre-quantisation latents z (ours, not the authors'; see
 * NOTES-collapse.md): in training each (query slot, code dimension) is standardised with the batch's
 * statistics over (clips, transitions), at inference with running averages of them, BatchNorm-style, no
 * affine. Per slot, because pooling the slots too lets the codes differ only between slots (one constant
 * code per slot, the same for every clip: measured on moving squares).
 *
 * Why: measured at the mini preset, the reconstruction gradient reaching the codes is nearly the same for
 * every clip before the decoder has learned to use them, and Adam turns that small common drift into steps
 * of lr size: z slides into FSQ's tanh saturation and to one value for all clips within ~50 steps (batch std
 * 0.28 → 0.03, one FSQ index), with or without rounding. Standardising keeps z spread over the FSQ grid
 * until the decoder learns to read it.
 */
import * as tf from "@tensorflow/tfjs"
import { Initializers, Module, type InitContext, type Param } from "@vw2/nn"

export class LatentNorm extends Module {
  readonly runningMean: Param
  readonly runningVar: Param
  /** weight of the old running value per training step */
  readonly momentum: number
  readonly eps = 1e-5

  constructor(init: InitContext, queries: number, dim: number, momentum = 0.99) {
    super(init)
    this.momentum = momentum
    this.runningMean = this.param("running_mean", [queries, dim], Initializers.zeros, false)
    this.runningVar = this.param("running_var", [queries, dim], Initializers.ones, false)
  }

  /** z [B, J, N, dim] → standardised z. `train`: batch statistics, and the running ones move towards them. */
  call(z: tf.Tensor4D, train: boolean): tf.Tensor4D {
    return tf.tidy(() => {
      const axes = [0, 1]
      let mean: tf.Tensor = this.runningMean.v
      let variance: tf.Tensor = this.runningVar.v
      if (train) {
        const m = tf.moments(z, axes)
        mean = m.mean
        variance = m.variance
        // the running statistics are buffers: updated from detached copies, never differentiated
        const [bm, bv] = [tf.tensor(m.mean.dataSync(), m.mean.shape), tf.tensor(m.variance.dataSync(), m.variance.shape)]
        this.runningMean.v.assign(tf.add(tf.mul(this.runningMean.v, this.momentum), tf.mul(bm, 1 - this.momentum)))
        this.runningVar.v.assign(tf.add(tf.mul(this.runningVar.v, this.momentum), tf.mul(bv, 1 - this.momentum)))
      }
      return tf.div(tf.sub(z, mean), tf.sqrt(tf.add(variance, this.eps))) as tf.Tensor4D
    })
  }
}
