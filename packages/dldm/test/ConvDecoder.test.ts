/**
 * The mini preset's conv U-Net low-fi decoder (ConvUNetDecoder.ts) inside the dLDM: shapes, the gated copy
 * start, causality of chained decoding, teacher-forced vs chained agreement on the first transition, that a
 * short training makes it read its codes (own beats swapped), FSQ round trip, the frozen latentNorm, no
 * tensor leak, and the checkpoint round trip of its parameters.
 */
import * as tf from "@tensorflow/tfjs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AdamW, Init, selectBackend, trainStep } from "@vw2/nn"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ConvUNetDecoder, Dldm, loadDldm, miniPreset, saveDldm } from "../src/index.ts"
import { maxAbsDiff, panningTextures } from "./fixtures.ts"

let model: Dldm
const video = panningTextures(4, 9, 11)
const first = video.slice([0, 0, 0, 0, 0], [4, 1, 32, 32, 3])

const convDecoder = (m: Dldm): ConvUNetDecoder => {
  if (!(m.decoder instanceof ConvUNetDecoder)) throw new Error("mini preset should use the conv U-Net decoder")
  return m.decoder
}

/** Mean |a − b| over frames 1..T−1. */
const l1After0 = (a: tf.Tensor, b: tf.Tensor): number =>
  tf.tidy(() => {
    const t = a.shape[1]!
    return tf.mean(tf.abs(tf.sub(tf.slice(a, [0, 1], [-1, t - 1]), tf.slice(b, [0, 1], [-1, t - 1])))).dataSync()[0]!
  })

beforeAll(async () => {
  await selectBackend()
  model = new Dldm(Init.seeded(1), miniPreset)
})

describe("conv U-Net decoder: shapes and start", () => {
  it("forward → recon [B, T, H, W, 3] with frame 0 the clip's own; decodeLowFi → [B, T, H, W, 3]", () => {
    const f = model.forward(video)
    expect(f.recon.shape).toEqual([4, 9, 32, 32, 3])
    expect(f.codes.shape).toEqual([4, 4, 4, 4])
    expect(maxAbsDiff(f.recon.slice([0, 0], [-1, 1]), first)).toBe(0)
    expect(model.decodeLowFi(first, f.indices).shape).toEqual([4, 9, 32, 32, 3])
  })

  it("untrained, the gated output copies the previous frame (content weight sigmoid(−4))", () => {
    const recon = model.forward(video).recon
    const prev = tf.gather(video, [0, 0, 0, 2, 2, 4, 4, 6, 6], 1) // frame t's transition start tc·⌊(t−1)/tc⌋
    expect(maxAbsDiff(recon, prev)).toBeLessThan(0.02)
  })

  it("FSQ round trip: indices → code vectors → indices is the identity on the model's codes", () => {
    const { codes, indices } = model.codesOf(video)
    expect(maxAbsDiff(model.fsq.indicesToCodes(indices), codes)).toBeLessThan(1e-6)
    expect(Array.from(model.fsq.codesToIndices(model.fsq.indicesToCodes(indices)).dataSync())).toEqual(Array.from(indices.dataSync()))
  })
})

describe("conv U-Net decoder: causality and teacher forcing", () => {
  const trained = new Dldm(Init.seeded(3), miniPreset)
  beforeAll(() => {
    // give the zero-initialised output layer weights, as after training, so the codes show through
    const out = convDecoder(trained).out.weight
    out.v.assign(tf.randomNormal(out.shape as number[], 0, 0.3, "float32", 9))
  })
  afterAll(() => trained.dispose())

  it("chained decoding: frames ≤ tc·(j+1) ignore codes of transitions > j (frames ≤ 4 ignore transitions 2, 3)", () => {
    const codes = trained.codesOf(video).codes
    const other = tf.concat([codes.slice([0, 0, 0, 0], [4, 2, -1, -1]), tf.neg(codes.slice([0, 2, 0, 0], [4, 2, -1, -1]))], 1)
    const a = trained.decodeLowFi(first, codes)
    const b = trained.decodeLowFi(first, other)
    expect(maxAbsDiff(a.slice([0, 0], [-1, 5]), b.slice([0, 0], [-1, 5]))).toBe(0)
    expect(maxAbsDiff(a.slice([0, 5], [-1, 4]), b.slice([0, 5], [-1, 4]))).toBeGreaterThan(1e-4)
  })

  it("teacher-forced transition j reads the true frame tc·j: perturbing frames after it leaves frames ≤ tc·(j+1) of the reconstruction unchanged", () => {
    const codes = trained.codesOf(video).codes
    const noise = tf.concat([tf.zeros([4, 5, 32, 32, 3]), tf.randomUniform([4, 4, 32, 32, 3], -0.3, 0.3, "float32", 5)], 1)
    const perturbed = tf.clipByValue(tf.add(video, noise), 0, 1)
    const a = trained.reconstruct(video, codes)
    const b = trained.reconstruct(perturbed, codes)
    expect(maxAbsDiff(a.slice([0, 0], [-1, 5]), b.slice([0, 0], [-1, 5]))).toBe(0)
    expect(maxAbsDiff(a.slice([0, 7], [-1, 2]), b.slice([0, 7], [-1, 2]))).toBeGreaterThan(1e-4) // transition 3 starts at perturbed frame 6
  })

  it("the first transition is the same teacher-forced and chained (both start from the true frame 0)", () => {
    const f = trained.forward(video)
    const chained = trained.decodeLowFi(first, f.indices)
    expect(maxAbsDiff(f.recon.slice([0, 0], [-1, 3]), chained.slice([0, 0], [-1, 3]))).toBeLessThan(1e-5)
    // later frames differ: chained decoding continues from its own frames
    expect(maxAbsDiff(f.recon.slice([0, 3], [-1, 6]), chained.slice([0, 3], [-1, 6]))).toBeGreaterThan(1e-4)
  })
})

