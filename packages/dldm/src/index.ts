/**
 * @vw2/dldm — the dynamics-enhanced latent dynamics model of VideoWorld 2 (docs/paper.md "dLDM").
 *
 * ```ts
 * const dldm = new Dldm(Init.seeded(seed), miniPreset)        // or paperPreset (Init.meta() to count)
 * const codes = dldm.encode(video)                             // [B, T, H, W, 3] in [0,1] → int32 [B, K−1, N]
 * const lowFi = dldm.decodeLowFi(firstFrame, codes)            // → [B, 1 + tc·(K−1), H, W, 3] in [0,1]
 * ```
 * Stages: `warmupStage` (video-dataset → dldm-checkpoint), `dldmStage` (+ vdm-checkpoint → dldm- and
 * vdm-checkpoint), `openxCotrainStage` (Craft + Open-X mixture), `tokenizeStage` (→ code-dataset);
 * `paperStageConfigs` / `miniStageConfigs` for experiment files; `scripts/step-times.ts` measures them.
 */
export * from "./DldmConfig.ts"
export * from "./VideoBlock.ts"
export * from "./Encoder.ts"
export * from "./QFormer.ts"
export * from "./LowFiDecoder.ts"
export * from "./ConvUNetDecoder.ts"
export * from "./FlowWarp.ts"
export * from "./LatentNorm.ts"
export * from "./Dldm.ts"
export * from "./PatchTransform.ts"
export * from "./checkpoint.ts"
export * from "./train/optim.ts"
export * from "./train/data.ts"
export * from "./train/augment.ts"
export * from "./stages/common.ts"
export * from "./stages/WarmupStage.ts"
export * from "./stages/TorchWarmupStage.ts"
export * from "./stages/TokenizeStage.ts"
export * from "./train/joint.ts"
export * from "./stages/JointStage.ts"
export * from "./presets.ts"
