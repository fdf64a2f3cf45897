import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import {
  AdamW,
  CausalTemporalAttention,
  CausalTemporalConv,
  Init,
  LayerNorm,
  Linear,
  Mlp,
  MultiHeadAttention,
  RMSNorm,
  SpatialAttention,
  AdaLNModulation,
  blockCausalMask,
  causalMask,
  haarPatchMatrix,
  haarPatches,
  inverseHaarPatches,
  maskFrom,
  mseLoss,
  patchify,
  sinusoidalEmbedding,
  trainStep,
  unpatchify
} from "../src/index.ts"

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!)

describe("Linear / norms / MLP", () => {
  it("have the documented shapes and normalise", () => {
    const init = Init.seeded(3)
    const lin = new Linear(init, 6, 5)
    const ln = new LayerNorm(init, 5)
    const rms = new RMSNorm(init, 5)
    const mlp = new Mlp(init, 5, 20)
    const x = tf.randomNormal([2, 3, 6], 0, 1, "float32", 1)
    const y = lin.call(x)
    expect(y.shape).toEqual([2, 3, 5])
    const n = ln.call(tf.add(tf.mul(y, 10), 3))
    const { mean, variance } = tf.moments(n, -1)
    expect(Math.max(...Array.from(tf.abs(mean).dataSync()))).toBeLessThan(1e-5)
    expect(Math.max(...Array.from(tf.abs(tf.sub(variance, 1)).dataSync()))).toBeLessThan(1e-3)
    const r = rms.call(y)
    const ms = tf.mean(tf.square(r), -1).dataSync()
    for (const v of ms) expect(v).toBeCloseTo(1, 3)
    expect(mlp.call(y).shape).toEqual([2, 3, 5])
    for (const m of [lin, ln, rms, mlp]) m.dispose()
  })

  it("trains: one AdamW step lowers the loss of a regression, and a step leaks no tensor", () => {
    const mlp = new Mlp(Init.seeded(5), 4, 16, 2)
    const x = tf.randomNormal([32, 4], 0, 1, "float32", 2)
    const target = tf.randomNormal([32, 2], 0, 1, "float32", 3)
    const opt = new AdamW({ lr: 1e-2, weightDecay: 0 })
    const vars = mlp.trainableVariables()
    const step = () => trainStep({ variables: vars, optimizer: opt, lossFn: () => mseLoss(mlp.call(x), target) })
    const first = step().loss // warm-up step creates the optimizer state
    const before = tf.memory().numTensors
    let last = first
    for (let i = 0; i < 20; i++) last = step().loss
    expect(tf.memory().numTensors).toBe(before)
    expect(last).toBeLessThan(first * 0.8)
    opt.dispose()
    mlp.dispose()
  })
})

describe("MultiHeadAttention", () => {
  const dim = 8
  it("self- and cross-attention shapes", () => {
    const attn = new MultiHeadAttention(Init.seeded(1), dim, 2, { contextDim: 6 })
    const x = tf.randomNormal([2, 5, dim], 0, 1, "float32", 1)
    const ctx = tf.randomNormal([2, 7, 6], 0, 1, "float32", 2)
    expect(attn.call(x, ctx).shape).toEqual([2, 5, dim])
    attn.dispose()
  })

  it("causal mask: perturbing future tokens leaves past outputs unchanged (and changes the future)", () => {
    const attn = new MultiHeadAttention(Init.seeded(2), dim, 2)
    const x = tf.randomNormal([1, 6, dim], 0, 1, "float32", 3)
    const noise = tf.concat([tf.zeros([1, 4, dim]), tf.randomNormal([1, 2, dim], 0, 5, "float32", 4)], 1)
    const mask = causalMask(6)
    const a = attn.call(x, undefined, mask)
    const b = attn.call(tf.add(x, noise), undefined, mask)
    expect(maxAbsDiff(a.slice([0, 0, 0], [1, 4, dim]), b.slice([0, 0, 0], [1, 4, dim]))).toBe(0)
    expect(maxAbsDiff(a.slice([0, 4, 0], [1, 2, dim]), b.slice([0, 4, 0], [1, 2, dim]))).toBeGreaterThan(1e-3)
    // without the mask, the past does see the future
    const c = attn.call(x)
    const d = attn.call(tf.add(x, noise))
    expect(maxAbsDiff(c.slice([0, 0, 0], [1, 4, dim]), d.slice([0, 0, 0], [1, 4, dim]))).toBeGreaterThan(1e-4)
    attn.dispose()
  })

  it("block-causal mask: tokens of block k see blocks ≤ k only", () => {
    const m = (blockCausalMask(3, 2).arraySync() as number[][]).map((r) => r.map(Boolean))
    expect(m[1]).toEqual([true, true, false, false, false, false])
    expect(m[2]).toEqual([true, true, true, true, false, false])
    const attn = new MultiHeadAttention(Init.seeded(4), dim, 2)
    const x = tf.randomNormal([1, 6, dim], 0, 1, "float32", 5)
    const noise = tf.concat([tf.zeros([1, 4, dim]), tf.ones([1, 2, dim])], 1)
    const mask = blockCausalMask(3, 2)
    const a = attn.call(x, undefined, mask)
    const b = attn.call(tf.add(x, noise), undefined, mask)
    expect(maxAbsDiff(a.slice([0, 0, 0], [1, 4, dim]), b.slice([0, 0, 0], [1, 4, dim]))).toBe(0)
    attn.dispose()
  })

  it("a query with no allowed key outputs exactly the output bias (zero attention)", () => {
    const attn = new MultiHeadAttention(Init.seeded(6), dim, 2)
    const x = tf.randomNormal([1, 3, dim], 0, 1, "float32", 7)
    const mask = maskFrom(3, 3, (q, k) => q > 0 && k < q)
    const y = attn.call(x, undefined, mask)
    expect(maxAbsDiff(y.slice([0, 0, 0], [1, 1, dim]), tf.reshape(attn.wo.bias!.v, [1, 1, dim]))).toBe(0)
    attn.dispose()
  })
})

