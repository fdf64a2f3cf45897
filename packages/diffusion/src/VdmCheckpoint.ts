/**
 * The "vdm-checkpoint" artifact: `model.safetensors` (our names, float32), `config.json` (below), and
 * optionally `optimizer.safetensors` + `train_state.json`, written and read through @vw2/nn.
 * `prepareVdm` is how a consumer (the dLDM stage) builds its DiT on a pretrained VDM: architecture from the
 * checkpoint, switches (control branch, causal mask, training mode) from its own config.
 */
import { Init, loadCheckpoint, saveCheckpoint, type AdamW } from "@vw2/nn"
import { join } from "node:path"
import { importWeights, type ImportReport } from "./ImportWeights.ts"
import { defaultFlowObjective, validateFlowObjective, type FlowObjectiveConfig } from "./RectifiedFlow.ts"
import { VideoDiT } from "./VideoDiT.ts"
import { validateDiTConfig, type VideoDiTConfig } from "./VideoDiTConfig.ts"

export const VDM_CHECKPOINT_FORMAT = "vw2-vdm/1"

export interface VdmCheckpointConfig {
  readonly format: typeof VDM_CHECKPOINT_FORMAT
  readonly dit: VideoDiTConfig
  readonly objective: FlowObjectiveConfig
  /** the clips it trained on: frames per clip, frame step, frame size */
  readonly clip: { readonly length: number; readonly frameStep: number; readonly height: number; readonly width: number }
  /** pixel range of the videos the network models */
  readonly pixelRange: readonly [number, number]
}

/** Fields that fix the weights' shapes or meaning; a consumer must take them from the checkpoint. */
export const architectureFields = [
  "inChannels",
  "patchSpatial",
  "patchTemporal",
  "width",
  "depth",
  "heads",
  "mlpRatio",
  "adalnLoraDim",
  "positionEncoding",
  "rope",
  "contextDim",
  "codeDim",
  "timeScale",
  "concatPaddingMask",
  "firstFrameChannels",
  "codePositions"
] as const satisfies ReadonlyArray<keyof VideoDiTConfig>

export const saveVdmCheckpoint = (
  dir: string,
  dit: VideoDiT,
  meta: Omit<VdmCheckpointConfig, "format" | "dit">,
  optimizer?: AdamW
): Promise<void> =>
  saveCheckpoint<VdmCheckpointConfig>(dir, {
    model: dit,
    config: { format: VDM_CHECKPOINT_FORMAT, dit: dit.config, ...meta },
    ...(optimizer !== undefined ? { optimizer, trainState: { step: optimizer.step } } : {})
  })

export const readVdmCheckpointConfig = async (dir: string): Promise<VdmCheckpointConfig> => {
  const { config } = await loadCheckpoint<VdmCheckpointConfig>(dir)
  if (config.format !== VDM_CHECKPOINT_FORMAT) {
    throw new Error(`${join(dir, "config.json")}: format ${JSON.stringify(config.format)} is not ${VDM_CHECKPOINT_FORMAT} (is this a vdm-checkpoint?)`)
  }
  // checkpoints written before a switch existed behave as its old default
  const dit: VideoDiTConfig = {
    ...config.dit,
    positionEncoding: config.dit.positionEncoding ?? "sincos",
    rope: config.dit.rope ?? { extrapolation: { t: 1, h: 1, w: 1 }, temporalScale: 1 },
    firstFrameChannels: config.dit.firstFrameChannels ?? false,
    codePositions: config.dit.codePositions ?? false,
    codeModulation: config.dit.codeModulation ?? false,
    codeQueries: config.dit.codeQueries ?? 4
  }
  validateDiTConfig(dit, `${join(dir, "config.json")}: dit`)
  const objective: FlowObjectiveConfig = { ...defaultFlowObjective, ...config.objective }
  validateFlowObjective(objective, `${join(dir, "config.json")}: objective`)
  return { ...config, dit, objective }
}

export interface PreparedVdm {
  readonly dit: VideoDiT
  /** the config the DiT was built with (architecture from the checkpoint) */
  readonly config: VideoDiTConfig
  /** undefined when nothing was loaded (no checkpoint, or training mode "random") */
  readonly report: ImportReport | undefined
  /** architecture fields where the caller's config differed and the checkpoint's value was taken */
  readonly overridden: ReadonlyArray<string>
}

/**
 * Build the DiT for a run on top of a pretrained VDM. Training mode "random" is ablation (e)'s "random
 * init": the checkpoint's architecture is used but its weights are not loaded. The control branch, absent
 * from a vdm-pretrain checkpoint, starts as a copy of the loaded base blocks.
 */
export const prepareVdm = async (wanted: VideoDiTConfig, checkpointDir: string | undefined, seed: number): Promise<PreparedVdm> => {
  if (checkpointDir === undefined) return { dit: new VideoDiT(Init.seeded(seed), wanted), config: wanted, report: undefined, overridden: [] }
  const saved = await readVdmCheckpointConfig(checkpointDir)
  const overridden = architectureFields.filter((k) => JSON.stringify(saved.dit[k]) !== JSON.stringify(wanted[k]))
  const config: VideoDiTConfig = { ...wanted, ...Object.fromEntries(architectureFields.map((k) => [k, saved.dit[k]])) }
  const dit = new VideoDiT(Init.seeded(seed), config)
  if (config.training.mode === "random") return { dit, config, report: undefined, overridden }
  const report = await importWeights(dit, join(checkpointDir, "model.safetensors"), { layout: "vw2", strict: false })
  // new in the consumer: the control branch, LoRA adapters and the code paths (vdm-pretrain sees no codes)
  const missingBase = report.missing.filter((n) => !n.startsWith("control.") && !n.includes("_lora.") && !n.startsWith("code_proj.") && !n.startsWith("code_modulation."))
  if (missingBase.length > 0) throw new Error(`${checkpointDir}: the checkpoint lacks base DiT parameters [${missingBase.slice(0, 6).join(", ")}]`)
  return { dit, config, report, overridden }
}
