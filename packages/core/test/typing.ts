// Type-level tests: every `@ts-expect-error` line must be an error, or tsc fails.
import { Effect, Schema } from "effect"
import { defineExperiment, definePipeline, defineStage } from "../src/index.ts"

const gen = defineStage({
  name: "gen", version: "1",
  config: Schema.Struct({ n: Schema.Int, fsq: Schema.Struct({ levels: Schema.Array(Schema.Int) }) }),
  inputs: {}, outputs: { dataset: "toy-dataset", stats: "toy-stats" },
  run: (_ctx, config) => Effect.sync(() => void config.n)
})
const fit = defineStage({
  name: "fit", version: "1",
  config: Schema.Struct({ lr: Schema.Number }),
  inputs: { dataset: "toy-dataset" }, outputs: { model: "toy-model" },
  run: (_ctx, config, inputs) => Effect.sync(() => void [config.lr, inputs.dataset.dir])
})

const p = definePipeline().step("data", gen, {}).step("fit", fit, { dataset: "data.dataset" })
// @ts-expect-error kind mismatch: stats is toy-stats, not toy-dataset
definePipeline().step("data", gen, {}).step("fit", fit, { dataset: "data.stats" })
// @ts-expect-error unknown step
definePipeline().step("data", gen, {}).step("fit", fit, { dataset: "dta.dataset" })
// @ts-expect-error missing input wiring
definePipeline().step("data", gen, {}).step("fit", fit, {})
// @ts-expect-error duplicate step name
definePipeline().step("data", gen, {}).step("data", gen, {})

export const ok = defineExperiment({
  name: "typing", pipeline: p,
  config: { data: { n: 3, fsq: { levels: [8, 5] } }, fit: { lr: 0.1 } },
  sweep: { grid: { "fit.lr": [0.1, 0.2], "data.fsq.levels": [[8], [5]] }, random: { n: 2, space: { "fit.lr": { logUniform: [1e-4, 1e-2] } } } },
  seeds: [0, 1]
})
defineExperiment({
  name: "typing", pipeline: p,
  // @ts-expect-error wrong type in config
  config: { data: { n: "3", fsq: { levels: [8, 5] } }, fit: { lr: 0.1 } }
})
defineExperiment({
  name: "typing", pipeline: p,
  config: { data: { n: 3, fsq: { levels: [8, 5] } }, fit: { lr: 0.1 } },
  // @ts-expect-error misspelt sweep path
  sweep: { grid: { "fit.lrr": [0.1] } }
})
defineExperiment({
  name: "typing", pipeline: p,
  config: { data: { n: 3, fsq: { levels: [8, 5] } }, fit: { lr: 0.1 } },
  // @ts-expect-error wrong value type in a sweep
  sweep: { grid: { "fit.lr": ["x"] } }
})