describe("latentNorm on running statistics after warm-up", () => {
  it("with batch statistics a batch of 2 gets other codes in training than at inference; on running statistics they agree, and the statistics still track the batches", () => {
    const m = new Dldm(Init.seeded(5), miniPreset)
    const norm = m.latentNorm!
    const pair = video.slice([0, 0], [2, -1])
    for (let i = 0; i < 3; i++) m.codesOf(video, true) // move the running statistics off their init
    const inference = Array.from(m.encode(pair).dataSync())
    const trainBatch2 = Array.from(m.codesOf(pair, true).indices.dataSync())
    expect(trainBatch2).not.toEqual(inference)
    norm.useRunningStatistics()
    const mean = Array.from(norm.runningMean.v.dataSync())
    const runningInference = Array.from(m.encode(pair).dataSync())
    expect(Array.from(m.codesOf(pair, true).indices.dataSync())).toEqual(runningInference)
    expect(Array.from(norm.runningMean.v.dataSync())).not.toEqual(mean)
    m.dispose()
  })
})

describe("training", () => {
  // ~60 steps of a batch of 4 take ~15 s on the native backend and minutes on pure JS
  const native = () => tf.getBackend() === "tensorflow"

  it("after a short warm-up on panning textures the decoder reads its codes: own codes beat swapped ones; a step leaks no tensor", (ctx) => {
    if (!native()) ctx.skip()
    const m = new Dldm(Init.seeded(0), miniPreset)
    const opt = new AdamW({ lr: 3e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0.1 })
    const vars = m.trainableVariables()
    const step = () => trainStep({ variables: vars, optimizer: opt, clipNorm: 1, lossFn: () => m.reconstructionLoss(video, m.forward(video, true).recon) })
    const firstLoss = step().loss
    const before = tf.memory().numTensors
    step()
    expect(tf.memory().numTensors).toBe(before)
    let last = firstLoss
    for (let i = 0; i < 60; i++) last = step().loss
    expect(last).toBeLessThan(0.7 * firstLoss)
    const { own, swapped } = tf.tidy(() => {
      const codes = m.codesOf(video).codes
      const partner = tf.gather(codes, [1, 2, 3, 0])
      return { own: l1After0(m.reconstruct(video, codes), video), swapped: l1After0(m.reconstruct(video, partner), video) }
    })
    // measured (seed 0, native): own .083 vs swapped .203, loss .228 → .031
    expect(own).toBeLessThan(0.6 * swapped)
    opt.dispose()
    m.dispose()
  }, 180_000)
})

describe("checkpoint", () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  it("round-trips the conv decoder's parameters and latentNorm's running-statistics flag: same codes, reconstruction and chained decode", async () => {
    const m = new Dldm(Init.seeded(7), miniPreset)
    const out = convDecoder(m).out.weight
    out.v.assign(tf.randomNormal(out.shape as number[], 0, 0.3, "float32", 2))
    m.latentNorm!.useRunningStatistics()
    const dir = await mkdtemp(join(tmpdir(), "vw2-dldm-conv-"))
    dirs.push(dir)
    await saveDldm(dir, m)
    const { model: back } = await loadDldm(dir)
    expect(back.config).toEqual(m.config)
    expect(back.latentNorm!.runningInTrain).toBe(true)
    const idx = m.encode(video)
    expect(Array.from(back.encode(video).dataSync())).toEqual(Array.from(idx.dataSync()))
    expect(maxAbsDiff(back.forward(video).recon, m.forward(video).recon)).toBe(0)
    expect(maxAbsDiff(back.decodeLowFi(first, idx), m.decodeLowFi(first, idx))).toBe(0)
    back.dispose()
    m.dispose()
  })
})
