import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { karrasSigmas } from "../src/KarrasSchedule.ts"
import {
  defaultFlowObjective,
  denoise,
  fromSignal,
  lossWeight,
  miniFlowObjective,
  preconditioners,
  rectifiedFlowObjective,
  sampleVideo,
  toSignal,
  type VelocityNet
} from "../src/RectifiedFlow.ts"

describe("Karras schedule", () => {
  it("starts at σ_max, ends at σ_min then 0, strictly decreasing, with ρ = 7 spacing", () => {
    const s = karrasSigmas(35)
    expect(s.length).toBe(36)
    expect(s[0]).toBeCloseTo(80, 10)
    expect(s[34]).toBeCloseTo(0.002, 12)
    expect(s[35]).toBe(0)
    for (let i = 1; i < s.length; i++) expect(s[i]!).toBeLessThan(s[i - 1]!)
    // midpoint in σ^{1/ρ} space
    const mid = karrasSigmas(3)[1]!
    expect(mid).toBeCloseTo(((80 ** (1 / 7) + 0.002 ** (1 / 7)) / 2) ** 7, 10)
  })
  it("rejects bad step counts with the config path", () => {
    expect(() => karrasSigmas(0)).toThrow(/sampler.steps/)
  })
})

describe("rectified-flow objective", () => {
  it("weights (σ²+1)/σ² and matches a hand computation, first frame masked", () => {
    const c = 0.3
    const x0v = [[0.5, -0.2], [0.1, 0.9]] // [B=2][T=2], H=W=C=1
    const epsv = [[1.5, -0.7], [0.4, 2.0]]
    const nv = [0.2, -0.6]
    const seen: { time: number[][]; cond: number[][]; x: number[][] }[] = []
    const net: VelocityNet = ({ x, time, conditionMask }) => {
      seen.push({ time: time.arraySync() as number[][], cond: conditionMask.arraySync() as number[][], x: x.reshape([2, 2]).arraySync() as number[][] })
      return tf.fill(x.shape, c)
    }
    const x0 = tf.tensor(x0v.flat(), [2, 2, 1, 1, 1])
    const { loss, mse } = rectifiedFlowObjective(net, x0, {
      noise: tf.tensor(epsv.flat(), [2, 2, 1, 1, 1]),
      sigmaNormal: tf.tensor1d(nv)
    })
    let expected = 0
    let expectedMse = 0
    for (let b = 0; b < 2; b++) {
      const sigma = Math.exp(nv[b]!) * Math.sqrt(2)
      const t = sigma / (1 + sigma)
      const xs = x0v[b]![1]! + sigma * epsv[b]![1]!
      const pred = (1 - t) * xs - t * c
      expected += ((sigma ** 2 + 1) / sigma ** 2) * (pred - x0v[b]![1]!) ** 2
      expectedMse += (pred - x0v[b]![1]!) ** 2
      // the net saw the clean first frame at time 0 and (1−t)·x_σ at time t for frame 1
      expect(seen[0]!.x[b]![0]).toBeCloseTo(x0v[b]![0]!, 6)
      expect(seen[0]!.x[b]![1]).toBeCloseTo((1 - t) * xs, 5)
      expect(seen[0]!.time[b]![0]).toBe(0)
      expect(seen[0]!.time[b]![1]).toBeCloseTo(t, 6)
      expect(seen[0]!.cond[b]).toEqual([1, 0])
    }
    expect(loss.dataSync()[0]).toBeCloseTo(expected / 2, 4)
    expect(mse.dataSync()[0]).toBeCloseTo(expectedMse / 2, 5)
    expect(lossWeight(tf.scalar(2)).dataSync()[0]).toBeCloseTo(5 / 4, 6)
  })

  it("the first frame carries no loss and no gradient", () => {
    const frame0Scale = tf.variable(tf.scalar(1.0))
    const rest = tf.variable(tf.scalar(0.5))
    // velocity at frame 0 depends only on frame0Scale, at frames ≥ 1 only on `rest`
    const net: VelocityNet = ({ x }) => {
      const T = x.shape[1]
      const m = tf.tensor([1, ...new Array(T! - 1).fill(0)], [1, T!, 1, 1, 1])
      return tf.add(tf.mul(tf.mul(m, frame0Scale), 100), tf.mul(tf.sub(1, m), tf.mul(x, rest)))
    }
    const x0 = tf.randomUniform([2, 3, 2, 2, 1], -1, 1, "float32", 3)
    const lossAt = (): number => rectifiedFlowObjective(net, x0, { seed: 11 }).loss.dataSync()[0]!
    const before = lossAt()
    frame0Scale.assign(tf.scalar(-50))
    expect(lossAt()).toBe(before)
    const { grads } = tf.variableGrads(() => rectifiedFlowObjective(net, x0, { seed: 11 }).loss, [frame0Scale, rest])
    expect(grads[frame0Scale.name]!.dataSync()[0]).toBe(0)
    expect(Math.abs(grads[rest.name]!.dataSync()[0]!)).toBeGreaterThan(0)
  })
})