describe("video layers", () => {
  it("patchify/unpatchify round-trip exactly and order patches (pt, y, x, c)", () => {
    const x = tf.randomUniform([2, 4, 8, 12, 3], 0, 1, "float32", 1)
    const p = { t: 2, s: 4 }
    const tokens = patchify(x, p)
    expect(tokens.shape).toEqual([2, 2, 6, 96])
    // token (frame-group 1, row 1, col 2), patch element (t=1, y=3, x=0, c=2)
    const expected = x.slice([0, 3, 7, 8, 2], [1, 1, 1, 1, 1]).dataSync()[0]
    const got = tokens.slice([0, 1, 1 * 3 + 2, ((1 * 4 + 3) * 4 + 0) * 3 + 2], [1, 1, 1, 1]).dataSync()[0]
    expect(got).toBe(expected)
    expect(maxAbsDiff(unpatchify(tokens, p, { rows: 2, cols: 3, channels: 3 }), x)).toBe(0)
  })

  it("3D Haar patch transform is orthonormal with a DC row", () => {
    const m = haarPatchMatrix({ t: 2, s: 2 }, 3) // [24, 24]
    expect(maxAbsDiff(tf.matMul(m, m, true, false), tf.eye(24))).toBeLessThan(1e-6)
    // constant patch → only the DC coefficient per channel is non-zero
    const constant = tf.ones([1, 24])
    const coeffs = tf.matMul(constant, m).dataSync()
    const nonzero = Array.from(coeffs).filter((v) => Math.abs(v) > 1e-5)
    expect(nonzero.length).toBe(3)
  })

  it("fast Haar patches equal the matrix transform and invert exactly", () => {
    const p = { t: 2, s: 4 }
    const x = tf.randomNormal([5, 96], 0, 1, "float32", 3)
    const fast = haarPatches(x, p, 3)
    expect(maxAbsDiff(fast, tf.matMul(x, haarPatchMatrix(p, 3)))).toBeLessThan(1e-5)
    expect(maxAbsDiff(inverseHaarPatches(fast, p, 3), x)).toBeLessThan(1e-5)
  })

  it("causal temporal attention and convolution: frames ≤ t ignore perturbations after t", () => {
    const init = Init.seeded(9)
    const layers = [new CausalTemporalAttention(init, 8, 2), new CausalTemporalConv(init, 8, 8, 3)]
    const x = tf.randomNormal([2, 5, 3, 8], 0, 1, "float32", 2)
    const noise = tf.concat([tf.zeros([2, 3, 3, 8]), tf.randomNormal([2, 2, 3, 8], 0, 3, "float32", 3)], 1)
    for (const layer of layers) {
      const a = layer.call(x)
      const b = layer.call(tf.add(x, noise))
      expect(a.shape).toEqual([2, 5, 3, 8])
      expect(maxAbsDiff(a.slice([0, 0, 0, 0], [2, 3, 3, 8]), b.slice([0, 0, 0, 0], [2, 3, 3, 8]))).toBe(0)
      expect(maxAbsDiff(a.slice([0, 3, 0, 0], [2, 2, 3, 8]), b.slice([0, 3, 0, 0], [2, 2, 3, 8]))).toBeGreaterThan(1e-4)
      layer.dispose()
    }
    const spatial = new SpatialAttention(init, 8, 2)
    expect(spatial.call(x).shape).toEqual([2, 5, 3, 8])
    spatial.dispose()
  })

  it("sinusoidal embeddings are bounded and distinct; AdaLN starts as zero modulation", () => {
    const e = sinusoidalEmbedding([0, 1, 2.5], 16)
    expect(e.shape).toEqual([3, 16])
    expect(e.slice([0, 0], [1, 8]).dataSync().every((v) => v === 1)).toBe(true) // cos(0)
    expect(maxAbsDiff(e.slice([1, 0], [1, 16]), e.slice([2, 0], [1, 16]))).toBeGreaterThan(0.1)
    const ada = new AdaLNModulation(Init.seeded(1), 16, 8, 3)
    const chunks = ada.call(tf.randomNormal([2, 16]))
    expect(chunks.length).toBe(3)
    expect(chunks[0]!.shape).toEqual([2, 1, 8])
    expect(chunks.every((c) => c.dataSync().every((v) => v === 0))).toBe(true)
    ada.dispose()
  })
})
