import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { FSQ, roundSte } from "../src/index.ts"

describe("FSQ", () => {
  const fsq = new FSQ([8, 5, 5, 5])

  it("has vocabulary 1000 and index basis [1, 8, 40, 200]", () => {
    expect(fsq.codebookSize).toBe(1000)
    expect(fsq.basis).toEqual([1, 8, 40, 200])
  })

  it("every index in [0, 1000) round-trips through codes", () => {
    const idx = tf.range(0, 1000, 1, "int32")
    const codes = fsq.indicesToCodes(idx)
    expect(codes.shape).toEqual([1000, 4])
    expect(Array.from(fsq.codesToIndices(codes).dataSync())).toEqual(Array.from(idx.dataSync()))
    // and the codes are fixed points of quantisation's grid: L=8 → {−1, −.75, …, .75}, L=5 → {−1, −.5, 0, .5, 1}
    const c = codes.arraySync() as number[][]
    expect(new Set(c.map((r) => r[0])).size).toBe(8)
    expect(Math.min(...c.map((r) => r[0]!))).toBe(-1)
    expect(Math.max(...c.map((r) => r[0]!))).toBe(0.75)
    expect([...new Set(c.map((r) => r[1]))].sort()).toEqual([-0.5, -1, 0, 0.5, 1].sort())
  })

  it("quantize follows the authors' formula and lands on valid indices", () => {
    const z = tf.randomNormal([64, 4], 0, 3, "float32", 11)
    const q = fsq.quantize(z)
    const zz = z.arraySync() as number[][]
    const qq = q.arraySync() as number[][]
    const levels = [8, 5, 5, 5]
    for (let i = 0; i < 64; i++)
      for (let d = 0; d < 4; d++) {
        const L = levels[d]!
        const half = ((L - 1) * (1 + 1e-3)) / 2
        const offset = L % 2 === 0 ? 0.5 : 0
        const bounded = Math.tanh(zz[i]![d]! + Math.atanh(offset / half)) * half - offset
        expect(qq[i]![d]).toBeCloseTo(Math.round(bounded) / Math.floor(L / 2), 5)
      }
    const idx = fsq.codesToIndices(q).dataSync()
    for (const v of idx) expect(v >= 0 && v < 1000).toBe(true)
    // z = 0 maps to the centre cell: L=8 → bounded −0.5+… rounds to 0 → code 0
    expect(Array.from(fsq.quantize(tf.zeros([1, 4])).dataSync()).map((v) => Math.abs(v))).toEqual([0, 0, 0, 0])
  })

  it("straight-through: round's gradient is the identity; quantize's is tanh' · half / (L//2)", () => {
    const x = tf.tensor1d([-1.7, -0.2, 0.4, 2.6])
    expect(Array.from(tf.grad((v: tf.Tensor) => tf.sum(roundSte(v)))(x).dataSync())).toEqual([1, 1, 1, 1])
    expect(Array.from(roundSte(x).dataSync(), (v) => v + 0)).toEqual([-2, 0, 0, 3])
    const z = tf.tensor2d([[0.3, -0.4, 0.1, 0.7]])
    const g = tf.grad((v: tf.Tensor) => tf.sum(fsq.quantize(v)))(z).dataSync()
    const levels = [8, 5, 5, 5]
    const zs = [0.3, -0.4, 0.1, 0.7]
    levels.forEach((L, d) => {
      const half = ((L - 1) * (1 + 1e-3)) / 2
      const shift = Math.atanh((L % 2 === 0 ? 0.5 : 0) / half)
      const th = Math.tanh(zs[d]! + shift)
      expect(g[d]).toBeCloseTo(((1 - th * th) * half) / Math.floor(L / 2), 5)
    })
  })

  it("rejects bad levels and wrong code width with a clear message", () => {
    expect(() => new FSQ([8, 1])).toThrow(/levels/)
    expect(() => fsq.quantize(tf.zeros([2, 3]))).toThrow(/last axis 3/)
  })
})
