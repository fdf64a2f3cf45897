/**
 * dLDM checkpoint artifact ("dldm-checkpoint"): model.safetensors + config.json (the DldmConfig) and, when
 * training state is kept, optimizer.safetensors + train_state.json. Architecture always comes from here.
 */
import { AdamW, Init, asFloatState, loadCheckpoint, saveCheckpoint, type TrainState } from "@vw2/nn"
import { Schema } from "effect"
import { Dldm } from "./Dldm.ts"
import { DldmConfigSchema, validateDldmConfig, type DldmConfig } from "./DldmConfig.ts"

export async function saveDldm(dir: string, model: Dldm, extra: { optimizer?: AdamW; trainState?: TrainState } = {}): Promise<void> {
  await saveCheckpoint(dir, { model, config: model.config, ...extra, metadata: { vw2_model: "dldm" } })
}

export interface LoadedDldm {
  readonly model: Dldm
  readonly trainState: TrainState | undefined
  /** AdamW moments when the checkpoint has them */
  readonly optimizerState: ReadonlyMap<string, { shape: ReadonlyArray<number>; data: Float32Array }> | undefined
}

/** Rebuild the model from config.json and load its weights (strict: names and shapes must match). */
export async function loadDldm(dir: string): Promise<LoadedDldm> {
  const ck = await loadCheckpoint<unknown>(dir)
  let config: DldmConfig
  try {
    config = Schema.decodeUnknownSync(DldmConfigSchema)(ck.config) as DldmConfig
  } catch (e) {
    throw new Error(`${dir}/config.json is not a dLDM config: ${(e as Error).message}`)
  }
  validateDldmConfig(config, `${dir}/config.json`)
  const model = new Dldm(Init.seeded(0), config)
  try {
    model.loadStateDict(asFloatState(ck.weights, `${dir}/model.safetensors`))
  } catch (e) {
    model.dispose()
    throw new Error(`${dir}/model.safetensors: ${(e as Error).message}`)
  }
  return {
    model,
    trainState: ck.trainState,
    optimizerState: ck.optimizer === undefined ? undefined : asFloatState(ck.optimizer, `${dir}/optimizer.safetensors`)
  }
}
