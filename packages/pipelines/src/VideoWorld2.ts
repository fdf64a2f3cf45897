/**
 * The VideoWorld 2 DAG (docs/paper.md "Training recipe": pipeline order): data → vdm-pretrain → warm-up → dLDM → (Open-X
 * co-train) → tokenize → AR → CALVIN head → CraftBench eval, wired with typed references so a wrong
 * output/input pairing fails `tsc`. Three shapes; everything else (ablations, baselines) is config:
 *
 * - `videoWorld2Pipeline`: the dLDM trained with the VDM on Craft ("VideoWorld 2, Craft").
 * - `videoWorld2OpenXPipeline`: the same, then co-trained on Craft + the Open-X stand-in ("OpenX & Craft").
 * - `reconstructionOnlyPipeline`: no VDM at all — codes from the reconstruction-trained dLDM, clips decoded by
 *   its low-fi decoder (VideoWorld 1-like; with T = 2, LAPA/Moto-like).
 *
 * Every pipeline trains the `craft-judge` step-state classifier on rendered MiniCraft states (never on a model's
 * output, so it is fair across methods; its calibration table is logged), probes each tokenizing dLDM on held-out
 * clips (`dldm-probe`: own vs swapped codes, code usage, linear step probe, oracle-code rollouts under the judge),
 * and judges the CraftBench rollouts with it (the exact pixel judge reports beside it as a diagnostic).
 *
 * CALVIN runs beside Craft in each: the same dLDM tokenizes the MiniCALVIN demos, an AR (`ar-calvin`) learns
 * instruction + frame → codes on them, and `calvin-head` trains the action head and runs the protocol.
 */
import { definePipeline } from "@vw2/core"
import {
  ar,
  calvinHead,
  calvinSource,
  craftSource,
  craftEval,
  craftEvalLowFi,
  craftEvalLowFiNoCalvin,
  craftEvalNoCalvin,
  craftJudge,
  dldmProbe,
  dldmStage,
  openxCotrainStage,
  tokenizeStage,
  vdmPretrain,
  warmupRobotMix,
  warmupStage
} from "./internal/stages.ts"
import { tokenizeRobotStage } from "./RobotTokenize.ts"

const data = definePipeline()
  .step("craft-data", craftSource, {})
  .step("calvin-data", calvinSource, {})

export const videoWorld2Pipeline = data
  .step("vdm-pretrain", vdmPretrain, { videos: "craft-data.dataset" })
  .step("warmup", warmupRobotMix, { dataset: "craft-data.dataset", robot: "calvin-data.dataset" })
  .step("dldm", dldmStage, { dataset: "craft-data.dataset", warmup: "warmup.checkpoint", vdm: "vdm-pretrain.checkpoint" })
  .step("tokenize", tokenizeStage, { dataset: "craft-data.dataset", checkpoint: "dldm.checkpoint" })
  // the judge is first needed by the probe: declared here so the critical path (VDM, warm-up) gets the CPUs first
  .step("craft-judge", craftJudge, { dataset: "craft-data.dataset" })
  .step("dldm-probe", dldmProbe, { dataset: "craft-data.dataset", dldm: "dldm.checkpoint", judge: "craft-judge.judge" })
  .step("tokenize-calvin", tokenizeRobotStage, { dataset: "calvin-data.dataset", checkpoint: "dldm.checkpoint" })
  .step("ar", ar, { codes: "tokenize.codes" })
  .step("ar-calvin", ar, { codes: "tokenize-calvin.codes" })
  .step("calvin-head", calvinHead, { codes: "tokenize-calvin.codes", demos: "calvin-data.dataset", ar: "ar-calvin.checkpoint" })
  .step("craft-eval", craftEval, { dataset: "craft-data.dataset", dldm: "dldm.checkpoint", vdm: "dldm.vdm", ar: "ar.checkpoint", calvin: "calvin-head.report", judge: "craft-judge.judge" })

