/**
 * Ablation (d), learnable queries N per transition: 1 / 2 / 4 / 8.
 *
 *   [VW2_PRESET=paper] npx vw2 run experiments/paper/ablation-queries.ts
 */
import { defineExperiment } from "@vw2/core"
import { craftPipeline, craftPresets, presetFromEnv } from "@vw2/pipelines"

const preset = presetFromEnv()

export default defineExperiment({
  name: `paper-ablation-queries-${preset}`,
  pipeline: craftPipeline,
  config: craftPresets[preset],
  sweep: { grid: { "warmup.model.queries": [1, 2, 4, 8] } }
})
