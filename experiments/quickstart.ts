/**
 * Quickstart: the whole VideoWorld 2 DAG at the mini preset — MiniCraft + MiniCALVIN data, VDM pre-training,
 * dLDM warm-up and disentangled training, tokenization, the AR transformers, the CALVIN head with the
 * closed-loop protocol, and the CraftBench evaluation (table, GIFs, plot). Sized for a 2-core CPU.
 *
 *   npx vw2 run experiments/quickstart.ts
 *   npx vw2 run experiments/quickstart.ts --set ar.train.lr=0.001   # reruns ar and craft-eval only
 */
import { defineExperiment } from "@vw2/core"
import { videoWorld2Pipeline, videoWorld2Presets } from "@vw2/pipelines"

export default defineExperiment({
  name: "quickstart",
  pipeline: videoWorld2Pipeline,
  config: videoWorld2Presets.mini
})
