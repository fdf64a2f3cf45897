import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { gatherRows } from "../src/internal/gatherRows.ts"

await tf.setBackend("cpu")

describe("gatherRows", () => {
  it("matches tf.gather in value and gradient, repeated ids included", () => {
    const table = tf.tensor2d(Float32Array.from({ length: 5 * 3 }, (_, i) => Math.sin(i)), [5, 3])
    const ids = Int32Array.from([4, 0, 4, 2])
    const weights = tf.tensor2d(Float32Array.from({ length: 4 * 3 }, (_, i) => i - 5), [4, 3])
    const loss = (f: (t: tf.Tensor2D) => tf.Tensor) => (t: tf.Tensor) => tf.sum(tf.mul(f(t as tf.Tensor2D), weights))
    expect(gatherRows(table, ids).arraySync()).toEqual(tf.gather(table, tf.tensor1d(ids, "int32")).arraySync())
    const ours = tf.grad(loss((t) => gatherRows(t, ids)))(table).arraySync()
    const reference = tf.grad(loss((t) => tf.gather(t, tf.tensor1d(ids, "int32"))))(table).arraySync()
    expect(ours).toEqual(reference)
  })
})
