/** LayerNorm and RMSNorm over the last axis. */
import * as tf from "@tensorflow/tfjs"
import { Initializers, Module, type InitContext, type Param } from "../Module.ts"
import { layerNorm } from "./fused.ts"

export interface NormOptions {
  /** Learnable scale (and shift for LayerNorm); false for AdaLN-modulated norms. */
  readonly affine?: boolean
  readonly eps?: number
}

export class LayerNorm extends Module {
  readonly dim: number
  readonly eps: number
  readonly weight: Param | undefined
  readonly bias: Param | undefined

  constructor(init: InitContext, dim: number, options: NormOptions = {}) {
    super(init)
    this.dim = dim
    this.eps = options.eps ?? 1e-5
    const affine = options.affine ?? true
    this.weight = affine ? this.param("weight", [dim], Initializers.ones) : undefined
    this.bias = affine ? this.param("bias", [dim], Initializers.zeros) : undefined
  }

  /** x [..., dim] → [..., dim] */
  call(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => layerNorm(x, this.weight?.v, this.bias?.v, this.eps))
  }
}

export class RMSNorm extends Module {
  readonly dim: number
  readonly eps: number
  readonly weight: Param | undefined

  constructor(init: InitContext, dim: number, options: NormOptions = {}) {
    super(init)
    this.dim = dim
    this.eps = options.eps ?? 1e-6
    this.weight = (options.affine ?? true) ? this.param("weight", [dim], Initializers.ones) : undefined
  }

  /** x [..., dim] → [..., dim] */
  call(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const ms = tf.mean(tf.square(x), -1, true)
      const y = tf.mul(x, tf.rsqrt(tf.add(ms, this.eps)))
      return this.weight !== undefined ? tf.mul(y, this.weight.v) : y
    })
  }
}
