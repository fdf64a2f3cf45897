/**
 * The "ar-checkpoint" artifact: `model.safetensors` + `config.json` holding the full architecture, the
 * instruction vocabulary and the code layout of the dLDM whose codes the model was trained on.
 */
import type { ArArchitecture } from "./ArConfig.ts"
import { ArTransformer } from "./ArTransformer.ts"
import type { CodeDatasetInfo } from "./CodeDataset.ts"
import type { InstructionVocabulary } from "./InstructionTokenizer.ts"
import { asFloatState, Init, loadCheckpoint, saveCheckpoint } from "./internal/nn.ts"

export interface ArCheckpointConfig {
  readonly format: "vw2-ar/1"
  readonly arch: ArArchitecture
  readonly vocabulary: InstructionVocabulary
  readonly codes: CodeDatasetInfo
}

export const saveArCheckpoint = (dir: string, model: ArTransformer, config: Omit<ArCheckpointConfig, "format" | "arch">) =>
  saveCheckpoint<ArCheckpointConfig>(dir, { model, config: { format: "vw2-ar/1", arch: model.arch, ...config } })

export const loadArCheckpoint = async (dir: string): Promise<{ model: ArTransformer; config: ArCheckpointConfig }> => {
  const loaded = await loadCheckpoint<ArCheckpointConfig>(dir)
  if (loaded.config.format !== "vw2-ar/1") throw new Error(`${dir}/config.json: not an AR checkpoint (format ${JSON.stringify(loaded.config.format)})`)
  const model = new ArTransformer(Init.seeded(0), loaded.config.arch)
  model.loadStateDict(asFloatState(loaded.weights, `${dir}/model.safetensors`))
  return { model, config: loaded.config }
}
