import * as tf from "@tensorflow/tfjs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AdamW, Init, countParams, selectBackend, trainStep } from "@vw2/nn"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Dldm, LowFiDecoder, geometry, loadDldm, miniPreset, paperPreset, saveDldm, type DldmConfig } from "../src/index.ts"
import { maxAbsDiff, movingSquares } from "./fixtures.ts"

let model: Dldm
/** the authors' token decoder at mini size (the mini preset itself uses the conv U-Net: ConvDecoder.test.ts) */
const tokens: DldmConfig = { ...miniPreset, decoder: { ...miniPreset.decoder, kind: "tokens" }, firstFrameSkip: true, flowWarp: true, reconstructionLoss: "l1" }
const tokenDecoder = (m: Dldm): LowFiDecoder => {
  if (!(m.decoder instanceof LowFiDecoder)) throw new Error("expected the token decoder")
  return m.decoder
}
const video = movingSquares(2, 9)
// frames 5..8 belong to latent frames 3 and 4 (tc = 2: latent k ≥ 1 covers frames 2k−1, 2k)
const futureNoise = tf.tidy(() =>
  tf.concat([tf.zeros([2, 5, 32, 32, 3]), tf.randomUniform([2, 4, 32, 32, 3], -0.3, 0.3, "float32", 5)], 1)
)
const perturbed = tf.tidy(() => tf.clipByValue(tf.add(video, futureNoise), 0, 1))

beforeAll(async () => {
  await selectBackend() // the fastest available backend (VW2_TF_BACKEND forces one)
  model = new Dldm(Init.seeded(1), tokens)
  // the low-fi head starts at zero (firstFrameSkip); give it weights, as after training, so codes show through
  const head = tokenDecoder(model).toPatch.weight
  head.v.assign(tf.randomNormal(head.shape as number[], 0, 0.2, "float32", 3))
})

describe("dLDM shapes and APIs", () => {
  it("encode → [B, K−1, N] indices in [0, 1000); decodeLowFi → [B, T, H, W, 3]", () => {
    const g = geometry(miniPreset)
    const idx = model.encode(video)
    expect(idx.shape).toEqual([2, g.transitions, miniPreset.queries])
    expect(idx.dtype).toBe("int32")
    for (const v of idx.dataSync()) expect(v >= 0 && v < 1000).toBe(true)
    const out = model.decodeLowFi(video.slice([0, 0, 0, 0, 0], [2, 1, 32, 32, 3]), idx)
    expect(out.shape).toEqual([2, 9, 32, 32, 3])
  })

  it("decodeLowFi(first frame, encode(video)) equals the full forward reconstruction (f_0 depends on frame 0 only)", () => {
    const f = model.forward(video)
    const out = model.decodeLowFi(tf.squeeze(video.slice([0, 0, 0, 0, 0], [2, 1, 32, 32, 3]), [1]), model.encode(video))
    expect(maxAbsDiff(out, f.recon)).toBeLessThan(1e-5)
  })
})

