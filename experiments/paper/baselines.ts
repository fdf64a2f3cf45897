/**
 * Paper Table 1 baselines as configurations of the same system: VideoWorld 1-like (no VDM),
 * LAPA/Moto-like (T = 2, reconstruction), CoLA-like (VDM supervision, T = 2, no low-fi branch).
 * Each baseline is a branch of one DAG sharing the Craft data (and the VDM prior for CoLA).
 *
 *   [VW2_PRESET=paper] npx vw2 run experiments/paper/baselines.ts
 */
import { defineExperiment } from "@vw2/core"
import { baselinesPipeline, baselinesPresets, presetFromEnv } from "@vw2/pipelines"

const preset = presetFromEnv()

export default defineExperiment({
  name: `paper-baselines-${preset}`,
  pipeline: baselinesPipeline,
  config: baselinesPresets[preset]
})