export const videoWorld2OpenXPipeline = data
  .step("vdm-pretrain", vdmPretrain, { videos: "craft-data.dataset" })
  .step("warmup", warmupRobotMix, { dataset: "craft-data.dataset", robot: "calvin-data.dataset" })
  .step("dldm", dldmStage, { dataset: "craft-data.dataset", warmup: "warmup.checkpoint", vdm: "vdm-pretrain.checkpoint" })
  .step("openx-cotrain", openxCotrainStage, { craft: "craft-data.dataset", openx: "calvin-data.openx", checkpoint: "dldm.checkpoint", vdm: "dldm.vdm" })
  .step("tokenize", tokenizeStage, { dataset: "craft-data.dataset", checkpoint: "openx-cotrain.checkpoint" })
  // the judge is first needed by the probe: declared here so the critical path (VDM, warm-up) gets the CPUs first
  .step("craft-judge", craftJudge, { dataset: "craft-data.dataset" })
  .step("dldm-probe", dldmProbe, { dataset: "craft-data.dataset", dldm: "openx-cotrain.checkpoint", judge: "craft-judge.judge" })
  .step("tokenize-calvin", tokenizeRobotStage, { dataset: "calvin-data.dataset", checkpoint: "openx-cotrain.checkpoint" })
  .step("ar", ar, { codes: "tokenize.codes" })
  .step("ar-calvin", ar, { codes: "tokenize-calvin.codes" })
  .step("calvin-head", calvinHead, { codes: "tokenize-calvin.codes", demos: "calvin-data.dataset", ar: "ar-calvin.checkpoint" })
  .step("craft-eval", craftEval, { dataset: "craft-data.dataset", dldm: "openx-cotrain.checkpoint", vdm: "openx-cotrain.vdm", ar: "ar.checkpoint", calvin: "calvin-head.report", judge: "craft-judge.judge" })

export const reconstructionOnlyPipeline = data
  .step("warmup", warmupRobotMix, { dataset: "craft-data.dataset", robot: "calvin-data.dataset" })
  .step("tokenize", tokenizeStage, { dataset: "craft-data.dataset", checkpoint: "warmup.checkpoint" })
  // the judge is first needed by the probe: declared here so the critical path (VDM, warm-up) gets the CPUs first
  .step("craft-judge", craftJudge, { dataset: "craft-data.dataset" })
  .step("dldm-probe", dldmProbe, { dataset: "craft-data.dataset", dldm: "warmup.checkpoint", judge: "craft-judge.judge" })
  .step("tokenize-calvin", tokenizeRobotStage, { dataset: "calvin-data.dataset", checkpoint: "warmup.checkpoint" })
  .step("ar", ar, { codes: "tokenize.codes" })
  .step("ar-calvin", ar, { codes: "tokenize-calvin.codes" })
  .step("calvin-head", calvinHead, { codes: "tokenize-calvin.codes", demos: "calvin-data.dataset", ar: "ar-calvin.checkpoint" })
  .step("craft-eval", craftEvalLowFi, { dataset: "craft-data.dataset", dldm: "warmup.checkpoint", ar: "ar.checkpoint", calvin: "calvin-head.report", judge: "craft-judge.judge" })

/** Craft only (no CALVIN): the shape the ablation sweeps run, each point one dLDM/VDM variant. */
export const craftPipeline = definePipeline()
  .step("craft-data", craftSource, {})
  .step("vdm-pretrain", vdmPretrain, { videos: "craft-data.dataset" })
  .step("warmup", warmupStage, { dataset: "craft-data.dataset" })
  .step("dldm", dldmStage, { dataset: "craft-data.dataset", warmup: "warmup.checkpoint", vdm: "vdm-pretrain.checkpoint" })
  .step("tokenize", tokenizeStage, { dataset: "craft-data.dataset", checkpoint: "dldm.checkpoint" })
  // the judge is first needed by the probe: declared here so the critical path (VDM, warm-up) gets the CPUs first
  .step("craft-judge", craftJudge, { dataset: "craft-data.dataset" })
  .step("dldm-probe", dldmProbe, { dataset: "craft-data.dataset", dldm: "dldm.checkpoint", judge: "craft-judge.judge" })
  .step("ar", ar, { codes: "tokenize.codes" })
  .step("craft-eval", craftEvalNoCalvin, { dataset: "craft-data.dataset", dldm: "dldm.checkpoint", vdm: "dldm.vdm", ar: "ar.checkpoint", judge: "craft-judge.judge" })

