import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { stopGradient } from "../src/index.ts"

describe("stopGradient", () => {
  it("is the identity forward and has exactly zero gradient backward", () => {
    const x = tf.tensor1d([0.5, -2, 3])
    expect(Array.from(stopGradient(x).dataSync())).toEqual([0.5, -2, 3])
    // f(x) = x² + 3·sg(x)²  → df/dx = 2x only
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.add(tf.square(v), tf.mul(3, tf.square(stopGradient(v))))))(x)
    expect(Array.from(g.dataSync())).toEqual([1, -4, 6])
    // purely through the stop-gradient path: exactly zero everywhere
    const g0 = tf.grad((v: tf.Tensor) => tf.sum(tf.exp(stopGradient(tf.mul(v, 2)))))(x)
    expect(Array.from(g0.dataSync())).toEqual([0, 0, 0])
  })
})
