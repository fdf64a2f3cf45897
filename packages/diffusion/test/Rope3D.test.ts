import * as tf from "@tensorflow/tfjs"
import { Init } from "@vw2/nn"
import { describe, expect, it } from "vitest"
import { applyRope, rope3dAngles, ropeBands } from "../src/Rope3D.ts"
import { codeVisibility, VideoDiT } from "../src/VideoDiT.ts"
import { paperDiT } from "../src/VideoDiTConfig.ts"
import { randomize, tinyDiT } from "./support.ts"

describe("rope3d", () => {
  it("splits a Cosmos 2B head (128) into t/h/w bands 44/42/42", () => {
    expect(ropeBands(paperDiT.width / paperDiT.heads)).toEqual({ t: 44, h: 42, w: 42 })
  })

  it("makes query·key depend only on the relative (frame, row, col) offset", () => {
    const hd = 24
    const [frames, rows, cols] = [4, 3, 5]
    const angles = rope3dAngles(frames, rows, cols, hd, { extrapolation: { t: 1, h: 2, w: 1 }, temporalScale: 1.5 })
    const n = frames * rows * cols
    const q = tf.tile(tf.randomNormal([1, 1, 1, hd], 0, 1, "float32", 1), [1, 1, n, 1]) as tf.Tensor4D
    const k = tf.tile(tf.randomNormal([1, 1, 1, hd], 0, 1, "float32", 2), [1, 1, n, 1]) as tf.Tensor4D
    const scores = tf.matMul(applyRope(q, angles), applyRope(k, angles), false, true).reshape([n, n]).arraySync() as number[][]
    const idx = (f: number, r: number, c: number) => (f * rows + r) * cols + c
    // same offset (+1 frame, +1 row, −2 cols) from two different places
    expect(scores[idx(0, 0, 2)]![idx(1, 1, 0)]).toBeCloseTo(scores[idx(2, 1, 4)]![idx(3, 2, 2)]!, 4)
    // a different offset gives a different score, and the rotation keeps norms
    expect(Math.abs(scores[idx(0, 0, 2)]![idx(1, 1, 0)]! - scores[idx(0, 0, 2)]![idx(2, 1, 0)]!)).toBeGreaterThan(1e-3)
    const norms = tf.norm(applyRope(q, angles), 2, -1).dataSync()
    expect(norms[7]).toBeCloseTo(norms[0]!, 4)
  })

  it("drives the DiT's self-attention (causality and shape hold with rope3d)", () => {
    const dit = new VideoDiT(Init.seeded(0), tinyDiT({ positionEncoding: "rope3d", depth: 1, control: { ...tinyDiT().control, enabled: false } }))
    randomize(dit)
    const x = tf.randomNormal([1, 3, 16, 16, 3], 0, 1, "float32", 3)
    const base = { x, time: tf.tensor2d([[0, 0.5, 0.5]]), conditionMask: tf.tensor2d([[1, 0, 0]]) }
    const codes = tf.randomNormal([1, 2, 4, 4], 0, 1, "float32", 4)
    const a = dit.call({ ...base, context: { codes, visibleFrom: codeVisibility(2) } })
    const later = tf.concat([tf.slice(codes, [0, 0], [-1, 1]), tf.add(tf.slice(codes, [0, 1], [-1, 1]), 3)], 1)
    const b = dit.call({ ...base, context: { codes: later, visibleFrom: codeVisibility(2) } })
    expect(a.shape).toEqual([1, 3, 16, 16, 3])
    expect(tf.max(tf.abs(tf.sub(tf.slice(a, [0, 0], [-1, 2]), tf.slice(b, [0, 0], [-1, 2])))).dataSync()[0]).toBe(0)
  })
})
