import * as tf from "@tensorflow/tfjs"
import { VideoDiT, defaultFlowObjective, miniDiT, miniFlowObjective, type VideoDiTConfig } from "@vw2/diffusion"
import { AdamW, Init, computeGradients, selectBackend, trainStep } from "@vw2/nn"
import { beforeAll, describe, expect, it } from "vitest"
import { Dldm, jointLoss, miniPreset, type JointLossOptions } from "../src/index.ts"
import { codeUse, detachedHint, motionWeights } from "../src/train/joint.ts"
import { maxAbsDiff, movingSquares } from "./fixtures.ts"

let video: tf.Tensor5D
beforeAll(async () => {
  await selectBackend() // the fastest available (native libtensorflow here); the DiT is slow on pure JS
  video = movingSquares(2, 9, 32, 3)
})
/** [2, T, size, size, 3]: the same first frame (a square in the middle), then clip 0 moves right and clip 1 left by size/16 px a frame. */
function mirroredSquares(frames: number, size: number): tf.Tensor5D {
  const data = new Float32Array(2 * frames * size * size * 3)
  const side = size / 4
  const start = (size - side) / 2
  for (let b = 0; b < 2; b++)
    for (let t = 0; t < frames; t++) {
      const x0 = start + (b === 0 ? 1 : -1) * Math.min((size / 16) * t, start)
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) {
          const inside = y >= start && y < start + side && x >= x0 && x < x0 + side
          const i = (((b * frames + t) * size + y) * size + x) * 3
          data.set(inside ? [0.9, 0.7, 0.1] : [0.2, 0.3, 0.5], i)
        }
    }
  return tf.tensor5d(data, [2, frames, size, size, 3])
}

const base: JointLossOptions = {
  diffusionWeight: 10,
  reconstructionWeight: 1,
  hintFromDetachedCodes: true,
  codeContext: true,
  objective: defaultFlowObjective,
  seed: 11,
  train: false
}

/**
 * A DiT whose zero-initialised parts (AdaLN-Zero gates, final layer, control outputs) are made non-zero, as
 * after some training: at init they block every gradient into the context and the hint.
 */
function ditWith(control: Partial<VideoDiTConfig["control"]>): VideoDiT {
  const dit = new VideoDiT(Init.seeded(4), { ...miniDiT, control: { ...miniDiT.control, ...control } })
  tf.tidy(() => {
    for (const [, p] of dit.namedParams()) p.v.assign(tf.add(p.v, tf.randomNormal(p.v.shape, 0, 0.05, "float32", 7)))
  })
  return dit
}

/** Largest |gradient| of the diffusion term into the encoder and the Q-Former, through the ControlNet hint only. */
function hintGradient(dldm: Dldm, dit: VideoDiT, hintFromDetachedCodes: boolean): { encoder: number; qformer: number } {
  const vars = new Map([...dldm.trainableVariables()].filter(([k]) => k.startsWith("encoder.") || k.startsWith("qformer.")))
  const { grads } = computeGradients(vars, () =>
    jointLoss(dldm, dit, video, { ...base, diffusionWeight: 1, reconstructionWeight: 0, codeContext: false, hintFromDetachedCodes }).loss
  )
  const maxAbs = (prefix: string) =>
    Math.max(0, ...[...grads].filter(([k]) => k.startsWith(prefix)).map(([, g]) => tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]!)))
  const out = { encoder: maxAbs("encoder."), qformer: maxAbs("qformer.") }
  for (const g of grads.values()) g.dispose()
  return out
}

