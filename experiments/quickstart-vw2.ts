/**
 * Quickstart: the whole VideoWorld 2 DAG at the mini preset on MiniCraft + MiniCALVIN.
 *
 *   npx vw2 run experiments/quickstart-vw2.ts
 */
import { defineExperiment } from "@vw2/core"
import { videoWorld2Pipeline } from "@vw2/pipelines"

export default defineExperiment({
  name: "quickstart-vw2",
  pipeline: videoWorld2Pipeline,
  config: {
    "craft-data": { trainEpisodesPerTask: 4, testEpisodesPerTask: 1 },
    "vdm-pretrain": {},
    warmup: {},
    tokenize: {},
    ar: { model: { dim: 48, depth: 2, heads: 4, mlpRatio: 2, patchSize: 8, historyClips: 2 }, train: { steps: 60, batchSize: 8, lr: 2e-3 } }
  }
})
