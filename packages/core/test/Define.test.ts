import { Effect, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { defineExperiment } from "../src/Experiment.ts"
import { definePipeline } from "../src/Pipeline.ts"
import { planExperiment } from "../src/Planner.ts"
import { defineStage } from "../src/Stage.ts"

const producer = defineStage({
  name: "producer",
  version: "1",
  config: Schema.Struct({
    width: Schema.Int,
    // a default: writing it or leaving it out is the same config
    depth: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(4)))
  }),
  inputs: {},
  outputs: { out: "thing" },
  run: () => Effect.void
})
const consumer = defineStage({
  name: "consumer",
  version: "1",
  config: Schema.Struct({}),
  inputs: { thing: "thing" },
  outputs: {},
  run: () => Effect.void
})

describe("defineStage / definePipeline runtime checks", () => {
  it("rejects malformed stage definitions with the stage named", () => {
    expect(() => defineStage({ ...producer, version: "" })).toThrow(/defineStage\("producer"\): version/)
    expect(() => defineStage({ ...producer, config: {} as never })).toThrow(/config must be an Effect Schema/)
    expect(() => defineStage({ ...producer, outputs: { out: "" } })).toThrow(/outputs\.out must be a non-empty artifact kind/)
    expect(() => defineStage({ ...producer, name: "has space" })).toThrow(/name must match/)
  })

  it("rejects wiring mistakes that bypassed the type checker", () => {
    const p = definePipeline().step("make", producer, {})
    expect(() => p.step("use", consumer, { thing: "make.nope" } as never)).toThrow(/step make has no output nope/)
    expect(() => p.step("use", consumer, { thing: "other.out" } as never)).toThrow(/not "<earlier step>.<output>"/)
    expect(() => p.step("use", consumer, {} as never)).toThrow(/input thing is not wired/)
    expect(() => p.step("make" as never, producer, {})).toThrow(/already exists/)
  })

  it("fills Schema defaults before hashing, so an omitted default and the written default hash the same", () => {
    const pipeline = definePipeline().step("make", producer, {}).step("use", consumer, { thing: "make.out" })
    const implicit = planExperiment(defineExperiment({ name: "d", pipeline, config: { make: { width: 2 }, use: {} } }))
    const explicit = planExperiment(defineExperiment({ name: "d", pipeline, config: { make: { width: 2, depth: 4 }, use: {} } }))
    const different = planExperiment(defineExperiment({ name: "d", pipeline, config: { make: { width: 2, depth: 5 }, use: {} } }))
    expect(implicit.trials[0]!.invocations).toEqual(explicit.trials[0]!.invocations)
    expect(implicit.config.make).toEqual({ width: 2, depth: 4 })
    expect(different.trials[0]!.invocations.make).not.toBe(implicit.trials[0]!.invocations.make)
  })

  it("checks experiment names and seeds", () => {
    const pipeline = definePipeline().step("make", producer, {})
    expect(() => defineExperiment({ name: "bad name", pipeline, config: { make: { width: 1 } } })).toThrow(/name must match/)
    expect(() => defineExperiment({ name: "x", pipeline, config: { make: { width: 1 } }, seeds: [] })).toThrow(/seeds must be a non-empty array/)
    expect(() => defineExperiment({ name: "x", pipeline, config: { make: { width: 1 } }, seeds: [0.5] })).toThrow(/seeds\[0\] must be an integer/)
  })
})
