import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { parseOverride } from "../src/Config.ts"
import { defineExperiment } from "../src/Experiment.ts"
import { makeInlineExecutor } from "../src/InlineExecutor.ts"
import { planExperiment } from "../src/Planner.ts"
import { baseConfig, pipeline } from "./fixtures/experiment.ts"
import { configErrorOf, readLog, runInProcess, tempDir } from "./helpers.ts"
import * as path from "node:path"

const experiment = (extra: Partial<Parameters<typeof defineExperiment<typeof pipeline>>[0]> = {}) =>
  defineExperiment({ name: "planner-test", pipeline, config: baseConfig, ...extra })

const hashesByStep = (plan: ReturnType<typeof planExperiment>) => plan.trials[0]!.invocations

describe("planner hashing", () => {
  it("gives the same invocation hashes for the same config written differently", () => {
    const reordered = {
      join: {},
      b: { nested: { levels: [8, 5] }, fail: false, gpus: 0, sleepMs: 0, scale: 3.0 },
      a: { fail: false, nested: { levels: [8.0, 5] }, scale: 2, sleepMs: 0, gpus: 0 },
      source: { sleepMs: 0, count: 5 }
    }
    expect(hashesByStep(planExperiment(experiment({ config: reordered })))).toEqual(hashesByStep(planExperiment(experiment())))
  })

  it("leaves every upstream hash unchanged when a downstream setting changes", () => {
    const base = hashesByStep(planExperiment(experiment()))
    const changedB = hashesByStep(planExperiment(experiment(), [parseOverride("b.scale=7")]))
    expect(changedB.source).toBe(base.source)
    expect(changedB.a).toBe(base.a)
    expect(changedB.b).not.toBe(base.b)
    expect(changedB.join).not.toBe(base.join)
    const changedSource = hashesByStep(planExperiment(experiment(), [parseOverride("source.count=6")]))
    for (const step of ["source", "a", "b", "join"] as const) expect(changedSource[step]).not.toBe(base[step])
  })

  it("shares seeded:false stages across seeds and separates seeded ones", () => {
    const plan = planExperiment(experiment({ seeds: [0, 1, 2] }))
    expect(plan.trials).toHaveLength(3)
    const sources = new Set(plan.trials.map((t) => t.invocations.source))
    const as = new Set(plan.trials.map((t) => t.invocations.a))
    expect(sources.size).toBe(1)
    expect(as.size).toBe(3)
    expect(plan.invocations.filter((i) => i.step === "source")[0]!.trials).toEqual(plan.trials.map((t) => t.id))
  })

  it("expands grid × random × seeds and validates every point", () => {
    const plan = planExperiment(experiment({
      sweep: { grid: { "b.scale": [1, 2] }, random: { n: 3, seed: 5, space: { "a.scale": { uniform: [0, 1] }, "a.nested.levels": { choice: [[2], [4, 4]] } } } },
      seeds: [0, 1]
    }))
    expect(plan.trials).toHaveLength(2 * 3 * 2)
    const again = planExperiment(experiment({
      sweep: { grid: { "b.scale": [1, 2] }, random: { n: 3, seed: 5, space: { "a.scale": { uniform: [0, 1] }, "a.nested.levels": { choice: [[2], [4, 4]] } } } },
      seeds: [0, 1]
    }))
    expect(again.trials.map((t) => t.invocations)).toEqual(plan.trials.map((t) => t.invocations))
    for (const trial of plan.trials) expect(typeof trial.assignments["a.scale"]).toBe("number")
  })

  it("runs the upstream stage once for a 4-point sweep over a downstream setting", async () => {
    const home = tempDir("prefix")
    const log = path.join(home, "exec.log")
    process.env.VW2_TEST_LOG = log
    try {
      const exp = experiment({ sweep: { grid: { "b.scale": [1, 2, 3, 4] } } })
      const plan = planExperiment(exp)
      expect(plan.trials).toHaveLength(4)
      expect(plan.invocations.filter((i) => i.step === "source")).toHaveLength(1)
      expect(plan.invocations.filter((i) => i.step === "a")).toHaveLength(1)
      expect(plan.invocations.filter((i) => i.step === "b")).toHaveLength(4)
      const summary = await Effect.runPromise(runInProcess({ experiment: exp, home, executor: makeInlineExecutor() }))
      expect(summary.status).toBe("succeeded")
      const starts = readLog(log).filter((l) => l.phase === "start")
      expect(starts.filter((l) => l.step === "source")).toHaveLength(1)
      expect(starts.filter((l) => l.step === "a")).toHaveLength(1)
      expect(starts.filter((l) => l.step === "b")).toHaveLength(4)
      expect(starts.filter((l) => l.step === "join")).toHaveLength(4)
    } finally {
      delete process.env.VW2_TEST_LOG
    }
  })
})

