/**
 * Every fast backend must compute what the pure-JS cpu backend computes, within float32 tolerance, on the
 * ops our models train with: (batched) matmul, conv2d, softmax, layer norm, and their gradients, including
 * the kernels bridged back to cpu (gather's gradient UnsortedSegmentSum, conv2d's filter gradient on wasm).
 */
import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { loadTfjsNode, loadWasm, TFJS_NODE_BACKEND, WASM_BACKEND } from "../src/index.ts"

const native = loadTfjsNode()
const wasm = await loadWasm()

/** Deterministic inputs: tfjs's seeded normal draws the same values on every backend. */
const normal = (shape: Array<number>, seed: number) => tf.randomNormal(shape, 0, 1, "float32", seed)

const layerNorm = (x: tf.Tensor) => {
  const { mean, variance } = tf.moments(x, -1, true)
  return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)))
}

/** name → computation returning plain arrays; each runs on whichever backend is active. */
const cases: Record<string, () => Array<Float32Array | Int32Array | Uint8Array>> = {
  matmul: () => [tf.matMul(normal([64, 48], 1), normal([48, 32], 2)).dataSync() as Float32Array],
  "batched matmul, transposed": () => [
    tf.matMul(normal([4, 24, 16], 3), normal([4, 32, 24], 4), true, true).dataSync() as Float32Array
  ],
  "conv2d stride 2 same": () => [
    tf.conv2d(normal([2, 9, 9, 3], 5) as tf.Tensor4D, normal([3, 3, 3, 8], 6) as tf.Tensor4D, 2, "same")
      .dataSync() as Float32Array
  ],
  "softmax + layer norm": () => [
    tf.softmax(normal([8, 33], 7)).dataSync() as Float32Array,
    layerNorm(normal([8, 64], 8)).dataSync() as Float32Array
  ],
  "attention gradients": () => {
    // One attention head with a causal mask; gradients w.r.t. query, key and value projections.
    // tfjs 4.22's BatchMatMul gradient does not reduce a broadcast rank-2 weight, so project as 2-D.
    const x = normal([12, 16], 9)
    const heads = (w: tf.Tensor) => tf.matMul(x, w).reshape([2, 6, 16])
    const wq = normal([16, 16], 10), wk = normal([16, 16], 11), wv = normal([16, 16], 12)
    const mask = tf.linalg.bandPart(tf.ones([6, 6]), -1, 0)
    const loss = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => {
      const scores = tf.matMul(heads(q), heads(k), false, true).mul(0.25)
      const masked = tf.where(mask.cast("bool"), scores, tf.fill(scores.shape, -1e9))
      const out = tf.matMul(tf.softmax(masked), heads(v))
      return layerNorm(out).square().mean()
    }
    return tf.grads(loss)([wq, wk, wv]).map((g) => g.dataSync() as Float32Array)
  },
  "embedding gradient (gather → UnsortedSegmentSum)": () => {
    const table = normal([10, 8], 13)
    const ids = tf.tensor1d([3, 1, 3, 9, 0, 3], "int32")
    return [tf.grad((t: tf.Tensor) => tf.gather(t, ids).square().sum())(table).dataSync() as Float32Array]
  },
  "conv2d gradients (input and filter)": () => {
    const x = normal([2, 8, 8, 3], 14) as tf.Tensor4D
    const f = normal([3, 3, 3, 4], 15) as tf.Tensor4D
    const loss = (a: tf.Tensor, b: tf.Tensor) =>
      tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same").relu().square().sum()
    return tf.grads(loss)([x, f]).map((g) => g.dataSync() as Float32Array)
  }
}

const run = async (backend: string, compute: () => Array<Float32Array | Int32Array | Uint8Array>) => {
  await tf.setBackend(backend)
  expect(tf.getBackend()).toBe(backend)
  return tf.tidy(compute).map((a) => Array.from(a))
}

/** |a − b| ≤ 1e-4 · max(1, |reference|∞): float32 sums in a different order differ by far less. */
const expectClose = (actual: Array<Array<number>>, reference: Array<Array<number>>) => {
  expect(actual.length).toBe(reference.length)
  reference.forEach((ref, i) => {
    const got = actual[i]!
    expect(got.length).toBe(ref.length)
    const scale = Math.max(1, ...ref.map(Math.abs))
    const worst = Math.max(...ref.map((r, j) => Math.abs(r - got[j]!)))
    expect(worst).toBeLessThanOrEqual(1e-4 * scale)
  })
}

const fastBackends = [
  { name: TFJS_NODE_BACKEND, available: native.available, why: native.available ? "" : native.reason },
  { name: WASM_BACKEND, available: wasm.available, why: wasm.available ? "" : wasm.reason }
]

describe.each(fastBackends)("$name agrees with the pure-JS cpu backend", ({ name, available }) => {
  for (const [label, compute] of Object.entries(cases)) {
    it.skipIf(!available)(label, async () => {
      const reference = await run("cpu", compute)
      expect(reference.flat().some((v) => v !== 0)).toBe(true)
      expectClose(await run(name, compute), reference)
    })
  }
})

describe("availability", () => {
  it("the native backend is built wherever the setup script ran (CI)", () => {
    // CI runs infra/setup.d/40-native-tfjs.sh first; a silent skip there would hide a broken build.
    if (process.env["CI"] === "true") expect(native).toMatchObject({ available: true })
    if (native.available) expect(native.libtensorflow).toMatch(/^2\.\d+\.\d+/)
  })

  it("the wasm backend loads from npm with its missing training kernels bridged", () => {
    expect(wasm).toMatchObject({ available: true })
    if (wasm.available) expect(wasm.bridgedKernels).toContain("UnsortedSegmentSum")
  })
})
