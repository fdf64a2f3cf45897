import * as tf from "@tensorflow/tfjs"
import { AdamW, Init, trainStep } from "@vw2/nn"
import { describe, expect, it } from "vitest"
import { rectifiedFlowLoss, sample } from "../src/Objective.ts"
import { codeVisibility, countDiTParams, VideoDiT, type CodeContext } from "../src/VideoDiT.ts"
import { paperDiT, type VideoDiTConfig } from "../src/VideoDiTConfig.ts"
import { maxAbsDiff, miniSwitches, randomize, tinyDiT } from "./support.ts"

const B = 2
const T = 4
const S = 16
const input = (seed: number) => ({
  x: tf.randomNormal([B, T, S, S, 3], 0, 1, "float32", seed),
  time: tf.tensor2d([[0, 0.3, 0.5, 0.7], [0, 0.9, 0.2, 0.4]]),
  conditionMask: tf.tensor2d([[1, 0, 0, 0], [1, 0, 0, 0]])
})
const codes = (seed: number) => tf.randomNormal([B, T - 1, 4, 4], 0, 1, "float32", seed) // K = T−1 transitions, Q = 4
const framesOf = (v: tf.Tensor, from: number, count: number) => tf.slice(v, [0, from], [-1, count])

describe("VideoDiT", () => {
  it("maps [B, T, H, W, C] to a velocity of the same shape and starts at zero (zero-initialised final layer)", () => {
    const dit = new VideoDiT(Init.seeded(0), tinyDiT())
    const out = dit.call({ ...input(1), context: { codes: codes(2), visibleFrom: codeVisibility(T - 1) } })
    expect(out.shape).toEqual([B, T, S, S, 3])
    expect(tf.max(tf.abs(out)).dataSync()[0]).toBe(0)
  })

  const causalityCase = (config: VideoDiTConfig) => {
    const dit = new VideoDiT(Init.seeded(0), config)
    randomize(dit)
    const inp = input(1)
    const base = codes(2)
    const visibleFrom = codeVisibility(T - 1) // transition k visible from frame k+1
    // perturb the codes of transitions ≥ 1 only: frames 0 and 1 must not notice
    const perturbed = tf.concat([tf.slice(base, [0, 0], [-1, 1]), tf.add(tf.slice(base, [0, 1], [-1, -1]), 5)], 1)
    const a = dit.call({ ...inp, context: { codes: base, visibleFrom } })
    const b = dit.call({ ...inp, context: { codes: perturbed, visibleFrom } })
    return { early: maxAbsDiff(framesOf(a, 0, 2), framesOf(b, 0, 2)), late: maxAbsDiff(framesOf(a, 2, 2), framesOf(b, 2, 2)) }
  }

  it("cross-attention is causal in time: codes of transitions > t do not change frames ≤ t", () => {
    const noControl = { ...tinyDiT().control, enabled: false }
    const oneBlock = causalityCase(tinyDiT({ depth: 1, control: noControl }))
    expect(oneBlock.early).toBe(0)
    expect(oneBlock.late).toBeGreaterThan(1e-3)
    // with block-causal self-attention too, the whole deep network is causal, the mini preset's per-frame code
    // modulation included (it reads only the transitions visible at each frame)
    const deep = causalityCase(tinyDiT({ ...miniSwitches, depth: 3, temporalSelfAttention: "causal", control: noControl }))
    expect(deep.early).toBe(0)
    expect(deep.late).toBeGreaterThan(1e-3)
    // switched off, the future codes leak into the early frames (the test above can fail)
    const leaky = causalityCase(tinyDiT({ depth: 1, causalCrossAttention: false, control: noControl }))
    expect(leaky.early).toBeGreaterThan(1e-3)
    // the modulation path alone (no cross-attention reads the codes: its output projections are zero) is causal too
    const modulationOnly = new VideoDiT(Init.seeded(0), tinyDiT({ ...miniSwitches, depth: 2, temporalSelfAttention: "causal", control: noControl }))
    randomize(modulationOnly, 0.3, (n) => !n.includes("cross_attn.output_proj"))
    const inp = input(1)
    const base = codes(2)
    const perturbed = tf.concat([tf.slice(base, [0, 0], [-1, 1]), tf.add(tf.slice(base, [0, 1], [-1, -1]), 5)], 1)
    const visibleFrom = codeVisibility(T - 1)
    const a = modulationOnly.call({ ...inp, context: { codes: base, visibleFrom } })
    const b = modulationOnly.call({ ...inp, context: { codes: perturbed, visibleFrom } })
    expect(maxAbsDiff(framesOf(a, 0, 2), framesOf(b, 0, 2))).toBe(0)
    expect(maxAbsDiff(framesOf(a, 2, 2), framesOf(b, 2, 2))).toBeGreaterThan(1e-3)
  })

  it("code positions: without them the context is an unordered set; with them the DiT knows which transition a code is", () => {
    const outputs = (codePositions: boolean) => {
      const dit = new VideoDiT(Init.seeded(0), tinyDiT({ depth: 1, causalCrossAttention: false, codePositions, control: { ...tinyDiT().control, enabled: false } }))
      // (codeModulation stays off: it reads each transition by its position by construction)
      randomize(dit)
      const inp = input(1)
      const base = codes(2)
      const swapped = tf.concat([tf.slice(base, [0, 1], [-1, 1]), tf.slice(base, [0, 0], [-1, 1]), tf.slice(base, [0, 2], [-1, 1])], 1) // transitions 0 ↔ 1
      const visibleFrom = codeVisibility(T - 1)
      return maxAbsDiff(dit.call({ ...inp, context: { codes: base, visibleFrom } }), dit.call({ ...inp, context: { codes: swapped, visibleFrom } }))
    }
    expect(outputs(false)).toBeLessThan(1e-5)
    expect(outputs(true)).toBeGreaterThan(1e-3)
  })

  it("first frame as input channels: every frame's output depends on frame 0's pixels at its own position", () => {
    const noControl = { ...tinyDiT().control, enabled: false }
    // no attention at all (self- and cross-attention gates stay zero): only the input channels connect frame 0 to frame t
    const changeAtLastFrame = (firstFrameChannels: boolean) => {
      const dit = new VideoDiT(Init.seeded(0), tinyDiT({ depth: 1, firstFrameChannels, control: noControl }))
      randomize(dit, 0.3, (n) => !n.startsWith("blocks.0.adaln_modulation_self_attn.") && !n.startsWith("blocks.0.adaln_modulation_cross_attn."))
      const inp = input(1)
      const moved = tf.concat([tf.add(tf.slice(inp.x, [0, 0], [-1, 1]), 1), tf.slice(inp.x, [0, 1], [-1, -1])], 1)
      const a = dit.call(inp)
      const b = dit.call({ ...inp, x: moved })
      return maxAbsDiff(framesOf(a, T - 1, 1), framesOf(b, T - 1, 1))
    }
    expect(changeAtLastFrame(false)).toBe(0)
    expect(changeAtLastFrame(true)).toBeGreaterThan(1e-3)
  })

  it("ControlNet branch is zero at initialisation: outputs with and without it are identical", () => {
    const withBranch = new VideoDiT(Init.seeded(0), tinyDiT(miniSwitches))
    const without = new VideoDiT(Init.seeded(0), tinyDiT({ ...miniSwitches, control: { ...tinyDiT().control, enabled: false } }))
    const notControl = (n: string) => !n.startsWith("control.")
    randomize(withBranch, 0.3, notControl)
    randomize(without, 0.3, notControl)
    withBranch.control!.initFromBase(withBranch)
    randomize(withBranch, 0.3, (n) => n.startsWith("control.hint_embedder.")) // only the zero linears stay zero
    const inp = input(1)
    const context: CodeContext = { codes: codes(2), visibleFrom: codeVisibility(T - 1) }
    const hint = tf.randomUniform([B, T, S, S, 3], -1, 1, "float32", 9)
    const a = withBranch.call({ ...inp, context, hint })
    const b = without.call({ ...inp, context })
    expect(maxAbsDiff(a, b)).toBe(0)
    expect(tf.max(tf.abs(b)).dataSync()[0]).toBeGreaterThan(1e-2) // a non-trivial output
    // the branch copies the base blocks it mirrors
    expect(maxAbsDiff(withBranch.control!.blocks[0]!.layer1.weight.v, withBranch.blocks[0]!.layer1.weight.v)).toBe(0)
    // once the zero linears move, the hint matters
    randomize(withBranch, 0.3, (n) => n.startsWith("control.zero_linears."))
    expect(maxAbsDiff(withBranch.call({ ...inp, context, hint }), b)).toBeGreaterThan(1e-3)
  })

  it("stop-gradient: no gradient from the diffusion loss into the hint's source, unless switched off", () => {
    const gradToSource = (stopGradient: boolean) => {
      const cfg = tinyDiT({ ...miniSwitches, control: { ...tinyDiT().control, stopGradient } })
      const dit = new VideoDiT(Init.seeded(0), cfg)
      randomize(dit) // non-zero zero-linears and final layer, so a path exists
      const decoderWeight = tf.variable(tf.scalar(0.7)) // stands in for the low-fi decoder's parameters
      const codeVar = tf.variable(codes(2))
      const x0 = tf.randomUniform([B, T, S, S, 3], -1, 1, "float32", 4)
      const lowFi = tf.randomUniform([B, T, S, S, 3], -1, 1, "float32", 5)
      const { grads } = tf.variableGrads(() => {
        const hint = tf.tanh(tf.mul(lowFi, decoderWeight))
        return rectifiedFlowLoss(dit, x0, { codes: codeVar, visibleFrom: codeVisibility(T - 1) }, hint, { seed: 3, train: false }).loss
      }, [decoderWeight, codeVar])
      return { hint: Math.abs(grads[decoderWeight.name]!.dataSync()[0]!), codes: tf.max(tf.abs(grads[codeVar.name]!)).dataSync()[0]! }
    }
    const detached = gradToSource(true)
    expect(detached.hint).toBe(0)
    expect(detached.codes).toBeGreaterThan(0) // the codes still learn through cross-attention
    expect(gradToSource(false).hint).toBeGreaterThan(0)
  })

  const trainOnce = (mode: VideoDiTConfig["training"]["mode"]) => {
    const dit = new VideoDiT(Init.seeded(0), tinyDiT({ training: { mode, lora: { rank: 2, alpha: 2 } } }))
    randomize(dit, 0.2, (n) => !n.includes("_lora.b") && !n.startsWith("control.zero_linears."))
    const before = new Map([...dit.namedParams()].map(([n, p]) => [n, p.v.clone()]))
    const x0 = tf.randomUniform([B, T, S, S, 3], -1, 1, "float32", 4)
    const context: CodeContext = { codes: codes(2), visibleFrom: codeVisibility(T - 1) }
    const hint = tf.randomUniform([B, T, S, S, 3], -1, 1, "float32", 5)
    const optimizer = new AdamW({ lr: 1e-2, weightDecay: 0 })
    trainStep({ variables: dit.trainableVariables(), optimizer, lossFn: () => rectifiedFlowLoss(dit, x0, context, hint, { seed: 1 }).loss })
    const changed = new Set<string>()
    for (const [n, p] of dit.namedParams()) if (maxAbsDiff(p.v, before.get(n)!) > 0) changed.add(n)
    return { dit, changed }
  }

  it("training modes: frozen and LoRA update only the intended parameters, full updates the base", () => {
    const isBase = (n: string) => !n.startsWith("control.") && !n.startsWith("code_proj.") && !n.startsWith("code_modulation.")
    const lora = trainOnce("lora")
    const loraNames = [...lora.dit.namedParams()].map(([n]) => n).filter((n) => n.includes("_lora."))
    expect(loraNames.length).toBe(2 * 4 * 2 * 2) // depth 2 × (self, cross) × (q, k, v, o) × (a, b)
    for (const n of lora.changed) if (isBase(n)) expect(n).toContain("_lora.")
    expect(loraNames.filter((n) => n.endsWith("_lora.b")).every((n) => lora.changed.has(n))).toBe(true)
    expect([...lora.changed].some((n) => n.startsWith("control."))).toBe(true)

    const frozen = trainOnce("frozen")
    expect([...frozen.changed].filter(isBase)).toEqual([])
    expect([...frozen.changed].some((n) => n.startsWith("control."))).toBe(true)
    expect([...frozen.dit.namedParams()].some(([n]) => n.includes("_lora."))).toBe(false)

    const full = trainOnce("full")
    expect(full.changed.has("blocks.0.self_attn.q_proj.weight")).toBe(true)
    expect(full.changed.has("x_embedder.weight")).toBe(true)
  })

  it("does not leak tensors across training steps", () => {
    const dit = new VideoDiT(Init.seeded(0), tinyDiT())
    const x0 = tf.randomUniform([B, T, S, S, 3], -1, 1, "float32", 4)
    const context: CodeContext = { codes: codes(2), visibleFrom: codeVisibility(T - 1) }
    const hint = tf.randomUniform([B, T, S, S, 3], -1, 1, "float32", 5)
    const optimizer = new AdamW({ lr: 1e-3 })
    const step = (i: number) =>
      trainStep({ variables: dit.trainableVariables(), optimizer, lossFn: () => rectifiedFlowLoss(dit, x0, context, hint, { seed: i }).loss })
    step(0)
    const before = tf.memory().numTensors
    step(1)
    expect(tf.memory().numTensors).toBe(before)
  })

  it("sample() keeps the given first frame exactly and returns the full clip, with codes, hint and CFG", () => {
    const dit = new VideoDiT(Init.seeded(0), tinyDiT())
    randomize(dit, 0.1)
    const first = tf.randomUniform([B, S, S, 3], -1, 1, "float32", 7)
    const context: CodeContext = { codes: codes(2), visibleFrom: codeVisibility(T - 1) }
    const hint = tf.randomUniform([B, T, S, S, 3], -1, 1, "float32", 8)
    const out = sample(dit, first, context, hint, { steps: 3, cfg: 7, solver: "heun", seed: 1 })
    expect(out.shape).toEqual([B, T, S, S, 3])
    expect(maxAbsDiff(tf.squeeze(tf.slice(out, [0, 0], [-1, 1]), [1]), first)).toBe(0)
    expect(Number.isFinite(tf.sum(out).dataSync()[0]!)).toBe(true)
    expect(() => sample(dit, first, context, tf.zeros([B, T + 1, S, S, 3]), { frames: T, steps: 2 })).toThrow(/hint has 5 frames/)
  })

  it("paper preset: ~2B parameters in the base DiT, counted from the config without allocating", () => {
    const before = tf.memory().numTensors
    const base = countDiTParams(paperDiT, (n) => !n.startsWith("control."))
    const control = countDiTParams(paperDiT, (n) => n.startsWith("control."))
    expect(tf.memory().numTensors).toBe(before)
    expect(base).toBeGreaterThan(1.9e9)
    expect(base).toBeLessThan(2.1e9)
    // three copied blocks of ~70M each + hint embedding + zero linears
    expect(control).toBeGreaterThan(3 * 60e6)
    expect(control).toBeLessThan(3 * 80e6)
  })
})
