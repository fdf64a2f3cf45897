import { describe, expect, it } from "vitest"
import { defineExperiment } from "../src/Experiment.ts"
import { planExperiment } from "../src/Planner.ts"
import { truncateTagValue } from "../src/RunTree.ts"
import { bootstrapMeanCi, mean, quantileSorted, sampleStd, summarize } from "../src/Statistics.ts"
import { bestGroup, rolledUpKey, rollup, rollupMetrics, rollupTags, stageRunName, trialGroups, trialLabels, trialMetrics } from "../src/SweepRollup.ts"
import { baseConfig, pipeline } from "./fixtures/experiment.ts"

describe("statistics", () => {
  it("mean, sample std (n - 1) and numpy's default quantile", () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5)
    expect(sampleStd([1, 2, 3, 4])).toBeCloseTo(Math.sqrt(5 / 3), 12)
    expect(sampleStd([7])).toBeUndefined()
    // np.quantile([1, 2, 3, 4], [0.25, 0.5, 0.975]) = [1.75, 2.5, 3.925]
    expect(quantileSorted([1, 2, 3, 4], 0.25)).toBeCloseTo(1.75, 12)
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBe(2.5)
    expect(quantileSorted([1, 2, 3, 4], 0.975)).toBeCloseTo(3.925, 12)
  })

  it("bootstrap CI of two values spans them (resampled means are a, (a+b)/2, b with 1/4, 1/2, 1/4)", () => {
    expect(bootstrapMeanCi([1, 3])).toEqual([1, 3])
    expect(bootstrapMeanCi([5, 5, 5])).toEqual([5, 5])
  })

  it("bootstrap CI is deterministic, and close to the normal interval mean ± 1.96·s/√n for many values", () => {
    const values = Array.from({ length: 60 }, (_, i) => Math.sin(i * 12.9898) * 3 + 10)
    const ci = bootstrapMeanCi(values)
    expect(bootstrapMeanCi(values)).toEqual(ci)
    expect(bootstrapMeanCi(values, { resamples: 1000, confidence: 0.95, seed: 7 })).not.toEqual(ci)
    const m = mean(values)
    const half = (1.96 * sampleStd(values)!) / Math.sqrt(values.length)
    expect(ci[0]).toBeLessThan(m)
    expect(ci[1]).toBeGreaterThan(m)
    // a std instead of a standard error, or a wrong quantile, misses these by far more than 15 %
    expect(Math.abs(m - ci[0] - half) / half).toBeLessThan(0.15)
    expect(Math.abs(ci[1] - m - half) / half).toBeLessThan(0.15)
  })

  it("summarize leaves std and CI out for a single value", () => {
    expect(summarize([4])).toEqual({ n: 1, mean: 4, std: undefined, ci: undefined })
    const s = summarize([10, 14])
    expect(s).toEqual({ n: 2, mean: 12, std: Math.sqrt(8), ci: [10, 14] })
  })
})

const sweep = defineExperiment({
  name: "rollup-test",
  pipeline,
  config: baseConfig,
  sweep: { grid: { "a.scale": [1, 2, 3] } },
  seeds: [0, 1]
})

