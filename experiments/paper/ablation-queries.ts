/**
 * Ablation (d), learnable queries N per transition: 1 / 2 / 4 / 8.
 *
 *   npx vw2 run experiments/paper/ablation-queries.ts [--preset paper]
 */
import { defineExperiment } from "@vw2/core"
import { craftPipeline, craftPresets } from "@vw2/pipelines"

export default defineExperiment({
  name: "paper-ablation-queries",
  pipeline: craftPipeline,
  presets: { mini: { config: craftPresets.mini }, paper: { config: craftPresets.paper } },
  defaultPreset: "mini",
  sweep: { grid: { "warmup.model.queries": [1, 2, 4, 8] } }
})
