/**
 * Presets are part of the experiment (`defineExperiment({ presets })`, docs/experiments.md "Presets"): each
 * preset resolves to a whole experiment named `<name>-<preset>`, picked by name; nothing is read from the
 * environment. The CLI and a worker process are exercised in packages/cli/test/presets.test.ts.
 */
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { defineExperiment, loadExperimentFilePromise, loadExperimentPromise, planExperiment, selectPreset } from "../src/index.ts"
import { pipeline as enginePipeline } from "./fixtures/experiment.ts"
import { presetsPipeline } from "./fixtures/presets.ts"

const fixture = fileURLToPath(new URL("./fixtures/presets.ts", import.meta.url))
const oneSize = fileURLToPath(new URL("./fixtures/experiment.ts", import.meta.url))
const probe = (label: string, size: number) => ({ probe: { label, size } })

describe("defineExperiment({ presets })", () => {
  const experiment = defineExperiment({
    name: "sizes",
    pipeline: presetsPipeline,
    presets: {
      small: { config: probe("small", 1) },
      large: { config: probe("large", 9), seeds: [3], sweep: { grid: { "probe.size": [9, 10] } } }
    },
    defaultPreset: "small",
    seeds: [0, 1],
    sweep: { grid: { "probe.label": ["x", "y"] } }
  })

  it("resolves every preset to an experiment named <name>-<preset>, with shared sweep/seeds unless the preset sets its own", () => {
    expect(experiment._tag).toBe("ExperimentWithPresets")
    expect(experiment.presets.small).toMatchObject({ _tag: "Experiment", name: "sizes-small", preset: "small", config: probe("small", 1), seeds: [0, 1], sweep: { grid: { "probe.label": ["x", "y"] } } })
    expect(experiment.presets.large).toMatchObject({ name: "sizes-large", preset: "large", config: probe("large", 9), seeds: [3], sweep: { grid: { "probe.size": [9, 10] } } })
    const small = planExperiment(selectPreset(experiment, undefined))
    expect(small.experiment).toBe("sizes-small")
    expect(small.trials.map((t) => [t.assignments, t.seed])).toEqual([[{ "probe.label": "x" }, 0], [{ "probe.label": "x" }, 1], [{ "probe.label": "y" }, 0], [{ "probe.label": "y" }, 1]])
    const large = planExperiment(selectPreset(experiment, "large"))
    expect(large.trials.map((t) => [t.assignments, t.seed])).toEqual([[{ "probe.size": 9 }, 3], [{ "probe.size": 10 }, 3]])
  })

  it("hashes the resolved config, not how the preset was chosen", () => {
    const plain = defineExperiment({ name: "sizes-large", pipeline: presetsPipeline, config: probe("large", 9), seeds: [3], sweep: { grid: { "probe.size": [9, 10] } } })
    const viaPreset = planExperiment(selectPreset(experiment, "large"))
    const direct = planExperiment(plain)
    expect(viaPreset.configHash).toBe(direct.configHash)
    expect(viaPreset.invocations.map((i) => i.hash)).toEqual(direct.invocations.map((i) => i.hash))
  })

  it("names the accepted presets for an unknown one, and refuses a preset for an experiment with one size", () => {
    expect(() => selectPreset(experiment, "huge")).toThrow('unknown preset "huge": experiment sizes has presets small, large')
    // a name inherited from Object.prototype is no preset either
    expect(() => selectPreset(experiment, "toString")).toThrow(/unknown preset "toString"/)
    const single = defineExperiment({ name: "single", pipeline: presetsPipeline, config: probe("only", 1) })
    expect(selectPreset(single, undefined)).toBe(single)
    expect(() => selectPreset(single, "small")).toThrow("preset small asked for, but experiment single has no presets")
  })

  it("checks what types cannot: a default that is no preset, bad preset names, duplicate seeds in a preset, config and presets together", () => {
    const base = { name: "bad", pipeline: presetsPipeline }
    expect(() => defineExperiment({ ...base, presets: { small: { config: probe("s", 1) } }, defaultPreset: "smal" as "small" })).toThrow(
      'defineExperiment(bad): defaultPreset "smal" is not one of its presets (small)'
    )
    expect(() => defineExperiment({ ...base, presets: {}, defaultPreset: "x" as never })).toThrow(/presets must be a non-empty object/)
    expect(() => defineExperiment({ ...base, presets: { "no spaces": { config: probe("s", 1) } }, defaultPreset: "no spaces" })).toThrow(/preset name "no spaces" must match/)
    expect(() => defineExperiment({ ...base, presets: { small: { config: probe("s", 1), seeds: [0, 0] } }, defaultPreset: "small" })).toThrow(/seeds\[1\]: duplicate seed 0/)
    expect(() => defineExperiment({ ...base, config: probe("s", 1), presets: { small: { config: probe("s", 1) } }, defaultPreset: "small" } as never)).toThrow(
      /either config or presets, not both/
    )
  })
})

describe("loading a file with presets", () => {
  it("gives the file's value as declared, and the experiment at a preset (default: defaultPreset)", async () => {
    const value = await loadExperimentFilePromise(fixture)
    expect(value._tag).toBe("ExperimentWithPresets")
    expect((await loadExperimentPromise(fixture)).name).toBe("presets-test-small")
    const large = await loadExperimentPromise(fixture, "large")
    expect(large).toMatchObject({ name: "presets-test-large", preset: "large", config: probe("large", 50), seeds: [0, 1] })
    await expect(loadExperimentPromise(fixture, "huge")).rejects.toThrow('unknown preset "huge": experiment presets-test has presets small, large')
    await expect(loadExperimentPromise(oneSize, "large")).rejects.toThrow("preset large asked for, but experiment engine-test has no presets")
    expect((await loadExperimentPromise(oneSize)).preset).toBeUndefined()
  })
})

/** Type-level checks (tsc fails if a `@ts-expect-error` line is no error); never called, since both throw. */
export const presetTypeChecks = () => [
  // @ts-expect-error the default is not a declared preset
  defineExperiment({ name: "typed", pipeline: presetsPipeline, presets: { small: { config: probe("s", 1) } }, defaultPreset: "large" }),
  // @ts-expect-error a preset's config is another pipeline's
  defineExperiment({ name: "typed", pipeline: enginePipeline, presets: { small: { config: probe("s", 1) } }, defaultPreset: "small" }),
  // the same calls, well typed
  defineExperiment({ name: "typed", pipeline: presetsPipeline, presets: { small: { config: probe("s", 1) } }, defaultPreset: "small" })
]
