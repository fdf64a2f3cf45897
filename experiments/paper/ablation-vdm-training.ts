/**
 * Ablation (e), how the VDM is trained in the joint stage: random init / frozen / LoRA / full fine-tuning.
 *
 *   npx vw2 run experiments/paper/ablation-vdm-training.ts [--preset paper]
 */
import { defineExperiment } from "@vw2/core"
import { craftPipeline, craftPresets } from "@vw2/pipelines"

export default defineExperiment({
  name: "paper-ablation-vdm-training",
  pipeline: craftPipeline,
  presets: { mini: { config: craftPresets.mini }, paper: { config: craftPresets.paper } },
  defaultPreset: "mini",
  sweep: { grid: { "dldm.dit.training.mode": ["random", "frozen", "lora", "full"] } }
})
