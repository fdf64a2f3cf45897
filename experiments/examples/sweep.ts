/**
 * A sweep over the MLP's learning rate × 2 seeds. The dataset stage is unseeded and the linear branch does
 * not depend on the swept key, so `vw2 plan experiments/examples/sweep.ts` shows 6 trials sharing one
 * dataset invocation and one linear model per seed.
 */
import { defineExperiment } from "@vw2/core"
import { moonsConfig, moonsPipeline } from "./pipeline.ts"

export default defineExperiment({
  name: "moons-lr-sweep",
  pipeline: moonsPipeline,
  config: moonsConfig,
  sweep: { grid: { "mlp.learningRate": [0.01, 0.03, 0.1] } },
  seeds: [0, 1]
})
