/** The stages the VideoWorld 2 DAG is built from, imported in one place. */
export { calvinSource, craftSource } from "../DataSources.ts"
export { dldmStage, openxCotrainStage, runTokenize, tokenizeStage } from "@vw2/dldm"
// the warm-up with its engine (tfjs | torch) chosen by config: WarmupEngine.ts
export { warmupRobotMixEngineStage as warmupRobotMix, warmupEngineStage as warmupStage } from "../WarmupEngine.ts"
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