describe("causality (perturb frames/codes after t → outputs ≤ t unchanged)", () => {
  it("encoder: features of latent frames 0..2 ignore frames 5..8", () => {
    const a = model.encoder.call(video)
    const b = model.encoder.call(perturbed)
    expect(maxAbsDiff(a.slice([0, 0, 0, 0], [2, 3, -1, -1]), b.slice([0, 0, 0, 0], [2, 3, -1, -1]))).toBe(0)
    expect(maxAbsDiff(a.slice([0, 3, 0, 0], [2, 2, -1, -1]), b.slice([0, 3, 0, 0], [2, 2, -1, -1]))).toBeGreaterThan(1e-4)
  })

  it("encoder with causal temporal convolution instead of attention is causal too", () => {
    const conv = new Dldm(Init.seeded(4), { ...tokens, temporalMixing: "conv", temporalKernel: 2 })
    const a = conv.encoder.call(video)
    const b = conv.encoder.call(perturbed)
    expect(maxAbsDiff(a.slice([0, 0, 0, 0], [2, 3, -1, -1]), b.slice([0, 0, 0, 0], [2, 3, -1, -1]))).toBe(0)
    expect(maxAbsDiff(a.slice([0, 3, 0, 0], [2, 2, -1, -1]), b.slice([0, 3, 0, 0], [2, 2, -1, -1]))).toBeGreaterThan(1e-4)
    conv.dispose()
  })

  it("Q-Former: codes of transitions 0,1 (latent frames ≤ 2) ignore frames 5..8", () => {
    const za = model.qformer.call(model.encoder.call(video))
    const zb = model.qformer.call(model.encoder.call(perturbed))
    expect(maxAbsDiff(za.slice([0, 0, 0, 0], [2, 2, -1, -1]), zb.slice([0, 0, 0, 0], [2, 2, -1, -1]))).toBe(0)
    expect(maxAbsDiff(za.slice([0, 2, 0, 0], [2, 2, -1, -1]), zb.slice([0, 2, 0, 0], [2, 2, -1, -1]))).toBeGreaterThan(1e-5)
    const ia = model.encode(video).slice([0, 0, 0], [2, 2, -1]).dataSync()
    const ib = model.encode(perturbed).slice([0, 0, 0], [2, 2, -1]).dataSync()
    expect(Array.from(ib)).toEqual(Array.from(ia))
  })

  it("frame-difference tokens and the Q-Former's difference context keep the encoder and codes causal", () => {
    const m = new Dldm(Init.seeded(6), { ...miniPreset, frameDiff: 4, qformer: { ...miniPreset.qformer, context: "pair-diff" } })
    const a = m.encoder.call(video)
    const b = m.encoder.call(perturbed)
    expect(maxAbsDiff(a.slice([0, 0, 0, 0], [2, 3, -1, -1]), b.slice([0, 0, 0, 0], [2, 3, -1, -1]))).toBe(0)
    expect(maxAbsDiff(a.slice([0, 3, 0, 0], [2, 2, -1, -1]), b.slice([0, 3, 0, 0], [2, 2, -1, -1]))).toBeGreaterThan(1e-4)
    const za = m.qformer.call(a)
    const zb = m.qformer.call(b)
    expect(maxAbsDiff(za.slice([0, 0, 0, 0], [2, 2, -1, -1]), zb.slice([0, 0, 0, 0], [2, 2, -1, -1]))).toBe(0)
    expect(maxAbsDiff(za.slice([0, 2, 0, 0], [2, 2, -1, -1]), zb.slice([0, 2, 0, 0], [2, 2, -1, -1]))).toBeGreaterThan(1e-5)
    m.dispose()
  })

  it("frame-difference tokens: g·2·(x_t − x_{t−1}) per patch — zero for a still clip and for latent frame 0, the clip's total change otherwise", () => {
    const m = new Dldm(Init.seeded(7), { ...miniPreset, frameDiff: 4 })
    const still = tf.tile(video.slice([0, 0, 0, 0, 0], [2, 1, 32, 32, 3]), [1, 9, 1, 1, 1])
    expect(tf.max(tf.abs(m.encoder.diffTokens(still))).dataSync()[0]).toBe(0)
    const d = m.encoder.diffTokens(video) // [B, K, S, P]
    expect(tf.max(tf.abs(d.slice([0, 0, 0, 0], [2, 1, -1, -1]))).dataSync()[0]).toBe(0)
    const expected = tf.tidy(() => tf.mul(tf.sum(tf.abs(tf.sub(video.slice([0, 1], [2, 8]), video.slice([0, 0], [2, 8])))), 8).dataSync()[0]!)
    const got = tf.sum(tf.abs(d)).dataSync()[0]!
    expect(Math.abs(got - expected) / expected).toBeLessThan(1e-4)
    m.dispose()
  })

  it("queryInit: unit-scale queries start the N slots' latents of a transition well apart (0.02-sized: close together)", () => {
    /** spread of z over the N slots relative to its size: 0 when every slot outputs the same latent */
    const slotSpread = (queryInit: number): number => {
      const m = new Dldm(Init.seeded(8), { ...miniPreset, qformer: { ...miniPreset.qformer, queryInit } })
      const z = m.qformer.call(m.encoder.call(video)) // [B, J, N, dim]
      const spread = tf.tidy(() => tf.div(tf.mean(tf.abs(tf.sub(z, tf.mean(z, 2, true)))), tf.mean(tf.abs(z))).dataSync()[0]!)
      m.dispose()
      return spread
    }
    const small = slotSpread(0.02)
    const unit = slotSpread(1)
    expect(small).toBeLessThan(0.4)
    expect(unit).toBeGreaterThan(2 * small)
  })

  it("decoder: latent frame i+1 sees codes of transitions ≤ i only (frames ≤ 4 ignore codes of transitions 2, 3)", () => {
    const first = video.slice([0, 0, 0, 0, 0], [2, 1, 32, 32, 3])
    const codes = model.codesOf(video).codes
    const other = tf.concat([codes.slice([0, 0, 0, 0], [2, 2, -1, -1]), tf.neg(codes.slice([0, 2, 0, 0], [2, 2, -1, -1]))], 1)
    const a = model.decodeLowFi(first, codes)
    const b = model.decodeLowFi(first, other)
    expect(maxAbsDiff(a.slice([0, 0, 0, 0, 0], [2, 5, -1, -1, -1]), b.slice([0, 0, 0, 0, 0], [2, 5, -1, -1, -1]))).toBe(0)
    expect(maxAbsDiff(a.slice([0, 5, 0, 0, 0], [2, 4, -1, -1, -1]), b.slice([0, 5, 0, 0, 0], [2, 4, -1, -1, -1]))).toBeGreaterThan(1e-5)
    // and frame 0 (latent frame 0) sees no code at all
    const none = tf.zerosLike(codes)
    const c = model.decodeLowFi(first, none)
    expect(maxAbsDiff(a.slice([0, 0, 0, 0, 0], [2, 1, -1, -1, -1]), c.slice([0, 0, 0, 0, 0], [2, 1, -1, -1, -1]))).toBe(0)
  })
})

