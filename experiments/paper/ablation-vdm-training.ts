/**
 * Ablation (e), how the VDM is trained in the joint stage: random init / frozen / LoRA / full fine-tuning.
 *
 *   [VW2_PRESET=paper] npx vw2 run experiments/paper/ablation-vdm-training.ts
 */
import { defineExperiment } from "@vw2/core"
import { craftPipeline, craftPresets, presetFromEnv } from "@vw2/pipelines"

const preset = presetFromEnv()

export default defineExperiment({
  name: `paper-ablation-vdm-training-${preset}`,
  pipeline: craftPipeline,
  config: craftPresets[preset],
  sweep: { grid: { "dldm.dit.training.mode": ["random", "frozen", "lora", "full"] } }
})