/** The exact velocity for a data distribution that is a point mass at `c`: D(x_σ, σ) = c. */
const pointMassNet = (c: tf.Tensor): VelocityNet => ({ x, time }) => {
  const [B, T] = time.shape
  const t = tf.maximum(time, 1e-6).reshape([B!, T!, 1, 1, 1])
  return tf.div(tf.sub(x, c), t) // (1 − t)x_σ − t·F = c  ⇒  F = (input − c)/t
}

describe("Karras sampler", () => {
  const shape = [1, 3, 2, 2, 1] as const
  const target = tf.tensor(Array.from({ length: 12 }, (_, i) => Math.sin(i)), [...shape])
  it("integrates the ODE to the data for an exact denoiser (Euler and Heun), keeping the condition frame", () => {
    for (const solver of ["euler", "heun"] as const) {
      const out = sampleVideo({ cond: pointMassNet(target) }, shape, {
        seed: 5,
        cleanCondition: target,
        sampler: { steps: 6, cfg: 0, solver }
      })
      const err = tf.max(tf.abs(tf.sub(out, target))).dataSync()[0]!
      expect(err).toBeLessThan(1e-4)
    }
  })
  it("applies classifier-free guidance as D_c + g·(D_c − D_u)", () => {
    const a = tf.fill([...shape], 0.4)
    const b = tf.fill([...shape], 0.1)
    const out = sampleVideo({ cond: pointMassNet(a), uncond: pointMassNet(b) }, shape, {
      seed: 1,
      sampler: { steps: 4, cfg: 7, solver: "euler" },
      objective: { ...defaultFlowObjective, conditionFrames: 0 }
    })
    const v = out.dataSync()
    for (const value of v) expect(value).toBeCloseTo(0.4 + 7 * 0.3, 3)
    const d = denoise(pointMassNet(a), tf.zeros([...shape]), tf.tensor1d([3]), undefined, { ...defaultFlowObjective, conditionFrames: 0 })
    expect(d.dataSync()[0]).toBeCloseTo(0.4, 5)
  })
})

