import * as tf from "@tensorflow/tfjs"
import { VideoDiT, defaultFlowObjective, miniDiT, miniFlowObjective, type VideoDiTConfig } from "@vw2/diffusion"
import { AdamW, Init, computeGradients, selectBackend, trainStep } from "@vw2/nn"
import { beforeAll, describe, expect, it } from "vitest"
import { Dldm, jointLoss, miniPreset, type JointLossOptions } from "../src/index.ts"
import { codeUse, detachedHint } from "../src/train/joint.ts"
import { movingSquares } from "./fixtures.ts"

let video: tf.Tensor5D
beforeAll(async () => {
  await selectBackend() // the fastest available (native libtensorflow here); the DiT is slow on pure JS
  video = movingSquares(2, 9, 32, 3)
})
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
