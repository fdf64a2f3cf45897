/**
 * The fused TensorFlow ops (packages/native/ops/fused) against the composite tfjs ops they replace, on the
 * `tensorflow` backend: forward values and gradients w.r.t. every input, odd sizes, rank 2–4, masks
 * (causal, per batch, a query with no allowed key), cross-attention lengths, and no leaked tensors.
 */
import * as tf from "@tensorflow/tfjs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadTfjsNode, vendoredTfjsNodePath } from "@vw2/native"
import { selectBackend } from "../src/backend/index.ts"
import { Init } from "../src/Module.ts"
import { MultiHeadAttention } from "../src/layers/Attention.ts"
import { biasGelu, dense, denseBlocks, fusedOpsActive, headMajorAttention, layerNorm, multiHeadAttentionCore, packedSelfAttention, setFusedOps } from "../src/layers/fused.ts"
import { Mlp } from "../src/layers/Mlp.ts"

// The op library is built against the wheel build of tfjs-node (infra/setup.d/40-, 41-); with that binding
// present the ops must load (the first test fails otherwise), without it there is nothing to compare.
const nativeLoad = loadTfjsNode()
const native =
  nativeLoad.available &&
  nativeLoad.source.includes(vendoredTfjsNodePath) &&
  (await selectBackend({ backend: "tensorflow" }).then(
    () => true,
    () => false
  ))

const normal = (shape: Array<number>, seed: number) => tf.randomNormal(shape, 0, 1, "float32", seed)

/** Values and gradients of sum(f(inputs)·w) w.r.t. every input, as plain arrays. */
const valueAndGrads = (f: (...xs: Array<tf.Tensor>) => tf.Tensor, inputs: Array<tf.Tensor>, seed: number): Array<Float32Array> =>
  tf.tidy(() => {
    const y = f(...inputs)
    const w = normal(y.shape, seed)
    const grads = tf.grads((...xs: Array<tf.Tensor>) => tf.sum(tf.mul(f(...xs), w)))(inputs)
    return [y, ...grads].map((t) => t.dataSync() as Float32Array)
  })

/** fused and composite (same backend) agree within 1e-4·max(1, |ref|∞) on values and every gradient */
const expectAgreement = (f: (...xs: Array<tf.Tensor>) => tf.Tensor, inputs: Array<tf.Tensor>, seed = 99) => {
  setFusedOps(true)
  expect(fusedOpsActive()).toBe(true)
  const fused = valueAndGrads(f, inputs, seed)
  setFusedOps(false)
  const composite = valueAndGrads(f, inputs, seed)
  setFusedOps(true)
  expect(fused.length).toBe(composite.length)
  fused.forEach((got, i) => {
    const want = composite[i]!
    expect(got.length).toBe(want.length)
    const scale = Math.max(1, ...Array.from(want, Math.abs))
    const worst = Math.max(0, ...Array.from(got, (g, j) => Math.abs(g - want[j]!)))
    expect(worst, `output ${i} (0 = value, then gradients by input)`).toBeLessThanOrEqual(1e-4 * scale)
    expect(Array.from(got).every(Number.isFinite)).toBe(true)
  })
  tf.dispose(inputs)
}

