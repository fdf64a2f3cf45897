/**
 * Paper Table 1 (main results): VideoWorld 2 trained on Craft, and on OpenX & Craft, evaluated on
 * CraftBench (step-wise success, SSIM, LPIPS), with CALVIN from the Open-X-pretrained dLDM.
 *
 *   npx vw2 run experiments/paper/main.ts                   # mini preset (MiniCraft, MiniCALVIN)
 *   npx vw2 run experiments/paper/main.ts --preset paper    # paper sizes (real data paths, GPU cluster)
 */
import { defineExperiment } from "@vw2/core"
import { mainTablePipeline, mainTablePresets } from "@vw2/pipelines"

export default defineExperiment({
  name: "paper-main",
  pipeline: mainTablePipeline,
  presets: { mini: { config: mainTablePresets.mini }, paper: { config: mainTablePresets.paper } },
  defaultPreset: "mini"
})
