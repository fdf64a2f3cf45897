/**
 * defineNativeOp: a native op becomes a tfjs op with a kernel and gradient on `tensorflow` and a pure-tfjs
 * fallback elsewhere; both must give the same values and gradients. Exercised with Vw2AdamW's parameter
 * output, whose partial derivative w.r.t. the parameter (g, m, v held fixed) is the decay factor.
 */
import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { defineNativeOp, loadNativeOps, loadTfjsNode, nativeAttr, nativeOpAvailable, TFJS_NODE_BACKEND, vendoredTfjsNodePath } from "../src/index.ts"

const native = loadTfjsNode()
const wheelBuild = native.available && native.source.includes(vendoredTfjsNodePath)

const HYPER = [0.9, 0.1, 0.999, 0.001, 0.1, 0.001, 1e-8, 0.99, 0.01, 1] // adamw.cc `enum Hyper`, step 1, lr 0.01, wd 1, no clipping
const [b1, omb1, b2, omb2, bc1, bc2, eps, keep, lr] = HYPER as [number, number, number, number, number, number, number, number, number]

const adamwStep = defineNativeOp({
  name: "Vw2AdamW",
  inputs: ["p", "g", "m", "v", "hyper"],
  numOutputs: 3,
  attrs: () => [nativeAttr.int("N", 1), nativeAttr.bool("decay", [true])],
  fallback: ({ p, g, m, v }) => {
    const m2 = tf.add(tf.mul(m, b1), tf.mul(g, omb1))
    const v2 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), omb2))
    const step = tf.div(tf.div(m2, bc1), tf.add(tf.sqrt(tf.div(v2, bc2)), eps))
    return [tf.sub(tf.mul(p, keep), tf.mul(step, lr)), m2, v2]
  },
  gradient: {
    inputsToSave: ["p"],
    gradFunc: (dy) => ({ p: () => tf.mul((dy as Array<tf.Tensor>)[0]!, keep) })
  }
})

const run = () => {
  const p = tf.tensor2d([[1, -2, 3], [0.5, 0, -1]])
  const g = tf.tensor2d([[0.1, 0.2, -0.3], [1, -1, 0]])
  const z = tf.zerosLike(p)
  const hyper = tf.tensor1d(HYPER)
  const outputs = adamwStep({ p, g, m: z, v: z, hyper }).map((t) => Array.from(t.dataSync()))
  const weights = tf.tensor2d([[1, 2, 3], [4, 5, 6]])
  const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(adamwStep({ p: x, g, m: z, v: z, hyper })[0]!, weights)))(p)
  return { outputs, grad: Array.from(grad.dataSync()) }
}

describe.skipIf(!wheelBuild)("defineNativeOp", () => {
  it("runs the native kernel on tensorflow and the fallback on cpu, with the same values and gradients", async () => {
    const previous = tf.getBackend()
    try {
      await tf.setBackend(TFJS_NODE_BACKEND)
      expect(loadNativeOps().available).toBe(true)
      expect(nativeOpAvailable("Vw2AdamW")).toBe(true)
      const nativeRun = tf.tidy(run)
      await tf.setBackend("cpu")
      expect(nativeOpAvailable("Vw2AdamW")).toBe(false)
      const fallbackRun = tf.tidy(run)
      for (let k = 0; k < 3; k++) {
        nativeRun.outputs[k]!.forEach((x, i) => expect(x).toBeCloseTo(fallbackRun.outputs[k]![i]!, 6))
      }
      expect(nativeRun.grad).toEqual([1, 2, 3, 4, 5, 6].map((w) => Math.fround(w * keep)))
      fallbackRun.grad.forEach((x, i) => expect(x).toBeCloseTo(nativeRun.grad[i]!, 5))
    } finally {
      await tf.setBackend(previous)
    }
  })
})
