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
 *
 * Running statistics in training (issue 13): batch statistics make a clip's codes depend on its batch-mates;
 * the joint stage trains at batch 2 while tokenize/eval use the running averages, so the same clip got other
 * codes in training than at inference. For its last steps the warm-up switches the norm to its running
 * statistics in training too (`useRunningStatistics`, a buffer saved in the checkpoint), so every later stage
 * normalises a clip the same way in training and at inference. Training calls still move the running averages
 * (detached, momentum 0.99): frozen statistics let the latents drift into one FSQ cell again. Measured on
 * MiniCraft (test perplexity after 400 warm-up steps): batch statistics throughout 21, running statistics for
 * the last 15 % 10, frozen ones 6 — so the warm-up switches only after its last step.
 */
import * as tf from "@tensorflow/tfjs"
import { Initializers, Module, type InitContext, type Param } from "@vw2/nn"

export class LatentNorm extends Module {
  readonly runningMean: Param
  readonly runningVar: Param
  /** buffer [1]: 1 once training normalises with the running statistics too */
  readonly runningFlag: Param
  /** weight of the old running value per training step */
  readonly momentum: number
  readonly eps = 1e-5

  constructor(init: InitContext, queries: number, dim: number, momentum = 0.99) {
    super(init)
    this.momentum = momentum
    this.runningMean = this.param("running_mean", [queries, dim], Initializers.zeros, false)
    this.runningVar = this.param("running_var", [queries, dim], Initializers.ones, false)
    this.runningFlag = this.param("running_in_train", [1], Initializers.zeros, false)
  }

  get runningInTrain(): boolean {
    return this.runningFlag.v.dataSync()[0]! > 0.5
  }

  /** Alias of `runningInTrain` (the joint stage reads it). */
  get frozen(): boolean {
    return this.runningInTrain
  }

  /** From now on normalise with the running statistics in training too (they keep tracking the batches). */
  useRunningStatistics(): void {
    tf.tidy(() => this.runningFlag.v.assign(tf.ones([1])))
  }

  /**
   * z [B, J, N, dim] → standardised z. `train`: the running statistics move towards this batch's, and (until
   * `useRunningStatistics`) the batch's own statistics standardise it; otherwise the running ones do.
   */
  call(z: tf.Tensor4D, train: boolean): tf.Tensor4D {
    const useBatch = train && !this.runningInTrain
    return tf.tidy(() => {
      const m = train ? tf.moments(z, [0, 1]) : undefined
      const [mean, variance] = useBatch && m !== undefined ? [m.mean, m.variance] : [this.runningMean.v.clone(), this.runningVar.v.clone()] // values before this step's update
      const out = tf.div(tf.sub(z, mean), tf.sqrt(tf.add(variance, this.eps))) as tf.Tensor4D
      if (m !== undefined) {
        // the running statistics are buffers: updated from detached copies, never differentiated
        const [bm, bv] = [tf.tensor(m.mean.dataSync(), m.mean.shape), tf.tensor(m.variance.dataSync(), m.variance.shape)]
        this.runningMean.v.assign(tf.add(tf.mul(this.runningMean.v, this.momentum), tf.mul(bm, 1 - this.momentum)))
        this.runningVar.v.assign(tf.add(tf.mul(this.runningVar.v, this.momentum), tf.mul(bv, 1 - this.momentum)))
      }
      return out
    })
  }
}