describe("edm scalings and the residual signal (mini objective)", () => {
  const edm = { ...defaultFlowObjective, preconditioning: "edm" as const, sigmaData: 0.1 }
  it("edm preconditioners match Karras et al. Table 1 with σ_d", () => {
    const { cIn, cSkip, cOut, time } = preconditioners(tf.tensor1d([0.5]), edm)
    const total = 0.25 + 0.01
    expect(cIn.dataSync()[0]).toBeCloseTo(1 / Math.sqrt(total), 5)
    expect(cSkip.dataSync()[0]).toBeCloseTo(0.01 / total, 6)
    expect(cOut.dataSync()[0]).toBeCloseTo((0.5 * 0.1) / Math.sqrt(total), 6)
    expect(time.dataSync()[0]).toBeCloseTo(0.5 / 1.5, 6)
    // authors' scalings stay the default: c_in = c_skip = 1 − t, c_out = −t
    const rf = preconditioners(tf.tensor1d([3]))
    expect(rf.cSkip.dataSync()[0]).toBeCloseTo(0.25, 6)
    expect(rf.cOut.dataSync()[0]).toBeCloseTo(-0.75, 6)
    expect(lossWeight(tf.scalar(0.5), 0.1).dataSync()[0]).toBeCloseTo(total / (0.25 * 0.01), 3)
  })

  it("residual + edm: an untrained net (F = 0) predicts the first frame, plus only c_skip·x_σ", () => {
    const config = { ...miniFlowObjective }
    const video = tf.randomUniform([2, 4, 3, 3, 3], -1, 1, "float32", 2)
    const first = tf.slice(video, [0, 0], [-1, 1])
    const xSigma = tf.randomNormal([2, 4, 3, 3, 3], 0, 1, "float32", 3) // σ = 1, signal 0
    const zero: VelocityNet = ({ x }) => tf.zerosLike(x)
    const signal = denoise(zero, xSigma, tf.tensor1d([1, 1]), video, config)
    const pred = fromSignal(signal, config, video)
    const cSkip = 0.01 / 1.01
    const expected = tf.add(tf.concat([first, first, first, first], 1), tf.mul(xSigma, cSkip))
    // frame 0 is the condition exactly; frames ≥ 1 are the first frame + c_skip·x_σ
    expect(tf.max(tf.abs(tf.sub(tf.slice(pred, [0, 0], [-1, 1]), first))).dataSync()[0]).toBeLessThan(1e-6)
    expect(tf.max(tf.abs(tf.sub(tf.slice(pred, [0, 1], [-1, 3]), tf.slice(expected, [0, 1], [-1, 3])))).dataSync()[0]).toBeLessThan(1e-5)
    // the authors' objective diffuses the frames themselves: the same F = 0 gives (1 − t)·x_σ, not the first frame
    const rf = denoise(zero, xSigma, tf.tensor1d([1, 1]), video, defaultFlowObjective)
    expect(tf.max(tf.abs(tf.sub(tf.slice(rf, [0, 1], [-1, 3]), tf.mul(tf.slice(xSigma, [0, 1], [-1, 3]), 0.5)))).dataSync()[0]).toBeLessThan(1e-5)
  })

  it("the sampler integrates the residual ODE to the data for an exact denoiser and adds the first frame back", () => {
    const config = { ...miniFlowObjective }
    const shape = [1, 3, 2, 2, 1] as const
    const target = tf.tensor(Array.from({ length: 12 }, (_, i) => Math.sin(i)), [...shape])
    const signalTarget = toSignal(target, config)
    // exact denoiser of a point mass in signal space: from (c_in·x_σ, t) recover σ and x_σ, return F with D = s*
    const exact: VelocityNet = ({ x, time }) =>
      tf.tidy(() => {
        const t = tf.reshape(tf.slice(time, [0, 1], [1, 1]), [1])
        const sigma = tf.div(t, tf.sub(1, t))
        const pre = preconditioners(sigma, config)
        const xSigma = tf.div(x, tf.reshape(pre.cIn, [1, 1, 1, 1, 1]))
        return tf.div(tf.sub(signalTarget, tf.mul(xSigma, tf.reshape(pre.cSkip, [1, 1, 1, 1, 1]))), tf.reshape(pre.cOut, [1, 1, 1, 1, 1]))
      })
    const out = sampleVideo({ cond: exact }, shape, { seed: 5, cleanCondition: target, sampler: { steps: 8, cfg: 0, solver: "heun" }, objective: config })
    expect(tf.max(tf.abs(tf.sub(out, target))).dataSync()[0]!).toBeLessThan(1e-3)
  })

  it("rejects a residual without a condition frame, naming the field", () => {
    const x0 = tf.zeros([1, 3, 2, 2, 1])
    expect(() => rectifiedFlowObjective(({ x }) => x, x0, { config: { ...miniFlowObjective, conditionFrames: 0 } })).toThrow(/objective\.residual/)
  })
})
