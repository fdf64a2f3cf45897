/**
 * The video DiT config as an Effect Schema, for stage configs: every field optional with a default taken
 * from a preset, unknown keys rejected by the engine, and the decoded value a `VideoDiTConfig`.
 */
import { ConfigField } from "@vw2/core"
import { Schema } from "effect"
import { defaultFlowObjective, miniFlowObjective, preconditionings, type FlowObjectiveConfig } from "./RectifiedFlow.ts"
import { vdmTrainingModes, type VideoDiTConfig } from "./VideoDiTConfig.ts"

const { bool, finite, int, literals, nonNegativeNumber, positiveNumber, withDefault } = ConfigField

export const ditConfigSchema = (d: VideoDiTConfig) => {
  const control = Schema.Struct({
    enabled: bool(d.control.enabled),
    blocks: int(1, d.control.blocks),
    weight: nonNegativeNumber(d.control.weight),
    grayscale: bool(d.control.grayscale),
    stopGradient: bool(d.control.stopGradient),
    hintChannels: int(1, d.control.hintChannels)
  })
  const training = Schema.Struct({
    mode: literals(vdmTrainingModes, d.training.mode),
    lora: withDefault(Schema.Struct({ rank: int(1, d.training.lora.rank), alpha: positiveNumber(d.training.lora.alpha) }), {})
  })
  return Schema.Struct({
    inChannels: int(1, d.inChannels),
    patchSpatial: int(1, d.patchSpatial),
    patchTemporal: int(1, d.patchTemporal),
    width: int(1, d.width),
    depth: int(1, d.depth),
    heads: int(1, d.heads),
    mlpRatio: positiveNumber(d.mlpRatio),
    adalnLoraDim: int(0, d.adalnLoraDim),
    positionEncoding: literals(["rope3d", "sincos"], d.positionEncoding),
    rope: withDefault(
      Schema.Struct({
        extrapolation: withDefault(
          Schema.Struct({ t: positiveNumber(d.rope.extrapolation.t), h: positiveNumber(d.rope.extrapolation.h), w: positiveNumber(d.rope.extrapolation.w) }),
          {}
        ),
        temporalScale: positiveNumber(d.rope.temporalScale)
      }),
      {}
    ),
    contextDim: int(1, d.contextDim),
    codeDim: int(1, d.codeDim),
    timeScale: finite(d.timeScale),
    concatPaddingMask: bool(d.concatPaddingMask),
    causalCrossAttention: bool(d.causalCrossAttention),
    firstFrameChannels: bool(d.firstFrameChannels),
    codePositions: bool(d.codePositions),
    codeModulation: bool(d.codeModulation),
    codeQueries: int(1, d.codeQueries),
    temporalSelfAttention: literals(["full", "causal"], d.temporalSelfAttention),
    contextDropout: nonNegativeNumber(d.contextDropout),
    control: withDefault(control, {}),
    training: withDefault(training, {})
  })
}

/** Schema of the diffusion objective's settings, defaults from `d`. */
export const flowObjectiveSchema = (d: FlowObjectiveConfig) =>
  Schema.Struct({
    pMean: finite(d.pMean),
    pStd: positiveNumber(d.pStd),
    scaleSigmaByFrames: bool(d.scaleSigmaByFrames),
    conditionFrames: int(0, d.conditionFrames),
    conditionFrameTime: nonNegativeNumber(d.conditionFrameTime),
    preconditioning: literals(preconditionings, d.preconditioning ?? "rectified-flow"),
    sigmaData: positiveNumber(d.sigmaData ?? 1),
    residual: bool(d.residual ?? false),
    samplingSigmaMax: positiveNumber(d.samplingSigmaMax ?? 80),
    samplingSigmaMin: positiveNumber(d.samplingSigmaMin ?? 0.002)
  })

/** The objective schema with the authors' defaults (rectified-flow scaling, σ_data = 1, no residual). */
export const FlowObjectiveSchema = flowObjectiveSchema(defaultFlowObjective)
/** The objective schema with the mini preset's defaults (edm, σ_d 0.25, residual from the first frame). */
export const MiniFlowObjectiveSchema = flowObjectiveSchema(miniFlowObjective)
