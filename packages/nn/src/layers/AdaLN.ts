/**
 * Adaptive LayerNorm conditioning (DiT, Peebles & Xie 2023, "adaLN-Zero"): a conditioning vector is mapped
 * by SiLU → zero-initialised Linear to `chunks` vectors (shift, scale, gate, ...), so a block starts as identity.
 */
import * as tf from "@tensorflow/tfjs"
import { Module, type InitContext } from "../Module.ts"
import { silu } from "../ops.ts"
import { Linear } from "./Linear.ts"

export class AdaLNModulation extends Module {
  readonly chunks: number
  readonly dim: number
  readonly proj: Linear

  constructor(init: InitContext, condDim: number, dim: number, chunks: number) {
    super(init)
    this.chunks = chunks
    this.dim = dim
    this.proj = this.module("proj", new Linear(init, condDim, chunks * dim, { zeroInit: true }))
  }

  /** c [B, condDim] → `chunks` tensors [B, 1, dim] (broadcast over tokens). */
  call(c: tf.Tensor): tf.Tensor3D[] {
    return tf.tidy(() => {
      const y = tf.expandDims(this.proj.call(silu(c)), 1) // [B, 1, chunks·dim]
      return tf.split(y, this.chunks, 2) as tf.Tensor3D[]
    })
  }
}

/** x·(1 + scale) + shift */
export function modulate(x: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.add(tf.mul(x, tf.add(1, scale)), shift))
}
