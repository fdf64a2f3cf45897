/** The stages the VideoWorld 2 DAG is built from, imported in one place. */
export { calvinSource, craftSource } from "../DataSources.ts"
export { dldmStage, openxCotrainStage, runTokenize, tokenizeStage, warmupRobotMixStage as warmupRobotMix, warmupStage } from "@vw2/dldm"
export { vdmPretrain } from "@vw2/diffusion"
export { ar } from "@vw2/ar"
export {
  calvinHead,
  craftEvalJudged as craftEval,
  craftEvalLowFiJudged as craftEvalLowFi,
  craftEvalLowFiNoCalvinJudged as craftEvalLowFiNoCalvin,
  craftEvalNoCalvinJudged as craftEvalNoCalvin,
  craftJudge,
  dldmProbe
} from "@vw2/eval"
