/**
 * Quickstart: the example moons pipeline (experiments/examples/) end to end, until the VideoWorld 2 DAG
 * replaces it. Run it twice: the second run is all cache hits. `--set mlp.epochs=60` reruns only the MLP
 * branch and the comparison.
 *
 *   npx vw2 run experiments/quickstart.ts
 */
import { defineExperiment } from "@vw2/core"
import { moonsConfig, moonsPipeline } from "./examples/pipeline.ts"

export default defineExperiment({
  name: "quickstart",
  pipeline: moonsPipeline,
  config: moonsConfig
})
