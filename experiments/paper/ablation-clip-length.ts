/**
 * Ablation (c), clip length T. Paper: 2 / 9 / 49 / 93 / 177 frames at temporal compression 4. Mini: 2 / 5 /
 * 9 / 17 frames at compression 2 (T = 2 needs compression 1: one transition between two frames).
 *
 *   npx vw2 run experiments/paper/ablation-clip-length.ts [--preset paper]
 */
import { defineExperiment, type ExperimentPreset } from "@vw2/core"
import { dldmPresets } from "@vw2/dldm"
import { byPreset, craftPipeline, craftPresets, type PresetName } from "@vw2/pipelines"

const clipLengths = (preset: PresetName): ExperimentPreset<typeof craftPipeline> => {
  const model = dldmPresets[preset]
  const lengths = preset === "paper" ? [9, 49, 93, 177] : [5, 9, 17]
  return {
    config: craftPresets[preset],
    sweep: { grid: { "warmup.model": [{ ...model, frames: 2, temporalCompression: 1 }, ...lengths.map((frames) => ({ ...model, frames }))] } }
  }
}

export default defineExperiment({
  name: "paper-ablation-clip-length",
  pipeline: craftPipeline,
  presets: byPreset(clipLengths),
  defaultPreset: "mini"
})