/**
 * The paper's main table: one dLDM trained with the VDM on Craft, evaluated as is ("VideoWorld 2, Craft") and
 * after Open-X co-training ("VideoWorld 2, OpenX & Craft"); CALVIN from the Open-X-pretrained dLDM.
 */
export const mainTablePipeline = data
  .step("vdm-pretrain", vdmPretrain, { videos: "craft-data.dataset" })
  .step("warmup", warmupRobotMix, { dataset: "craft-data.dataset", robot: "calvin-data.dataset" })
  .step("dldm", dldmStage, { dataset: "craft-data.dataset", warmup: "warmup.checkpoint", vdm: "vdm-pretrain.checkpoint" })
  .step("tokenize", tokenizeStage, { dataset: "craft-data.dataset", checkpoint: "dldm.checkpoint" })
  // the judge is first needed by the probe: declared here so the critical path (VDM, warm-up) gets the CPUs first
  .step("craft-judge", craftJudge, { dataset: "craft-data.dataset" })
  .step("dldm-probe", dldmProbe, { dataset: "craft-data.dataset", dldm: "dldm.checkpoint", judge: "craft-judge.judge" })
  .step("ar", ar, { codes: "tokenize.codes" })
  .step("craft-eval", craftEvalNoCalvin, { dataset: "craft-data.dataset", dldm: "dldm.checkpoint", vdm: "dldm.vdm", ar: "ar.checkpoint", judge: "craft-judge.judge" })
  .step("openx-cotrain", openxCotrainStage, { craft: "craft-data.dataset", openx: "calvin-data.openx", checkpoint: "dldm.checkpoint", vdm: "dldm.vdm" })
  .step("tokenize-openx", tokenizeStage, { dataset: "craft-data.dataset", checkpoint: "openx-cotrain.checkpoint" })
  .step("dldm-probe-openx", dldmProbe, { dataset: "craft-data.dataset", dldm: "openx-cotrain.checkpoint", judge: "craft-judge.judge" })
  .step("ar-openx", ar, { codes: "tokenize-openx.codes" })
  .step("tokenize-calvin", tokenizeRobotStage, { dataset: "calvin-data.dataset", checkpoint: "openx-cotrain.checkpoint" })
  .step("ar-calvin", ar, { codes: "tokenize-calvin.codes" })
  .step("calvin-head", calvinHead, { codes: "tokenize-calvin.codes", demos: "calvin-data.dataset", ar: "ar-calvin.checkpoint" })
  .step("craft-eval-openx", craftEval, {
    dataset: "craft-data.dataset",
    dldm: "openx-cotrain.checkpoint",
    vdm: "openx-cotrain.vdm",
    ar: "ar-openx.checkpoint",
    calvin: "calvin-head.report",
    judge: "craft-judge.judge"
  })

/**
 * The baselines as configurations of the same system (docs/paper.md), side by side on one Craft dataset:
 * VideoWorld 1-like (reconstruction-trained dLDM, no VDM), LAPA/Moto-like (the same with T = 2), and
 * CoLA-like (VDM supervision with T = 2 and no low-fi/ControlNet branch).
 */
