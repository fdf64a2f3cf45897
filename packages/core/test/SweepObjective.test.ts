/** `sweep.objective`: checked against the pipeline's steps, carried on the plan, and not part of the config hash. */
import { describe, expect, it } from "vitest"
import { defineExperiment, planExperiment } from "../src/index.ts"
import { baseConfig as config, pipeline } from "./fixtures/experiment.ts"

const experiment = (objective?: { metric: string; mode: "min" | "max" }) =>
  defineExperiment({ name: "objective", pipeline, config, sweep: { grid: { "a.scale": [2, 4] }, ...(objective === undefined ? {} : { objective }) } })

describe("sweep.objective", () => {
  it("is carried on the plan and leaves the config hash as it is", () => {
    const plain = planExperiment(experiment())
    const withObjective = planExperiment(experiment({ metric: "join/total", mode: "max" }))
    expect(withObjective.objective).toEqual({ metric: "join/total", mode: "max" })
    expect(plain.objective).toBeUndefined()
    expect(withObjective.configHash).toBe(plain.configHash)
    expect(withObjective.invocations.map((i) => i.hash)).toEqual(plain.invocations.map((i) => i.hash))
  })

  it("names the path when the metric's step is not in the pipeline or the mode is wrong", () => {
    expect(() => planExperiment(experiment({ metric: "nosuch/accuracy", mode: "max" }))).toThrow(/sweep\.objective\.metric: expected <step>\/<metric>/)
    expect(() => planExperiment(experiment({ metric: "join/", mode: "max" }))).toThrow(/sweep\.objective\.metric/)
    expect(() => planExperiment(experiment({ metric: "join/total", mode: "best" as "max" }))).toThrow(/sweep\.objective\.mode/)
  })
})