describe("sweep roll-up", () => {
  const plan = planExperiment(sweep)

  it("labels trials by their assignments and seed; single-trial experiments need no label", () => {
    const labels = trialLabels(plan.trials)
    expect(plan.trials.map((t) => labels.get(t.id))).toEqual(["scale=1 seed=0", "scale=1 seed=1", "scale=2 seed=0", "scale=2 seed=1", "scale=3 seed=0", "scale=3 seed=1"])
    expect(stageRunName("a", labels.get(plan.trials[3]!.id)!)).toBe("a · scale=2 seed=1")
    const single = planExperiment(defineExperiment({ name: "one", pipeline, config: baseConfig }))
    expect(trialLabels(single.trials).get(single.trials[0]!.id)).toBe("")
    expect(stageRunName("a", "")).toBe("a")
    // the full path when two swept paths end alike
    const twoScales = planExperiment(defineExperiment({ name: "two", pipeline, config: baseConfig, sweep: { grid: { "a.scale": [1], "b.scale": [2, 3] } } }))
    expect([...trialLabels(twoScales.trials).values()]).toEqual(["a.scale=1 b.scale=2", "a.scale=1 b.scale=3"])
  })

  it("rolls metric keys up as <step>/<metric> without doubling the step's own prefix", () => {
    expect(rolledUpKey("mlp", "loss")).toBe("mlp/loss")
    expect(rolledUpKey("ar", "ar/loss")).toBe("ar/loss")
    expect(rolledUpKey("ar-calvin", "ar/loss")).toBe("ar-calvin/ar/loss")
    expect(rolledUpKey("ar", "arx/loss")).toBe("ar/arx/loss")
    expect(trialMetrics({ a: { sum: 3 }, ar: { "ar/loss": 0.5 } })).toEqual({ "a/sum": 3, "ar/loss": 0.5 })
  })

  it("groups trials that differ only in the seed and reports n, mean, std and CI per group", () => {
    const groups = trialGroups(plan.trials)
    expect(groups.map((g) => [g.id, g.label, g.trials.map((t) => t.id)])).toEqual([
      ["p0", "scale=1", ["p0-s0", "p0-s1"]],
      ["p1", "scale=2", ["p1-s0", "p1-s1"]],
      ["p2", "scale=3", ["p2-s0", "p2-s1"]]
    ])
    // p2-s1 lacks the metric (its stage failed): n = 1 for that group, no std/CI
    const metrics = new Map<string, Record<string, number>>([
      ["p0-s0", { "a/sum": 10 }], ["p0-s1", { "a/sum": 14 }],
      ["p1-s0", { "a/sum": 20, "join/total": 1 }], ["p1-s1", { "a/sum": 21, "join/total": NaN }],
      ["p2-s0", { "a/sum": 30 }], ["p2-s1", {}]
    ])
    const r = rollup({ experiment: "x", configHash: "h", trials: plan.trials, metrics, runIds: new Map([["p0-s0", "run-a"]]) })
    expect(r.groups[0]!.metrics["a/sum"]).toEqual({ n: 2, mean: 12, std: Math.sqrt(8), ci95: [10, 14], values: [10, 14], trials: ["p0-s0", "p0-s1"] })
    expect(r.groups[1]!.metrics["join/total"]).toEqual({ n: 1, mean: 1, values: [1], trials: ["p1-s0"] })
    expect(r.groups[2]!.metrics["a/sum"]).toEqual({ n: 1, mean: 30, values: [30], trials: ["p2-s0"] })
    expect(r.groups[0]!.trials[0]).toEqual({ id: "p0-s0", seed: 0, runId: "run-a", metrics: { "a/sum": 10 } })
    const keys = rollupMetrics(r)
    expect(keys["a/sum/p0/mean"]).toBe(12)
    expect(keys["a/sum/p0/std"]).toBeCloseTo(2.8284271, 6)
    expect(keys["a/sum/p0/n"]).toBe(2)
    expect([keys["a/sum/p0/ci95_low"], keys["a/sum/p0/ci95_high"]]).toEqual([10, 14])
    expect(keys["a/sum/p2/std"]).toBeUndefined()
    expect(Object.keys(keys).every((k) => /^[\w./\- :]+$/.test(k))).toBe(true)
    expect(rollupTags(r)).toEqual({ "vw2.group.p0": "scale=1", "vw2.group.p1": "scale=2", "vw2.group.p2": "scale=3" })
    expect(bestGroup(r, { metric: "a/sum", mode: "max" })?.id).toBe("p2")
    expect(bestGroup(r, { metric: "a/sum", mode: "min" })?.id).toBe("p0")
    expect(bestGroup(r, { metric: "nosuch/metric", mode: "min" })).toBeUndefined()
    // the same numbers on a rerun
    expect(rollup({ experiment: "x", configHash: "h", trials: plan.trials, metrics })).toEqual(rollup({ experiment: "x", configHash: "h", trials: plan.trials, metrics }))
  })
})

describe("tag values", () => {
  it("are cut to MLflow's 8000 characters with a marker that says how much is missing", () => {
    expect(truncateTagValue("short")).toBe("short")
    const long = "é".repeat(10_000)
    const cut = truncateTagValue(long)
    expect(Array.from(cut).length).toBeLessThanOrEqual(8000)
    const missing = Number(/\[(\d+) more characters cut/.exec(cut)?.[1])
    const kept = cut.indexOf(" … [")
    expect(kept + missing).toBe(10_000)
    expect(Array.from(truncateTagValue("x".repeat(8005))).length).toBeLessThanOrEqual(8000)
  })
})
