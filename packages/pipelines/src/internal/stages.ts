/**
 * The stages the VideoWorld 2 DAG is built from, imported in one place. Temporary: @vw2/data's index does
 * not export its stages yet, so the data stages come from its source files; switch to "@vw2/data" here.
 */
export { generateMiniCraftStage } from "../../../data/src/stages/generate-minicraft.ts"
export { tokenizeStage, warmupStage } from "@vw2/dldm"
export { vdmPretrain } from "@vw2/diffusion"
export { ar } from "@vw2/ar"
