import * as tf from "@tensorflow/tfjs"
import { causalMask, scaledDotProductAttention } from "@vw2/nn"
import { describe, expect, it } from "vitest"
import { attention, layerNormNoAffine, rmsNorm, softmaxLastAxis } from "../src/internal/fastOps.ts"
import { maxAbsDiff } from "./support.ts"

describe("broadcast-free ops", () => {
  const x = tf.randomNormal([2, 3, 5, 8], 0, 2, "float32", 1)
  it("match the broadcasting reference values and gradients", () => {
    expect(maxAbsDiff(softmaxLastAxis(x), tf.softmax(x))).toBeLessThan(1e-6)
    const { mean, variance } = tf.moments(x, -1, true)
    expect(maxAbsDiff(layerNormNoAffine(x), tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-6))))).toBeLessThan(1e-5)
    const w = tf.randomNormal([8], 1, 0.1, "float32", 2)
    const ref = tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))), w)
    expect(maxAbsDiff(rmsNorm(x, w), ref)).toBeLessThan(1e-5)
    const probe = tf.randomNormal(x.shape, 0, 1, "float32", 3)
    const g = (f: (t: tf.Tensor) => tf.Tensor) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), probe)))(x)
    expect(maxAbsDiff(g(softmaxLastAxis), g(tf.softmax))).toBeLessThan(1e-5)
    expect(maxAbsDiff(g(layerNormNoAffine), g((t) => tf.div(tf.sub(t, tf.mean(t, -1, true)), tf.sqrt(tf.add(tf.moments(t, -1, true).variance, 1e-6)))))).toBeLessThan(1e-4)
  })
  it("attention equals @vw2/nn's, masked rows included (a row that sees nothing outputs zero)", () => {
    const [q, k, v] = [4, 5, 6].map((s) => tf.randomNormal([2, 3, 4, 8], 0, 1, "float32", s) as tf.Tensor4D) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D]
    expect(maxAbsDiff(attention(q, k, v), scaledDotProductAttention(q, k, v))).toBeLessThan(1e-5)
    const causal = causalMask(4)
    expect(maxAbsDiff(attention(q, k, v, causal), scaledDotProductAttention(q, k, v, causal))).toBeLessThan(1e-5)
    const none = tf.tensor2d([[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], [4, 4], "bool")
    const out = attention(q, k, v, none)
    expect(tf.max(tf.abs(tf.slice(out, [0, 0, 0, 0], [-1, -1, 1, -1]))).dataSync()[0]).toBe(0)
    expect(maxAbsDiff(out, scaledDotProductAttention(q, k, v, none))).toBeLessThan(1e-5)
  })
})
