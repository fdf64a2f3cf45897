/**
 * AR training: next-token cross-entropy over the code stream (only the current clip's codes and its
 * terminator carry loss, see CodeStream.ts), AdamW with linear warm-up + cosine decay (paper: lr 3e-4,
 * wd 0.05, betas (0.9, 0.98)).
 */
import * as tf from "@tensorflow/tfjs"
import type { ArInputs, ArTransformer } from "./ArTransformer.ts"
import { outputVocab } from "./ArConfig.ts"

export interface ArBatch {
  /** [B, maxTextTokens] */
  readonly text: Int32Array
  /** [B, H, W, 3] in [0, 1] */
  readonly frames: Float32Array
  /** [B, S] */
  readonly stream: Int32Array
  /** [B, S], −1 = no loss */
  readonly targets: Int32Array
  readonly batch: number
  readonly streamLength: number
}

/** Mean cross-entropy over positions with a target. logits [B, S, V], targets [B, S] (−1 = ignored). */
export const maskedCrossEntropy = (logits: tf.Tensor3D, targets: tf.Tensor2D, vocab: number): tf.Scalar =>
  tf.tidy(() => {
    const valid = tf.cast(tf.greaterEqual(targets, 0), "float32") // [B, S]
    const safe = tf.maximum(targets, 0)
    const logProbs = tf.logSoftmax(logits) // [B, S, V]
    const picked = tf.sum(tf.mul(logProbs, tf.oneHot(tf.cast(safe, "int32"), vocab)), -1) // [B, S]
    const count = tf.maximum(tf.sum(valid), 1)
    return tf.div(tf.neg(tf.sum(tf.mul(picked, valid))), count) as tf.Scalar
  })

/** A batch's instruction tokens, start frames and code streams as the model's input tensors. */
export const batchInputs = (model: ArTransformer, batch: ArBatch): ArInputs => {
  const { height, width, maxTextTokens } = model.arch
  return {
    text: tf.tensor2d(batch.text, [batch.batch, maxTextTokens], "int32"),
    frame: tf.tensor4d(batch.frames, [batch.batch, height, width, 3]),
    stream: tf.tensor2d(batch.stream, [batch.batch, batch.streamLength], "int32")
  }
}

/** The flat stream positions that carry a target ([B·S] row indices) and their targets. */
export const targetPositions = (batch: ArBatch): { rows: Array<number>; targets: Array<number> } => {
  const rows: Array<number> = []
  const targets: Array<number> = []
  batch.targets.forEach((t, i) => {
    if (t >= 0) {
      rows.push(i)
      targets.push(t)
    }
  })
  return { rows, targets }
}

/** Mean next-token cross-entropy over the batch's target positions (logits computed there only). */
export const batchLoss = (model: ArTransformer, batch: ArBatch): tf.Scalar =>
  tf.tidy(() => {
    const { codeVocab } = model.arch
    const { rows, targets } = targetPositions(batch)
    if (rows.length === 0) throw new Error("ar batch has no target positions")
    const logits = model.logitsAt(batchInputs(model, batch), Int32Array.from(rows))
    const vocab = outputVocab(codeVocab)
    const logProbs = tf.logSoftmax(logits) // [R, V]
    return tf.neg(tf.mean(tf.sum(tf.mul(logProbs, tf.oneHot(tf.tensor1d(targets, "int32"), vocab)), -1))) as tf.Scalar
  })
