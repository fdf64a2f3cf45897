/**
 * The engine's small example: the moons pipeline (two parallel model branches, evaluation, comparison) end
 * to end in seconds. Run it twice: the second run is all cache hits. `--set mlp.epochs=60` reruns only the
 * MLP branch and the comparison.
 *
 *   npx vw2 run experiments/examples/moons.ts
 */
import { defineExperiment } from "@vw2/core"
import { moonsConfig, moonsPipeline } from "./pipeline.ts"

export default defineExperiment({
  name: "moons",
  pipeline: moonsPipeline,
  config: moonsConfig
})
