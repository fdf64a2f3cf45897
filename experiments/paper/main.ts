/**
 * Paper Table 1 (main results): VideoWorld 2 trained on Craft, and on OpenX & Craft, evaluated on
 * CraftBench (step-wise success, SSIM, LPIPS), with CALVIN from the Open-X-pretrained dLDM.
 *
 *   npx vw2 run experiments/paper/main.ts                      # mini preset (MiniCraft, MiniCALVIN)
 *   VW2_PRESET=paper npx vw2 run experiments/paper/main.ts     # paper sizes (real data paths, GPU cluster)
 */
import { defineExperiment } from "@vw2/core"
import { mainTablePipeline, mainTablePresets, presetFromEnv } from "@vw2/pipelines"

const preset = presetFromEnv()

export default defineExperiment({
  name: `paper-main-${preset}`,
  pipeline: mainTablePipeline,
  config: mainTablePresets[preset]
})
