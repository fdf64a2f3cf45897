/**
 * @vw2/diffusion — the video diffusion model of VideoWorld 2 (the "VDM": a Cosmos-Predict2-style DiT with a
 * ControlNet branch and the dLDM's codes as causal cross-attention context), its rectified-flow objective,
 * the Karras sampler, and the `vdm-pretrain` stage.
 *
 * Conventions: videos are channels-last tensors `[B, T, H, W, C]` with values in [−1, 1] (dataset batches are
 * [0, 1]: use `x·2 − 1`); frame 0 is the clean condition and carries no loss.
 *
 * API for the joint `dldm` stage:
 * ```ts
 * import { prepareVdm, rectifiedFlowLoss, sample, codeVisibility, miniDiT } from "@vw2/diffusion"
 *
 * // build the DiT on the vdm-pretrain checkpoint (architecture from it; switches from your config;
 * // training.mode "random" ignores its weights; the control branch starts as a copy of the base blocks)
 * const { dit } = await prepareVdm(config.dit, inputs.vdm?.dir, ctx.seed)
 * // the objective the checkpoint was trained with (residual / scalings are part of what its weights mean)
 * const { objective } = await readVdmCheckpointConfig(inputs.vdm.dir)
 *
 * // codes: FSQ code vectors [B, K transitions, Q queries, codeDim]; transition k may be seen from DiT frame
 * // codeVisibility(K, temporalCompression)[k] (causal cross-attention; dit.causalCrossAttention switches it)
 * const context = { codes, visibleFrom: codeVisibility(K, 4) }
 * // hint: the low-fi decoder's RGB output [B, T, H, W, 3] in [−1, 1]; the DiT makes it grayscale and
 * // detaches it itself (dit.control.grayscale / .stopGradient), so pass it as is
 * const { loss, mse } = rectifiedFlowLoss(dit, video, context, lowFi, { seed: step, objective })
 * // total = 10 · loss + reconstruction; train with trainStep over dit.trainableVariables() (mode-aware)
 *
 * const generated = sample(dit, firstFrame, context, lowFi, { steps: 35, cfg: 7, objective })   // [B, T, H, W, C]
 * ```
 * Switches (all config, see `VideoDiTConfig`): causalCrossAttention (default on), temporalSelfAttention
 * ("full" as Cosmos, or "causal" to make the whole network causal in time), control.{enabled, weight,
 * grayscale, stopGradient}, training.mode ("random" | "frozen" | "lora" | "full", ablation (e)),
 * positionEncoding ("rope3d" as Cosmos, "sincos" for the mini preset), firstFrameChannels and codePositions
 * (ours, mini on, paper off). Objective switches (`FlowObjectiveConfig`): preconditioning ("rectified-flow"
 * as the authors, "edm"), sigmaData, residual (diffuse the change from the first frame); `miniFlowObjective`
 * is the mini preset's, `defaultFlowObjective` the authors'. Presets: `paperDiT` (Cosmos-Predict2 2B: 2048
 * wide, 28 blocks, ~2.0B base parameters), `miniDiT` (MiniCraft 32×32, 4×4 patches, 64 wide).
 *
 * How well it denoises: `x0Error(dit, video, σ, …)` vs `repeatFirstFrameError(video)` (docs/paper.md §Components, "VDM").
 *
 * Lower level: `VideoDiT.call({ x, time, conditionMask, context, hint })` → velocity;
 * `rectifiedFlowObjective` / `sampleVideo` / `karrasSigmas` work with any `VelocityNet`;
 * `importWeights(dit, file, { layout: "vw2" | "cosmos-predict2" })` loads external safetensors;
 * `countDiTParams(paperDiT)` counts the 2B preset without allocating.
 */
export * from "./KarrasSchedule.ts"
export * from "./RectifiedFlow.ts"
export * from "./VideoDiTConfig.ts"
export * from "./DiTConfigSchema.ts"
export * from "./DiTAttention.ts"
export * from "./DiTBlock.ts"
export * from "./VideoDiT.ts"
export * from "./Objective.ts"
export * from "./ImportWeights.ts"
export * from "./VdmCheckpoint.ts"
export * from "./Rope3D.ts"
export * from "./VdmPretrainStage.ts"
export * from "./DenoiseProbe.ts"