describe("config validation", () => {
  it("names the full path and the expected type", () => {
    const bad = { ...baseConfig, a: { ...baseConfig.a, scale: "big", nested: { levels: [8, 5, 1] } } }
    const error = configErrorOf(() => planExperiment(experiment({ config: bad as never })))
    expect(error.issues).toEqual(expect.arrayContaining([
      { path: "a.scale", message: 'Expected number, got "big"' },
      { path: "a.nested.levels[2]", message: "Expected a value greater than or equal to 2, got 1" }
    ]))
    expect(error.message).toContain("a.nested.levels[2]")
  })

  it("rejects unknown keys and unknown steps instead of ignoring them", () => {
    const bad = { ...baseConfig, a: { ...baseConfig.a, sclae: 2 }, extraStep: {} }
    const error = configErrorOf(() => planExperiment(experiment({ config: bad as never })))
    expect(error.issues.map((i) => i.path).sort()).toEqual(["a.sclae", "extraStep"])
  })

  it("reports missing keys with their path", () => {
    const { scale: _scale, ...withoutScale } = baseConfig.a
    const error = configErrorOf(() => planExperiment(experiment({ config: { ...baseConfig, a: withoutScale } as never })))
    expect(error.issues[0]!.path).toBe("a.scale")
  })

  it("parses --set values as JSON, or text, and validates them the same way", () => {
    expect(parseOverride("a.scale=0.5")).toMatchObject({ path: ["a", "scale"], value: 0.5 })
    expect(parseOverride("a.nested.levels=[8,5,5]")).toMatchObject({ value: [8, 5, 5] })
    expect(parseOverride("a.nested.levels[1]=3")).toMatchObject({ path: ["a", "nested", "levels", 1], value: 3 })
    expect(parseOverride("a.fail=true")).toMatchObject({ value: true })
    expect(parseOverride("x.name=adam")).toMatchObject({ value: "adam" })
    const plan = planExperiment(experiment(), [parseOverride("a.nested.levels[1]=3")])
    expect(plan.config.a).toMatchObject({ nested: { levels: [8, 3] } })

    expect(configErrorOf(() => planExperiment(experiment(), [parseOverride("a.scale=fast")])).issues).toEqual([{ path: "a.scale", message: 'Expected number, got "fast"' }])
    expect(configErrorOf(() => planExperiment(experiment(), [parseOverride("a.nested.levels[0]=1")])).issues[0]!.path).toBe("a.nested.levels[0]")
    expect(configErrorOf(() => planExperiment(experiment(), [parseOverride("a.bogus=1")])).issues[0]!.path).toBe("a.bogus")
    expect(configErrorOf(() => planExperiment(experiment(), [parseOverride("nope.x=1")])).issues[0]!.path).toBe("nope.x")
    expect(configErrorOf(() => parseOverride("a.scale")).issues[0]!.message).toMatch(/path=value/)
    expect(configErrorOf(() => parseOverride("a.nested.levels=[8,")).issues[0]!.message).toMatch(/does not parse/)
    // 1e400 parses to Infinity: the message says so (JSON would print null)
    expect(configErrorOf(() => planExperiment(experiment(), [parseOverride("a.nested.levels[0]=1e400")])).issues[0]!.message).toMatch(/got Infinity$/)
  })

  it("validates sweep points and names the point", () => {
    const error = configErrorOf(() => planExperiment(experiment({ sweep: { grid: { "a.scale": [1, "x" as never] } } })))
    expect(error.source).toContain("sweep point 1")
    expect(error.issues[0]!.path).toBe("a.scale")
  })
})
