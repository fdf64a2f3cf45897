/** Transformer feed-forward: Linear → GELU → Linear. */
import * as tf from "@tensorflow/tfjs"
import { Module, type InitContext } from "../Module.ts"
import { gelu } from "../ops.ts"
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
    return tf.tidy(() => this.fc2.call(gelu(this.fc1.call(x))))
  }
}
