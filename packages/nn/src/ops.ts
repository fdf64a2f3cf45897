/**
 * Differentiable ops tfjs lacks: GELU, SiLU, stop-gradient (detach), L1.
 */
import * as tf from "@tensorflow/tfjs"
import { biasGelu } from "./layers/fused.ts"

/** GELU, tanh approximation (GPT-2 / DiT); one fused op on the tensorflow backend (layers/fused.ts). */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => biasGelu(x) as T)
}

/** SiLU / swish: x·σ(x). */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)) as T)
}

/**
 * Identity in the forward pass, exactly zero gradient in the backward pass (PyTorch's `.detach()`).
 * tfjs has no public stop-gradient op, so this is a custom gradient returning zeros.
 */
const detach = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy)
})) as unknown as Parameters<typeof tf.customGrad>[0])

export function stopGradient<T extends tf.Tensor>(x: T): T {
  return detach(x) as T
}

/** Mean absolute error. */
export function l1Loss(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(a, b))) as tf.Scalar)
}

/** Mean squared error. */
export function mseLoss(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.square(tf.sub(a, b))) as tf.Scalar)
}

/** RGB → luma (ITU-R BT.601), keeping a 3-channel layout so it can stand in for an RGB hint. Last axis = 3. */
export function grayscale(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const w = tf.tensor1d([0.299, 0.587, 0.114])
    const y = tf.sum(tf.mul(x, w), -1, true)
    return tf.tile(y, [...new Array(x.rank - 1).fill(1), 3])
  })
}
