/** Transformer feed-forward: Linear → GELU → Linear. */
import * as tf from "@tensorflow/tfjs"
import { Module, type InitContext } from "../Module.ts"
import { biasGelu } from "./fused.ts"
import { Linear } from "./Linear.ts"

export class Mlp extends Module {
  readonly fc1: Linear
  readonly fc2: Linear

  constructor(init: InitContext, dim: number, hidden: number, outDim: number = dim) {
    super(init)
    this.fc1 = this.module("fc1", new Linear(init, dim, hidden))
    this.fc2 = this.module("fc2", new Linear(init, hidden, outDim))
  }

  /** x [..., dim] → [..., outDim] */
  call(x: tf.Tensor): tf.Tensor {
    // fc1's bias is added inside the (fused, on tensorflow) GELU: one op instead of two, both directions
    return tf.tidy(() => this.fc2.call(biasGelu(this.fc1.callWithoutBias(x), this.fc1.bias?.v)))
  }
}