describe.skipIf(!native)("fused ops on the tensorflow backend agree with the composite tfjs ops", () => {
  beforeAll(() => setFusedOps(true))
  afterAll(() => setFusedOps(true))

  it("loads the op library", () => {
    expect(fusedOpsActive()).toBe(true)
  })

  it("layerNorm with affine, rank 3 and rank 4, odd widths", () => {
    expectAgreement((x, g, b) => layerNorm(x!, g, b), [normal([3, 5, 7], 1), normal([7], 2), normal([7], 3)])
    expectAgreement((x, g, b) => layerNorm(x!, g, b, 1e-6), [normal([2, 3, 4, 33], 4), normal([33], 5), normal([33], 6)])
    // many rows (several thread blocks for the parameter-gradient reduction), shifted mean
    expectAgreement((x, g, b) => layerNorm(tf.add(x!, 3), g, b), [normal([517, 48], 7), normal([48], 8), normal([48], 9)])
  })

  it("layerNorm without affine", () => {
    expectAgreement((x) => layerNorm(x!), [normal([37, 64], 10)])
    expectAgreement((x) => layerNorm(x!, undefined, undefined, 1e-6), [normal([2, 9, 1, 5], 11)])
  })

  it("biasGelu with and without bias", () => {
    expectAgreement((x, b) => biasGelu(tf.mul(x!, 3), b), [normal([4, 9, 130], 12), normal([130], 13)])
    expectAgreement((x) => biasGelu(tf.mul(x!, 3)), [normal([301, 17], 14)])
  })

  it("multi-head attention: no mask, causal mask, odd head width", () => {
    const qkv = () => [normal([2, 11, 15], 20), normal([2, 11, 15], 21), normal([2, 11, 15], 22)]
    expectAgreement((q, k, v) => multiHeadAttentionCore(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, 3), qkv())
    const causal = tf.cast(tf.linalg.bandPart(tf.ones([11, 11]), -1, 0), "bool")
    expectAgreement((q, k, v) => multiHeadAttentionCore(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, 3, causal), qkv())
    causal.dispose()
  })

  it("multi-head attention: cross lengths and a per-batch mask with a query that sees nothing", () => {
    const mask = tf.tensor3d(
      Array.from({ length: 2 * 5 * 7 }, (_, i) => (i >= 7 && i < 14 ? false : (i * 7) % 3 !== 0)),
      [2, 5, 7],
      "bool"
    )
    expectAgreement(
      (q, k, v) => multiHeadAttentionCore(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, 2, mask),
      [normal([2, 5, 8], 23), normal([2, 7, 8], 24), normal([2, 7, 8], 25)]
    )
    // the row with no allowed key outputs exactly zero
    const o = multiHeadAttentionCore(normal([2, 5, 8], 26) as tf.Tensor3D, normal([2, 7, 8], 27) as tf.Tensor3D, normal([2, 7, 8], 28) as tf.Tensor3D, 2, mask)
    expect(Array.from(o.slice([0, 1, 0], [1, 1, 8]).dataSync())).toEqual(new Array(8).fill(0))
    tf.dispose([o, mask])
  })

  it("head-major attention ([B, H, L, d], as a KV cache keeps it) with 2-D and per-batch masks", () => {
    const qkv = () => [normal([2, 3, 6, 4], 30), normal([2, 3, 9, 4], 31), normal([2, 3, 9, 4], 32)]
    const m2 = tf.cast(tf.linalg.bandPart(tf.ones([6, 9]), -1, 3), "bool")
    expectAgreement((q, k, v) => headMajorAttention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, m2), qkv())
    const m3 = tf.greater(normal([2, 6, 9], 33), -0.5)
    expectAgreement((q, k, v) => headMajorAttention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, m3), qkv())
    expectAgreement((q, k, v) => headMajorAttention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D), qkv())
    tf.dispose([m2, m3])
  })

  it("dense (Linear's kernel): rank 3 with bias, rank 2 without", () => {
    expectAgreement((x, w, b) => dense(x!, w!, b), [normal([3, 7, 10], 60), normal([10, 6], 61), normal([6], 62)])
    expectAgreement((x, w) => dense(x!, w!), [normal([9, 10], 63), normal([10, 5], 64)])
  })

  it("dense on shapes its op splits across threads (rows, dW by columns and by rows), rank 4, and no rows", () => {
    // ≥ 3·2^20 multiply-adds: the op shards dx by rows and dW by its longer axis; odd extents leave ragged parts
    expectAgreement((x, w, b) => dense(x!, w!, b), [normal([2, 3, 109, 64], 65), normal([64, 83], 66), normal([83], 67)])
    expectAgreement((x, w) => dense(x!, w!), [normal([651, 97], 68), normal([97, 51], 69)])
    expectAgreement((x, w, b) => dense(x!, w!, b), [normal([0, 8], 70), normal([8, 5], 71), normal([5], 72)])
  })

  it("denseBlocks (q | k | v weights as column blocks of one output), with and without biases, small and threaded", () => {
    expectAgreement((x, wq, wk, wv, bq, bk, bv) => denseBlocks(x!, [wq!, wk!, wv!], [bq!, bk!, bv!]), [
      normal([2, 5, 12], 73), normal([12, 4], 74), normal([12, 7], 75), normal([12, 4], 76), normal([4], 77), normal([7], 78), normal([4], 79)
    ])
    expectAgreement((x, w0, w1) => denseBlocks(x!, [w0!, w1!]), [normal([3, 211, 72], 80), normal([72, 90], 81), normal([72, 41], 82)])
  })

  it("packed self-attention (q | k | v in one [B, L, 3W] tensor), with and without a causal mask", () => {
    const causal = tf.cast(tf.linalg.bandPart(tf.ones([13, 13]), -1, 0), "bool")
    expectAgreement((qkv) => packedSelfAttention(qkv as tf.Tensor3D, 4, causal), [normal([3, 13, 3 * 20], 50)])
    expectAgreement((qkv) => packedSelfAttention(qkv as tf.Tensor3D, 2), [normal([2, 7, 3 * 6], 51)])
    causal.dispose()
  })

  it("MultiHeadAttention and Mlp modules: same output and parameter gradients fused (packed qkv) and composite", () => {
    const attn = new MultiHeadAttention(Init.seeded(3), 24, 4)
    const cross = new MultiHeadAttention(Init.seeded(4), 24, 3, { contextDim: 10 })
    const mlp = new Mlp(Init.seeded(5), 24, 40)
    const context = normal([2, 5, 10], 53)
    const mask = tf.cast(tf.linalg.bandPart(tf.ones([9, 9]), -1, 0), "bool")
    const params = [...attn.trainableVariables().values(), ...cross.trainableVariables().values(), ...mlp.trainableVariables().values()]
    const net = (x: tf.Tensor) => {
      const h = tf.add(x, attn.call(x as tf.Tensor3D, undefined, mask))
      return mlp.call(tf.add(h, cross.call(h as tf.Tensor3D, context)))
    }
    const x = normal([2, 9, 24], 52)
    const run = () =>
      tf.tidy(() => {
        const w = normal([2, 9, 24], 54)
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(net(x), w)) as tf.Scalar, params)
        return [value, ...params.map((p) => grads[p.name]!)].map((t) => t.dataSync() as Float32Array)
      })
    setFusedOps(true)
    const fused = run()
    setFusedOps(false)
    const composite = run()
    setFusedOps(true)
    fused.forEach((got, i) => {
      const want = composite[i]!
      const scale = Math.max(1, ...Array.from(want, Math.abs))
      expect(Math.max(0, ...Array.from(got, (g, j) => Math.abs(g - want[j]!))), `tensor ${i}`).toBeLessThanOrEqual(1e-4 * scale)
    })
    tf.dispose([x, context, mask])
    attn.dispose()
    cross.dispose()
    mlp.dispose()
  })

  it("head width 32, the widest the whole-attention op takes: causal and packed", () => {
    const causal = tf.cast(tf.linalg.bandPart(tf.ones([9, 9]), -1, 0), "bool")
    const qkv = () => [normal([2, 9, 64], 83), normal([2, 9, 64], 84), normal([2, 9, 64], 85)]
    expectAgreement((q, k, v) => multiHeadAttentionCore(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, 2, causal), qkv())
    expectAgreement((x) => packedSelfAttention(x as tf.Tensor3D, 2, causal), [normal([2, 9, 3 * 64], 86)])
    tf.dispose(causal)
  })

  it("wide heads (> 32: TF matmuls + the fused masked softmax): causal, per-batch with an empty row, packed, head-major", () => {
    const causal = tf.cast(tf.linalg.bandPart(tf.ones([9, 9]), -1, 0), "bool")
    const qkv = () => [normal([2, 9, 96], 70), normal([2, 9, 96], 71), normal([2, 9, 96], 72)]
    expectAgreement((q, k, v) => multiHeadAttentionCore(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, 2, causal), qkv())
    expectAgreement((q, k, v) => multiHeadAttentionCore(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, 2), qkv())
    const perBatch = tf.tensor3d(Array.from({ length: 2 * 9 * 9 }, (_, i) => (i >= 9 && i < 18 ? false : (i * 5) % 4 !== 0)), [2, 9, 9], "bool")
    expectAgreement((q, k, v) => multiHeadAttentionCore(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, 2, perBatch), qkv())
    expectAgreement((x) => packedSelfAttention(x as tf.Tensor3D, 2, causal), [normal([2, 9, 3 * 96], 73)])
    expectAgreement(
      (q, k, v) => headMajorAttention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, perBatch),
      [normal([2, 3, 9, 40], 74), normal([2, 3, 9, 40], 75), normal([2, 3, 9, 40], 76)]
    )
    tf.dispose([causal, perBatch])
  })

  it("leaks no tensors in forward + backward", () => {
    const inputs = [normal([4, 10, 16], 40), normal([16], 41), normal([16], 42), normal([16, 48], 43)]
    const mask = tf.cast(tf.linalg.bandPart(tf.ones([10, 10]), -1, 0), "bool")
    const loss = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, w: tf.Tensor) => {
      const h = layerNorm(x, g, b) as tf.Tensor3D
      const a = packedSelfAttention(dense(h, w) as tf.Tensor3D, 2, mask)
      return tf.sum(biasGelu(multiHeadAttentionCore(a, h, h, 4, mask), b))
    }
    const once = () => tf.tidy(() => tf.grads(loss as (...xs: Array<tf.Tensor>) => tf.Tensor)(inputs)).forEach((g) => g.dispose())
    once()
    const before = tf.memory().numTensors
    once()
    once()
    expect(tf.memory().numTensors).toBe(before)
    tf.dispose([...inputs, mask])
  })
})