describe("joint dLDM + VDM objective", () => {
  it("stop-gradient: the diffusion loss sends exactly zero gradient through the hint into encoder/queries; non-zero without it", () => {
    const dldm = new Dldm(Init.seeded(3), miniPreset)
    // zero-initialised decoder outputs alone would block the hint path: perturb every decoder weight
    tf.tidy(() => {
      for (const [name, p] of dldm.namedParams()) if (name.startsWith("decoder.")) p.v.assign(tf.add(p.v, tf.randomNormal(p.v.shape, 0, 0.1, "float32", 3)))
    })
    const detached = ditWith({ stopGradient: true })
    expect(hintGradient(dldm, detached, false)).toEqual({ encoder: 0, qformer: 0 })
    const open = ditWith({ stopGradient: false })
    const g = hintGradient(dldm, open, false)
    expect(g.encoder).toBeGreaterThan(0)
    expect(g.qformer).toBeGreaterThan(0)
    // authors' variant: hint decoded from detached codes → the queries get nothing through the hint
    const g2 = hintGradient(dldm, open, true)
    expect(g2.qformer).toBe(0)
    for (const m of [dldm, detached, open]) m.dispose()
  })

  it("the codes reach the DiT: with the code context on, the diffusion loss has gradient into the Q-Former", () => {
    const dldm = new Dldm(Init.seeded(3), miniPreset)
    const dit = ditWith({ stopGradient: true })
    const vars = new Map([...dldm.trainableVariables()].filter(([k]) => k.startsWith("qformer.")))
    const { grads } = computeGradients(vars, () => jointLoss(dldm, dit, video, { ...base, diffusionWeight: 1, reconstructionWeight: 0 }).loss)
    const total = [...grads.values()].reduce((s, g) => s + tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]!), 0)
    expect(total).toBeGreaterThan(0)
    for (const g of grads.values()) g.dispose()
    dldm.dispose()
    dit.dispose()
  })

  it("a hint computed outside the gradient scope gives the same loss and DiT gradients as the one decoded inside", () => {
    const dldm = new Dldm(Init.seeded(3), miniPreset)
    const dit = ditWith({ stopGradient: true })
    const hint = detachedHint(dldm, dit, video, false)!
    expect(hint.shape).toEqual(video.shape)
    const vars = new Map([...dit.trainableVariables()].filter(([k]) => k.startsWith("control.") || k.startsWith("blocks.0.")))
    const run = (h: tf.Tensor | undefined) => computeGradients(vars, () => jointLoss(dldm, dit, video, { ...base, hint: h }).loss)
    const inside = run(undefined)
    const outside = run(hint)
    expect(outside.loss).toBe(inside.loss)
    for (const [k, g] of inside.grads) expect(tf.tidy(() => tf.max(tf.abs(tf.sub(g, outside.grads.get(k)!))).dataSync()[0]!)).toBe(0)
    // a DiT that lets the hint's gradient through needs the hint decoded in the loss
    const open = ditWith({ stopGradient: false })
    expect(detachedHint(dldm, open, video, false)).toBeUndefined()
    for (const g of [...inside.grads.values(), ...outside.grads.values()]) g.dispose()
    for (const m of [dldm, dit, open]) m.dispose()
  })

  it("held-out code use: one noise draw for every variant (an untrained DiT reads nothing: all equal), then the codes matter", () => {
    const dldm = new Dldm(Init.seeded(3), miniPreset)
    const fresh = new VideoDiT(Init.seeded(6), miniDiT)
    const probe = { objective: miniFlowObjective, sigma: 1, seed: 5 }
    const u0 = codeUse(dldm, fresh, video, probe)
    expect(u0.noCodes).toEqual(u0.full)
    expect(u0.noCondition).toEqual(u0.full)
    // frames 1..8 against frame 0, in [0, 1] units
    const repeat = tf.tidy(() => tf.mean(tf.abs(tf.sub(tf.slice(video, [0, 1], [-1, -1]), tf.slice(video, [0, 0], [-1, 1])))).dataSync()[0]!)
    expect(u0.repeat.l1).toBeCloseTo(repeat, 5)
    const trained = ditWith({ stopGradient: true })
    const u1 = codeUse(dldm, trained, video, probe)
    expect(Math.abs(u1.noCodes.mse - u1.full.mse)).toBeGreaterThan(0)
    for (const m of [dldm, fresh, trained]) m.dispose()
  })

  it("hint dropout: a dropped hint is no hint, per sample; motion weights single out the pixels that changed", () => {
    const dldm = new Dldm(Init.seeded(3), miniPreset)
    const dit = ditWith({ stopGradient: true })
    const hint = detachedHint(dldm, dit, video, false)!
    const [b, t, h, w] = video.shape
    const input = { x: tf.randomNormal([b, t, h, w, 3], 0, 1, "float32", 1), time: tf.fill([b, t], 0.5), conditionMask: tf.zeros([b, t]) }
    const withHint = dit.call({ ...input, hint })
    const without = dit.call(input)
    const mixed = dit.call({ ...input, hint, hintKeep: tf.tensor1d([0, 1]) })
    const sample = (x: tf.Tensor, i: number) => tf.slice(x, [i], [1])
    expect(maxAbsDiff(sample(mixed, 0), sample(without, 0))).toBe(0)
    expect(maxAbsDiff(sample(mixed, 1), sample(withHint, 1))).toBeLessThan(1e-6)
    expect(maxAbsDiff(withHint, without)).toBeGreaterThan(0)
    // frame 0 never moved; a moving square's pixels get 1 + 3, the background 1
    const weights = motionWeights(video, 3)
    const values = new Set(weights.dataSync())
    expect([...values].sort()).toEqual([1, 4])
    expect(tf.tidy(() => tf.max(tf.slice(weights, [0, 0], [-1, 1])).dataSync()[0])).toBe(1)
    for (const x of [hint, withHint, without, mixed, weights, ...Object.values(input)]) x.dispose()
    dldm.dispose()
    dit.dispose()
  })

  it("the DiT learns to read its codes: after a short training with hint dropout, dropping the codes raises the x0 error", () => {
    // two clips with the same first frame, a square moving right in one and left in the other: nothing but the
    // codes (and the hint decoded from them, dropped for half the samples) tells them apart. 16 px, 5 frames and
    // σ ≈ 20 (the noisy frames show nothing) keep it to a minute on the pure-JS backend
    const clips = mirroredSquares(5, 16)
    const dldm = new Dldm(Init.seeded(3), { ...miniPreset, frames: 5, height: 16, width: 16 })
    const codes = tf.tidy(() => dldm.codesOf(clips, false).codes)
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(codes, [0], [1]), tf.slice(codes, [1], [1])))).dataSync()[0]!)).toBeGreaterThan(0)
    const dit = new VideoDiT(Init.seeded(6), miniDiT)
    const hint = detachedHint(dldm, dit, clips, false)
    const objective = { ...miniFlowObjective, pMean: 3, pStd: 0.3 }
    const variables = dit.trainableVariables()
    const opt = new AdamW({ lr: 5e-3, beta2: 0.99, weightDecay: 0 })
    for (let i = 0; i < 60; i++) {
      trainStep({
        variables,
        optimizer: opt,
        clipNorm: 1,
        lossFn: () => jointLoss(dldm, dit, clips, { ...base, objective, seed: 100 + i, train: true, hintDropout: 0.5, hint }).loss
      })
    }
    const u = codeUse(dldm, dit, clips, { objective, sigma: 20, seed: 5 })
    // measured: codes dropped ≈ 1.3× the error with codes (native backend); a DiT that ignores them gives 1×
    expect(u.noCodes.mse).toBeGreaterThan(1.1 * u.full.mse)
    expect(u.full.mse).toBeLessThan(u.repeat.mse)
    opt.dispose()
    hint?.dispose()
    for (const t of [clips, codes]) t.dispose()
    dldm.dispose()
    dit.dispose()
  })

  it("dLDM loss (10·diffusion + reconstruction) falls on a fixed batch when training dLDM and DiT together", () => {
    const dldm = new Dldm(Init.seeded(5), miniPreset)
    const dit = new VideoDiT(Init.seeded(6), miniDiT)
    const variables = new Map<string, tf.Variable>()
    for (const [k, v] of dldm.trainableVariables()) variables.set(`dldm.${k}`, v)
    for (const [k, v] of dit.trainableVariables()) variables.set(`dit.${k}`, v)
    const opt = new AdamW({ lr: 2e-3, beta2: 0.99, weightDecay: 0.1 })
    const losses: number[] = []
    for (let i = 0; i < 12; i++) {
      // same σ and ε every step: a fixed objective, so a falling loss means learning, not luck
      losses.push(trainStep({ variables, optimizer: opt, clipNorm: 1, lossFn: () => jointLoss(dldm, dit, video, base).loss }).loss)
    }
    expect(losses.at(-1)!).toBeLessThan(0.8 * losses[0]!)
    opt.dispose()
    dldm.dispose()
    dit.dispose()
  })
})
