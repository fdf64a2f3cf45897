/** Positional encodings: fixed sinusoidal (also for diffusion timesteps) and learned tables. */
import * as tf from "@tensorflow/tfjs"
import { Initializers, Module, type InitContext, type Param } from "../Module.ts"

/**
 * Sinusoidal embedding of (possibly fractional) positions: [L] → [L, dim], halves [cos | sin]
 * (the DiT/ADM timestep embedding, frequencies maxPeriod^(−i/half)).
 */
export function sinusoidalEmbedding(positions: tf.Tensor1D | ReadonlyArray<number>, dim: number, maxPeriod = 10000): tf.Tensor2D {
  return tf.tidy(() => {
    if (dim % 2 !== 0) throw new Error(`sinusoidalEmbedding: dim ${dim} must be even`)
    const pos = Array.isArray(positions) ? tf.tensor1d(positions as number[]) : (positions as tf.Tensor1D)
    const half = dim / 2
    const freqs = tf.exp(tf.mul(tf.range(0, half), -Math.log(maxPeriod) / half)) // [half]
    const args = tf.mul(tf.expandDims(tf.cast(pos, "float32"), 1), tf.expandDims(freqs, 0)) // [L, half]
    return tf.concat([tf.cos(args), tf.sin(args)], 1) as tf.Tensor2D
  })
}

/** A learned table [length, dim]; `call(n)` returns the first n rows. */
export class LearnedPositionalEmbedding extends Module {
  readonly length: number
  readonly weight: Param
  constructor(init: InitContext, length: number, dim: number, std = 0.02) {
    super(init)
    this.length = length
    this.weight = this.param("weight", [length, dim], Initializers.normal(std))
  }
  call(n: number = this.length): tf.Tensor2D {
    if (n > this.length) throw new Error(`LearnedPositionalEmbedding: asked for ${n} positions, table has ${this.length}`)
    return tf.tidy(() => tf.slice(this.weight.v, [0, 0], [n, -1]) as tf.Tensor2D)
  }
}
