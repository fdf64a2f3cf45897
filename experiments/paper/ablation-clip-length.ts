/**
 * Ablation (c), clip length T. Paper: 2 / 9 / 49 / 93 / 177 frames at temporal compression 4. Mini: 2 / 5 /
 * 9 / 17 frames at compression 2 (T = 2 needs compression 1: one transition between two frames).
 *
 *   [VW2_PRESET=paper] npx vw2 run experiments/paper/ablation-clip-length.ts
 */
import { defineExperiment } from "@vw2/core"
import { dldmPresets } from "@vw2/dldm"
import { craftPipeline, craftPresets, presetFromEnv } from "@vw2/pipelines"

const preset = presetFromEnv()
const base = craftPresets[preset]
const model = dldmPresets[preset]
const lengths = preset === "paper" ? [9, 49, 93, 177] : [5, 9, 17]

export default defineExperiment({
  name: `paper-ablation-clip-length-${preset}`,
  pipeline: craftPipeline,
  config: base,
  sweep: { grid: { "warmup.model": [{ ...model, frames: 2, temporalCompression: 1 }, ...lengths.map((frames) => ({ ...model, frames }))] } }
})
