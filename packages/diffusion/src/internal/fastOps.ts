/**
 * Row-wise reductions and normalisations written without broadcasting element-wise ops.
 *
 * Why: tfjs's pure-JS backend runs a broadcasting element-wise op (and the gradient of `sum`/`mean`, which
 * broadcasts) ~5–10× slower than a same-shape one, and `tile`'s gradient is a loop of slices. Expanding a
 * per-row value with a rank-1 matmul against ones, and summing rows with a matmul, keeps forward and
 * backward on fast kernels on every backend. Values are identical to the broadcasting formulas.
 */
import * as tf from "@tensorflow/tfjs"
import { fusedOpsActive, headMajorAttention, layerNorm, stopGradient } from "@vw2/nn"

/** [N, 1] → [N, L] */
export const expandRows = (v: tf.Tensor, length: number): tf.Tensor => tf.matMul(v as tf.Tensor2D, tf.ones([1, length]))

/** [N, L] → [N, 1] row sums */
export const rowSum = (x: tf.Tensor): tf.Tensor => tf.matMul(x as tf.Tensor2D, tf.ones([x.shape[1]!, 1]))

/** softmax over the last axis */
export const softmaxLastAxis = (x: tf.Tensor): tf.Tensor =>
  tf.tidy(() => {
    const l = x.shape[x.rank - 1]!
    const flat = tf.reshape(x, [-1, l])
    // the max only stabilises exp; softmax does not depend on it, so no gradient flows through it
    const shifted = tf.sub(flat, expandRows(stopGradient(tf.max(flat, -1, true)), l))
    const e = tf.exp(shifted)
    return tf.reshape(tf.mul(e, expandRows(tf.reciprocal(rowSum(e)), l)), x.shape)
  })

/** LayerNorm over the last axis without affine parameters */
export const layerNormNoAffine = (x: tf.Tensor, eps = 1e-6): tf.Tensor =>
  // on the tensorflow backend @vw2/nn's fused LayerNorm op (one op each way) beats the matmul formulation
  fusedOpsActive() ? layerNorm(x, undefined, undefined, eps) : tf.tidy(() => {
    const d = x.shape[x.rank - 1]!
    const flat = tf.reshape(x, [-1, d])
    const centred = tf.sub(flat, expandRows(tf.div(rowSum(flat), d), d))
    const inv = tf.rsqrt(tf.add(tf.div(rowSum(tf.square(centred)), d), eps))
    return tf.reshape(tf.mul(centred, expandRows(inv, d)), x.shape)
  })

/** RMSNorm over the last axis with a [D] scale (the weight of an @vw2/nn RMSNorm) */
export const rmsNorm = (x: tf.Tensor, weight: tf.Tensor, eps = 1e-6): tf.Tensor =>
  tf.tidy(() => {
    const d = x.shape[x.rank - 1]!
    const flat = tf.reshape(x, [-1, d])
    const n = flat.shape[0]!
    const inv = tf.rsqrt(tf.add(tf.div(rowSum(tf.square(flat)), d), eps))
    const scale = tf.matMul(tf.ones([n, 1]), tf.reshape(weight, [1, d])) // weight repeated per row
    return tf.reshape(tf.mul(tf.mul(flat, expandRows(inv, d)), scale), x.shape)
  })

/**
 * softmax(q kᵀ/√d + mask) v with q [B, H, Lq, d], k/v [B, H, Lk, d], mask bool [Lq, Lk] | [B, Lq, Lk]
 * (true = may attend; a row with nothing allowed outputs zeros, as @vw2/nn's attention).
 */
export const attention = (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask?: tf.Tensor): tf.Tensor4D =>
  // on the tensorflow backend @vw2/nn's fused attention op (same semantics, one op each way)
  fusedOpsActive() ? headMajorAttention(q, k, v, mask) : tf.tidy(() => {
    const [b, h, lq, d] = q.shape
    const lk = k.shape[2]
    let scores: tf.Tensor = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)) // [B, H, Lq, Lk]
    if (mask === undefined) return tf.matMul(softmaxLastAxis(scores), v) as tf.Tensor4D
    const m = mask.rank === 2 ? tf.reshape(mask, [1, 1, lq, lk]) : tf.expandDims(mask, 1)
    if (m.shape[2] !== lq || m.shape[3] !== lk) throw new Error(`attention mask [${mask.shape.join(", ")}] must be [${lq}, ${lk}] or [B, ${lq}, ${lk}]`)
    const allowed = tf.tile(tf.cast(m, "float32"), [m.shape[0] === 1 ? b : 1, h, 1, 1]) // constant: tiling costs no gradient
    scores = tf.add(scores, tf.mul(tf.sub(1, allowed), -1e9))
    return tf.matMul(tf.mul(softmaxLastAxis(scores), allowed), v) as tf.Tensor4D
  })
