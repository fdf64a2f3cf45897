import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { karrasSigmas } from "../src/KarrasSchedule.ts"
import {
  defaultFlowObjective,
  denoise,
  lossWeight,
  rectifiedFlowObjective,
  sampleVideo,
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
