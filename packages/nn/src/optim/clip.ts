/** Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_). */
import * as tf from "@tensorflow/tfjs"

/** Returns the clipped gradients (new tensors; inputs untouched) and the pre-clip global norm. */
export function clipByGlobalNorm(
  grads: ReadonlyMap<string, tf.Tensor>,
  maxNorm: number
): { grads: Map<string, tf.Tensor>; norm: number } {
  const norm = tf.tidy(() => {
    const squares = [...grads.values()].map((g) => tf.sum(tf.square(g)))
    return squares.length === 0 ? 0 : Math.sqrt(tf.addN(squares).dataSync()[0]!)
  })
  const scale = Number.isFinite(maxNorm) && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1
  const out = new Map<string, tf.Tensor>()
  for (const [k, g] of grads) out.set(k, scale === 1 ? tf.clone(g) : tf.tidy(() => tf.mul(g, scale)))
  return { grads: out, norm }
}
