import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { AdamW, Ema, Init, Linear, clipByGlobalNorm, computeGradients, globalNorm, trainStep, warmupConstant, warmupCosine } from "../src/index.ts"

describe("AdamW", () => {
  it("matches torch.optim.AdamW's update (decoupled decay, bias correction) over two steps", () => {
    const p = tf.variable(tf.tensor2d([[1, -2]]))
    const opt = new AdamW({ lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 })
    const vars = new Map([["w", p]])
    // reference in plain JS
    let w = [1, -2]
    let m = [0, 0]
    let v = [0, 0]
    const gs = [
      [0.5, -1],
      [0.2, 0.3]
    ]
    gs.forEach((g, i) => {
      const t = i + 1
      opt.apply(vars, new Map([["w", tf.tensor2d([g])]]))
      m = m.map((mi, j) => 0.9 * mi + 0.1 * g[j]!)
      v = v.map((vi, j) => 0.99 * vi + 0.01 * g[j]! ** 2)
      w = w.map((wi, j) => wi * (1 - 0.1 * 0.1) - (0.1 * (m[j]! / (1 - 0.9 ** t))) / (Math.sqrt(v[j]! / (1 - 0.99 ** t)) + 1e-8))
    })
    const got = p.dataSync()
    expect(got[0]).toBeCloseTo(w[0]!, 5)
    expect(got[1]).toBeCloseTo(w[1]!, 5)
    // state round-trips
    const state = opt.stateDict()
    const opt2 = new AdamW({ lr: 0.1 })
    opt2.loadStateDict(state, opt.step)
    expect(Array.from(opt2.stateDict().get("v.w")!.data)).toEqual(Array.from(state.get("v.w")!.data))
    opt.dispose()
    opt2.dispose()
  })

  it("does not decay rank-1 parameters by default", () => {
    const b = tf.variable(tf.tensor1d([1, 1]))
    const opt = new AdamW({ lr: 0.1, weightDecay: 0.5 })
    opt.apply(new Map([["bias", b]]), new Map([["bias", tf.zeros([2])]]))
    expect(Array.from(b.dataSync())).toEqual([1, 1])
  })
})

describe("schedules, clipping, EMA", () => {
  it("warm-up then cosine", () => {
    const lr = warmupCosine({ peakLr: 1, warmupSteps: 10, totalSteps: 110, minLr: 0.1 })
    expect(lr(0)).toBeCloseTo(0.1)
    expect(lr(9)).toBeCloseTo(1)
    expect(lr(60)).toBeCloseTo(0.55)
    expect(lr(110)).toBeCloseTo(0.1)
    expect(lr(500)).toBeCloseTo(0.1)
    expect(warmupConstant(4.3e-5, 2000)(999)).toBeCloseTo(4.3e-5 / 2)
  })

  it("clips by the global norm", () => {
    const g = new Map([
      ["a", tf.tensor1d([3, 0])],
      ["b", tf.tensor1d([0, 4])]
    ])
    const { grads, norm } = clipByGlobalNorm(g, 1)
    expect(norm).toBeCloseTo(5)
    expect(grads.get("a")!.dataSync()[0]).toBeCloseTo(0.6, 5)
    expect(grads.get("b")!.dataSync()[1]).toBeCloseTo(0.8, 5)
    const untouched = clipByGlobalNorm(g, 10)
    expect(untouched.grads.get("b")!.dataSync()[1]).toBe(4)
  })

  it("trainStep's clipping (the optimizer's gradScale) updates exactly as clipByGlobalNorm + apply", () => {
    const make = () => new Map<string, tf.Variable>([["w", tf.variable(tf.tensor2d([[1, -2], [0.5, 3]]))], ["b", tf.variable(tf.tensor1d([0.1, -0.1]))]])
    const x = tf.tensor2d([[1, 2], [3, -1]])
    const lossOf = (vars: Map<string, tf.Variable>) => () => tf.sum(tf.square(tf.add(tf.matMul(x, vars.get("w")!), vars.get("b")!))) as tf.Scalar
    const viaStep = make(), viaClip = make()
    const optStep = new AdamW({ lr: 0.05, weightDecay: 0.1 }), optClip = new AdamW({ lr: 0.05, weightDecay: 0.1 })
    for (let i = 0; i < 3; i++) {
      const { gradNorm } = trainStep({ variables: viaStep, optimizer: optStep, lossFn: lossOf(viaStep), clipNorm: 1 })
      const { grads } = computeGradients(viaClip, lossOf(viaClip))
      const clipped = clipByGlobalNorm(grads, 1)
      expect(gradNorm).toBeCloseTo(clipped.norm, 4)
      expect(clipped.norm).toBeGreaterThan(1) // the clip is active
      optClip.apply(viaClip, clipped.grads)
      tf.dispose([...grads.values(), ...clipped.grads.values()])
    }
    for (const name of ["w", "b"]) expect(Array.from(viaStep.get(name)!.dataSync())).toEqual(Array.from(viaClip.get(name)!.dataSync()))
    expect(globalNorm(new Map([["a", tf.tensor1d([3, 0])], ["b", tf.tensor1d([0, 4])]]))).toBeCloseTo(5, 6)
    optStep.dispose()
    optClip.dispose()
  })

  it("EMA tracks d·shadow + (1−d)·param", () => {
    const lin = new Linear(Init.seeded(1), 2, 1, { bias: false })
    const w0 = Array.from(lin.weight.v.dataSync())
    const ema = new Ema(lin, 0.5)
    lin.weight.v.assign(tf.zeros([2, 1]))
    ema.update()
    const copy = new Linear(Init.seeded(2), 2, 1, { bias: false })
    ema.copyTo(copy)
    const got = Array.from(copy.weight.v.dataSync())
    got.forEach((v, i) => expect(v).toBeCloseTo(w0[i]! * 0.5, 6))
    ema.dispose()
    lin.dispose()
    copy.dispose()
  })
})