export const baselinesPipeline = definePipeline()
  .step("craft-data", craftSource, {})
  .step("warmup", warmupStage, { dataset: "craft-data.dataset" })
  .step("tokenize", tokenizeStage, { dataset: "craft-data.dataset", checkpoint: "warmup.checkpoint" })
  // the judge is first needed by the probe: declared here so the critical path (VDM, warm-up) gets the CPUs first
  .step("craft-judge", craftJudge, { dataset: "craft-data.dataset" })
  .step("dldm-probe", dldmProbe, { dataset: "craft-data.dataset", dldm: "warmup.checkpoint", judge: "craft-judge.judge" })
  .step("ar", ar, { codes: "tokenize.codes" })
  .step("craft-eval", craftEvalLowFiNoCalvin, { dataset: "craft-data.dataset", dldm: "warmup.checkpoint", ar: "ar.checkpoint", judge: "craft-judge.judge" })
  .step("warmup-t2", warmupStage, { dataset: "craft-data.dataset" })
  .step("tokenize-t2", tokenizeStage, { dataset: "craft-data.dataset", checkpoint: "warmup-t2.checkpoint" })
  .step("dldm-probe-t2", dldmProbe, { dataset: "craft-data.dataset", dldm: "warmup-t2.checkpoint", judge: "craft-judge.judge" })
  .step("ar-t2", ar, { codes: "tokenize-t2.codes" })
  .step("craft-eval-t2", craftEvalLowFiNoCalvin, { dataset: "craft-data.dataset", dldm: "warmup-t2.checkpoint", ar: "ar-t2.checkpoint", judge: "craft-judge.judge" })
  .step("vdm-pretrain", vdmPretrain, { videos: "craft-data.dataset" })
  .step("dldm-cola", dldmStage, { dataset: "craft-data.dataset", warmup: "warmup-t2.checkpoint", vdm: "vdm-pretrain.checkpoint" })
  .step("tokenize-cola", tokenizeStage, { dataset: "craft-data.dataset", checkpoint: "dldm-cola.checkpoint" })
  .step("dldm-probe-cola", dldmProbe, { dataset: "craft-data.dataset", dldm: "dldm-cola.checkpoint", judge: "craft-judge.judge" })
  .step("ar-cola", ar, { codes: "tokenize-cola.codes" })
  .step("craft-eval-cola", craftEvalNoCalvin, { dataset: "craft-data.dataset", dldm: "dldm-cola.checkpoint", vdm: "dldm-cola.vdm", ar: "ar-cola.checkpoint", judge: "craft-judge.judge" })

/**
 * The fidelity comparison (issue 13, experiments/fidelity.ts): from one warm-up, the full dLDM (VDM + stop-grad +
 * ControlNet, `dldm`) and a reconstruction-only continuation (`dldm-recon`: the same joint stage, steps, batch and
 * learning rate with the diffusion loss weighted 0, VideoWorld 1-like) are probed side by side on the same held-out
 * clips by the same judge. The pair differs only in the VDM's supervision of the codes.
 */
export const fidelityPipeline = definePipeline()
  .step("craft-data", craftSource, {})
  .step("vdm-pretrain", vdmPretrain, { videos: "craft-data.dataset" })
  .step("warmup", warmupStage, { dataset: "craft-data.dataset" })
  .step("dldm", dldmStage, { dataset: "craft-data.dataset", warmup: "warmup.checkpoint", vdm: "vdm-pretrain.checkpoint" })
  .step("dldm-recon", dldmStage, { dataset: "craft-data.dataset", warmup: "warmup.checkpoint", vdm: "vdm-pretrain.checkpoint" })
  .step("craft-judge", craftJudge, { dataset: "craft-data.dataset" })
  .step("dldm-probe", dldmProbe, { dataset: "craft-data.dataset", dldm: "dldm.checkpoint", judge: "craft-judge.judge" })
  .step("dldm-probe-recon", dldmProbe, { dataset: "craft-data.dataset", dldm: "dldm-recon.checkpoint", judge: "craft-judge.judge" })
