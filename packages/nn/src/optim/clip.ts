/** Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_). */
import * as tf from "@tensorflow/tfjs"
import { sumSquares, sumSquaresAvailable } from "@vw2/native"

/**
 * √(Σ over every gradient element of g²). One native op on the tensorflow backend (Vw2SumSquares); tfjs ops
 * elsewhere (2N+1 ops for N tensors).
 */
export function globalNorm(grads: ReadonlyMap<string, tf.Tensor>): number {
  if (grads.size === 0) return 0
  const squares = tf.tidy(() =>
    sumSquaresAvailable() ? sumSquares([...grads.values()]) : tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))
  )
  const value = squares.dataSync()[0]!
  squares.dispose()
  return Math.sqrt(value)
}

/** The factor clip_grad_norm_ multiplies gradients by: maxNorm / (norm + 1e-6) when the norm exceeds it, else 1. */
export const clipScale = (norm: number, maxNorm: number): number =>
  Number.isFinite(maxNorm) && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1

/** Returns the clipped gradients (new tensors; inputs untouched) and the pre-clip global norm. */
export function clipByGlobalNorm(
  grads: ReadonlyMap<string, tf.Tensor>,
  maxNorm: number
): { grads: Map<string, tf.Tensor>; norm: number } {
  const norm = globalNorm(grads)
  const scale = clipScale(norm, maxNorm)
  const out = new Map<string, tf.Tensor>()
  for (const [k, g] of grads) out.set(k, scale === 1 ? tf.clone(g) : tf.tidy(() => tf.mul(g, scale)))
  return { grads: out, norm }
}
