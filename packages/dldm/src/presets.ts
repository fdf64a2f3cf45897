/**
 * Stage configs at the two sizes, for experiment files. `mini` is the schema defaults (MiniCraft 32×32,
 * ≈ 1 minute per stage on this CPU). `paper` declares the authors' recipe (PAPER.md table and released-code
 * facts); it is meant for GPU clusters: here it fails fast where a component is missing (LPIPS in tfjs, the
 * Cosmos tokenizer the 2B latent DiT needs), with a message naming the config field.
 */
import { paperDiT } from "@vw2/diffusion"
import type { StageConfigInput } from "@vw2/core"
import { paperPreset } from "./DldmConfig.ts"
import type { dldmStage, openxCotrainStage } from "./stages/JointStage.ts"
import type { tokenizeStage } from "./stages/TokenizeStage.ts"
import type { warmupStage } from "./stages/WarmupStage.ts"

const paperOptim = { weightDecay: 0.1, beta1: 0.9, beta2: 0.99, batchSize: 128, clipNorm: 1, schedule: "constant" } as const

export const paperStageConfigs = {
  warmup: {
    model: { ...paperPreset, fsqLevels: [...paperPreset.fsqLevels] },
    /** the paper trains "until the decoder shows hand/object motion"; no count is published */
    steps: 10_000,
    optim: { ...paperOptim, lr: 4.3e-5, warmupSteps: 2000 },
    lpipsWeight: 0.1
  } satisfies StageConfigInput<typeof warmupStage>,
  dldm: {
    steps: 100_000,
    optim: { ...paperOptim, lr: 1e-4, warmupSteps: 2000 },
    diffusionWeight: 10,
    reconstructionWeight: 1,
    dit: paperDiT
  } satisfies StageConfigInput<typeof dldmStage>,
  "openx-cotrain": {
    steps: 100_000,
    optim: { ...paperOptim, lr: 1e-4, warmupSteps: 2000 },
    diffusionWeight: 10,
    reconstructionWeight: 1,
    dit: paperDiT,
    craftWeight: 1,
    openxWeight: 1
  } satisfies StageConfigInput<typeof openxCotrainStage>,
  tokenize: { batchSize: 64 } satisfies StageConfigInput<typeof tokenizeStage>
} as const

export const miniStageConfigs = {
  /**
   * 800 steps at lr 1e-3 (≈ 3 min native): before ~400 steps the decoder does not read the codes yet, and by
   * 800 own codes beat other clips' codes (NOTES-collapse.md); 60 steps left the low-fi video a copy of frame 0.
   */
  warmup: { steps: 800, optim: { lr: 1e-3 } } satisfies StageConfigInput<typeof warmupStage>,
  dldm: {} satisfies StageConfigInput<typeof dldmStage>,
  "openx-cotrain": {} satisfies StageConfigInput<typeof openxCotrainStage>,
  tokenize: {} satisfies StageConfigInput<typeof tokenizeStage>
} as const
