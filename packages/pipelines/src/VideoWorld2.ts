/**
 * The VideoWorld 2 DAG (PAPER.md "Pipeline order"): data → vdm-pretrain → warm-up → dLDM → (Open-X
 * co-train) → tokenize → AR → CALVIN head → CraftBench eval, wired with typed references so a wrong
 * output/input pairing fails `tsc`.
 */
import { definePipeline } from "@vw2/core"
import { ar, generateMiniCraftStage, tokenizeStage, vdmPretrain, warmupStage } from "./internal/stages.ts"

export const videoWorld2Pipeline = definePipeline()
  .step("craft-data", generateMiniCraftStage, {})
  .step("vdm-pretrain", vdmPretrain, { videos: "craft-data.dataset" })
  .step("warmup", warmupStage, { dataset: "craft-data.dataset" })
  .step("tokenize", tokenizeStage, { dataset: "craft-data.dataset", checkpoint: "warmup.checkpoint" })
  .step("ar", ar, { codes: "tokenize.codes" })
