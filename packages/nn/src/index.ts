/**
 * @vw2/nn — a small module system on raw tfjs ops and the shared pieces of every model.
 * - `Module` (hierarchical param names, `Init.seeded(seed)` / `Init.meta()` for counting without memory,
 *   `namedParams`, `trainableVariables`, `stateDict`/`loadStateDict`, `dispose`), `countParams`.
 * - Layers: Linear, LayerNorm, RMSNorm, Mlp (GELU), MultiHeadAttention (+ causal/block/arbitrary masks),
 *   patchify/unpatchify + 3D Haar, SpatialAttention, CausalTemporalAttention/Conv, positional encodings,
 *   AdaLN modulation. Ops: gelu, silu, stopGradient, l1/mse, grayscale. FSQ (authors' exact formula).
 * - Training: AdamW, warmupCosine/warmupConstant, clipByGlobalNorm, Ema, computeGradients/trainStep.
 * - I/O: safetensors read/write, checkpoint directories (model.safetensors + config.json [+ optimizer]).
 * - The training harness every training stage runs (training/Harness.ts): steps, schedule, clipping, EMA,
 *   metrics, interruption, mid-stage checkpoints and resume.
 * - Backend: selectBackend() (owned by the native engineer, src/backend).
 */
export * from "./Rng.ts"
export * from "./Module.ts"
export * from "./ops.ts"
export * from "./Fsq.ts"
export * from "./layers/Linear.ts"
export * from "./layers/Norm.ts"
export * from "./layers/Mlp.ts"
export * from "./layers/masks.ts"
export * from "./layers/fused.ts"
export * from "./layers/Attention.ts"
export * from "./layers/Patchify.ts"
export * from "./layers/Temporal.ts"
export * from "./layers/Positional.ts"
export * from "./layers/AdaLN.ts"
export * from "./optim/AdamW.ts"
export * from "./optim/schedule.ts"
export * from "./optim/clip.ts"
export * from "./optim/Ema.ts"
export * from "./optim/step.ts"
export * from "./io/safetensors.ts"
export * from "./io/checkpoint.ts"
export * from "./training/Harness.ts"
export * from "./training/Resumable.ts"
export * from "./training/ResumeCheckpoint.ts"
export * from "./backend/index.ts"