describe("training", () => {
  it("with firstFrameSkip the untrained decoder outputs exactly the copy-first-frame video", () => {
    const m = new Dldm(Init.seeded(2), tokens)
    const first = tf.tile(video.slice([0, 0, 0, 0, 0], [2, 1, 32, 32, 3]), [1, 9, 1, 1, 1])
    expect(maxAbsDiff(m.forward(video).recon, first)).toBeLessThan(1e-6)
    m.dispose()
  })

  it("warm-up reconstruction loss falls on a fixed moving-square batch (authors' whole-frame decoder), and a step leaks no tensor", () => {
    const m = new Dldm(Init.seeded(2), { ...tokens, firstFrameSkip: false, flowWarp: false })
    const opt = new AdamW({ lr: 3e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0.1 })
    const vars = m.trainableVariables()
    const step = () => trainStep({ variables: vars, optimizer: opt, clipNorm: 1, lossFn: () => m.reconstructionLoss(video, m.forward(video).recon) })
    const first = step().loss
    const before = tf.memory().numTensors
    let last = first
    for (let i = 0; i < 24; i++) last = step().loss
    expect(tf.memory().numTensors).toBe(before)
    expect(last).toBeLessThan(0.6 * first)
    opt.dispose()
    m.dispose()
  })
})

describe("presets", () => {
  it("paper preset: 24 latent frames × 30×52 tokens, 23 × 4 = 92 codes, vocab 1000, ~10⁸ parameters (counted without allocating)", () => {
    const g = geometry(paperPreset)
    expect(g.latentFrames).toBe(24)
    expect(g.tokensPerFrame).toBe(30 * 52)
    expect(g.codesPerClip).toBe(92)
    expect(g.vocabulary).toBe(1000)
    const before = tf.memory().numTensors
    const n = countParams((init) => new Dldm(init, paperPreset))
    expect(tf.memory().numTensors).toBe(before)
    expect(n).toBeGreaterThan(5e7)
    expect(n).toBeLessThan(2e8)
    // the Q-Former alone is small: depth 2 at width 512
    const q = countParams((init) => new Dldm(init, paperPreset), (name) => name.startsWith("qformer."))
    expect(q).toBeGreaterThan(2 * 12 * 512 * 512)
    expect(q).toBeLessThan(2 * 20 * 512 * 512)
  })

  it("rejects an inconsistent config naming the field", () => {
    expect(() => new Dldm(Init.meta(), { ...miniPreset, frames: 10 })).toThrow(/dldm.model.frames/)
    expect(() => new Dldm(Init.meta(), { ...miniPreset, fsqLevels: [8, 1] })).toThrow(/fsqLevels\[1\]/)
    expect(() => new Dldm(Init.meta(), { ...miniPreset, flowWarp: true, firstFrameSkip: true })).toThrow(/decoder.kind/)
    expect(() => new Dldm(Init.meta(), { ...miniPreset, decoder: { ...miniPreset.decoder, levels: 6 } })).toThrow(/decoder.levels/)
  })
})

describe("checkpoint", () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })
  it("round-trips: the reloaded model yields the same codes and reconstruction", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vw2-dldm-"))
    dirs.push(dir)
    await saveDldm(dir, model, { trainState: { step: 3 } })
    const { model: back, trainState } = await loadDldm(dir)
    expect(trainState?.step).toBe(3)
    expect(back.config).toEqual(model.config)
    expect(Array.from(back.encode(video).dataSync())).toEqual(Array.from(model.encode(video).dataSync()))
    expect(maxAbsDiff(back.forward(video).recon, model.forward(video).recon)).toBe(0)
    back.dispose()
  })
})
