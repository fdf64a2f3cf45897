/**
 * Ablation (b), codebook size: FSQ vocabularies 16 / 1000 / 4096 / 65536 (the paper: 8 / 1000 / 4096 / 64k).
 * Every point keeps 4 FSQ dimensions, since the VDM's code input width is fixed by its pre-training; 8 codes
 * need fewer than 4 levels of ≥ 2, so the smallest point is 2⁴ = 16.
 *
 *   npx vw2 run experiments/paper/ablation-codebook.ts [--preset paper]
 */
import { defineExperiment } from "@vw2/core"
import { craftPipeline, craftPresets } from "@vw2/pipelines"

export default defineExperiment({
  name: "paper-ablation-codebook",
  pipeline: craftPipeline,
  presets: { mini: { config: craftPresets.mini }, paper: { config: craftPresets.paper } },
  defaultPreset: "mini",
  sweep: { grid: { "warmup.model.fsqLevels": [[2, 2, 2, 2], [8, 5, 5, 5], [8, 8, 8, 8], [16, 16, 16, 16]] } }
})
