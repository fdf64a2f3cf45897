/**
 * Paper Table 1 baselines as configurations of the same system: VideoWorld 1-like (no VDM),
 * LAPA/Moto-like (T = 2, reconstruction), CoLA-like (VDM supervision, T = 2, no low-fi branch).
 * Each baseline is a branch of one DAG sharing the Craft data (and the VDM prior for CoLA).
 *
 *   npx vw2 run experiments/paper/baselines.ts [--preset paper]
 */
import { defineExperiment } from "@vw2/core"
import { baselinesPipeline, baselinesPresets } from "@vw2/pipelines"

export default defineExperiment({
  name: "paper-baselines",
  pipeline: baselinesPipeline,
  presets: { mini: { config: baselinesPresets.mini }, paper: { config: baselinesPresets.paper } },
  defaultPreset: "mini"
})
