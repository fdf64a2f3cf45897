/** The planner defects of issue 14: duplicate seeds, `--set` on a swept path, the path of a non-finite number. */
import { describe, expect, it } from "vitest"
import { parseOverride } from "../src/Config.ts"
import { defineExperiment } from "../src/Experiment.ts"
import { planExperiment } from "../src/Planner.ts"
import { baseConfig, pipeline } from "./fixtures/experiment.ts"
import { configErrorOf } from "./helpers.ts"

const experiment = (extra: Partial<Parameters<typeof defineExperiment<typeof pipeline>>[0]> = {}) =>
  defineExperiment({ name: "planner-defects", pipeline, config: baseConfig, ...extra })

describe("duplicate seeds", () => {
  it("are rejected by defineExperiment, naming the second one's path", () => {
    const error = configErrorOf(() => experiment({ seeds: [0, 1, 0] }))
    expect(error.issues).toEqual([{ path: "seeds[2]", message: expect.stringContaining("duplicate seed 0 (also seeds[0])") }])
    expect(error.message).toContain("defineExperiment(planner-defects)")
  })

  it("are rejected by the planner for an experiment built without defineExperiment", () => {
    const built = { ...experiment(), seeds: [3, 3] }
    expect(configErrorOf(() => planExperiment(built as never)).issues[0]!.path).toBe("seeds[1]")
  })

  it("distinct seeds still give one trial each with distinct ids", () => {
    expect(planExperiment(experiment({ seeds: [0, 1] })).trials.map((t) => t.id)).toEqual(["p0-s0", "p0-s1"])
  })
})

describe("--set on a swept path", () => {
  const swept = experiment({ sweep: { grid: { "b.scale": [1, 2, 3] } }, seeds: [0, 1] })

  it("replaces that grid axis by its one value, shown in the trials and the plan", () => {
    const plan = planExperiment(swept, [parseOverride("b.scale=7")])
    expect(plan.trials.map((t) => [t.id, t.assignments])).toEqual([["p0-s0", { "b.scale": 7 }], ["p0-s1", { "b.scale": 7 }]])
    expect(plan.pinnedAxes).toEqual(["b.scale: grid of 3 value(s) → --set b.scale=7"])
    const b = plan.invocations.filter((i) => i.step === "b")
    expect(b.map((i) => (i.config as { scale: number }).scale)).toEqual([7, 7])
    // the same invocation as the un-swept experiment with the same override: the value really is used
    const plain = planExperiment(experiment({ seeds: [0, 1] }), [parseOverride("b.scale=7")])
    expect(plan.trials.map((t) => t.invocations.b)).toEqual(plain.trials.map((t) => t.invocations.b))
  })

  it("changes the experiment's config hash only together with what runs", () => {
    const pinned = planExperiment(swept, [parseOverride("b.scale=7")])
    expect(pinned.configHash).not.toBe(planExperiment(swept).configHash)
    expect(planExperiment(swept, [parseOverride("b.scale=7")]).configHash).toBe(pinned.configHash)
    expect(planExperiment(swept).pinnedAxes).toEqual([])
  })

  it("pins a random axis without changing the other axes' draws", () => {
    const random = experiment({ sweep: { random: { n: 4, seed: 9, space: { "a.scale": { uniform: [0, 1] }, "b.scale": { uniform: [0, 1] } } } } })
    const before = planExperiment(random).trials.map((t) => t.assignments["a.scale"])
    const pinned = planExperiment(random, [parseOverride("b.scale=0.5")])
    expect(pinned.trials.map((t) => t.assignments["a.scale"])).toEqual(before)
    expect(pinned.trials.map((t) => t.assignments["b.scale"])).toEqual([0.5, 0.5, 0.5, 0.5])
    expect(pinned.pinnedAxes).toEqual(["b.scale: random draws → --set b.scale=0.5"])
  })

  it("rejects a --set above or inside a swept path, naming both", () => {
    const nested = experiment({ sweep: { grid: { "a.nested.levels": [[2], [4, 4]] } } })
    const inside = configErrorOf(() => planExperiment(nested, [parseOverride("a.nested.levels[0]=3")]))
    expect(inside.issues[0]!.path).toBe("a.nested.levels[0]")
    expect(inside.issues[0]!.message).toContain("overlaps the swept path a.nested.levels")
    const above = configErrorOf(() => planExperiment(nested, [parseOverride('a.nested={"levels":[3]}')]))
    expect(above.issues[0]!.path).toBe("a.nested")
    // an unrelated --set next to a sweep is untouched
    expect(planExperiment(nested, [parseOverride("a.scale=4")]).trials).toHaveLength(2)
  })
})

describe("non-finite numbers", () => {
  it("name the dotted path of the value (train.lr), not the step and then the key", () => {
    const error = configErrorOf(() => planExperiment(experiment(), [parseOverride("b.scale=1e400")]))
    expect(error.issues).toHaveLength(1)
    expect(error.issues[0]!.path).toBe("b.scale")
    expect(error.issues[0]!.message).toMatch(/^Infinity cannot be hashed/)
    expect(error.message).toContain("  b.scale: Infinity cannot be hashed")
    const nested = configErrorOf(() => planExperiment(experiment({ config: { ...baseConfig, a: { ...baseConfig.a, scale: Number.NaN } } })))
    expect(nested.message).toContain("  a.scale: NaN cannot be hashed")
  })

  it("name the sweep point with the value as written when a swept value is not finite", () => {
    const error = configErrorOf(() => planExperiment(experiment({ sweep: { grid: { "b.scale": [1, Number.POSITIVE_INFINITY] } } })))
    expect(error.source).toBe("sweep point 1 (b.scale=Infinity)")
    expect(error.issues[0]!.path).toBe("b.scale")
  })
})
