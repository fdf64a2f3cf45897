/** Affine map over the last axis: x [..., in] → [..., out]. Weight stored [in, out] (the transpose of PyTorch's). */
import * as tf from "@tensorflow/tfjs"
import { Initializers, Module, type InitContext, type Initializer, type Param } from "../Module.ts"
import { dense } from "./fused.ts"

export interface LinearOptions {
  readonly bias?: boolean
  /** Weight init; default truncated normal with std 1/√in. */
  readonly init?: Initializer
  /** Zero weight and bias (ControlNet outputs, AdaLN modulation, DiT final layer). */
  readonly zeroInit?: boolean
}

export class Linear extends Module {
  readonly inFeatures: number
  readonly outFeatures: number
  readonly weight: Param
  readonly bias: Param | undefined

  constructor(init: InitContext, inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super(init)
    this.inFeatures = inFeatures
    this.outFeatures = outFeatures
    const wInit = options.zeroInit === true ? Initializers.zeros : (options.init ?? Initializers.normal(1 / Math.sqrt(inFeatures)))
    this.weight = this.param("weight", [inFeatures, outFeatures], wInit)
    this.bias = options.bias === false ? undefined : this.param("bias", [outFeatures], Initializers.zeros)
  }

  /** x [..., in] → [..., out] */
  call(x: tf.Tensor): tf.Tensor {
    this.checkInput(x)
    return tf.tidy(() => dense(x, this.weight.v, this.bias?.v))
  }

  /** x·W without the bias, for callers that fuse the bias into the next op (Mlp: bias + GELU). */
  callWithoutBias(x: tf.Tensor): tf.Tensor {
    this.checkInput(x)
    return tf.tidy(() => dense(x, this.weight.v))
  }

  private checkInput(x: tf.Tensor): void {
    const last = x.shape[x.rank - 1]
    if (last !== this.inFeatures) throw new Error(`Linear: input last axis ${last} ≠ in_features ${this.inFeatures}`)
  }
}
