/**
 * The video DiT's typed config (one object, saved in every checkpoint) and its two presets.
 * Architecture after the Cosmos-Predict2 DiT the VideoWorld 2 release fine-tunes ("FA-CA-MLP" blocks with
 * AdaLN(-LoRA) per frame, QK-RMSNorm, bias-free projections, GELU MLP), plus the paper's switches.
 */

/** Ablation (e) of the paper: how the VDM's base weights train. */
export type VdmTrainingMode = "random" | "frozen" | "lora" | "full"
export const vdmTrainingModes: ReadonlyArray<VdmTrainingMode> = ["random", "frozen", "lora", "full"]

/** Temporal structure of the DiT's own self-attention. */
export type TemporalSelfAttention = "full" | "causal"

/** How tokens know where they are: Cosmos's 3D RoPE, or additive fixed 3D sin/cos (cheaper on pure JS). */
export type PositionEncoding = "rope3d" | "sincos"

export interface ControlBranchConfig {
  /** ControlNet-like branch on/off (ablation: "+ControlNet") */
  readonly enabled: boolean
  /** number of leading base blocks copied into the branch */
  readonly blocks: number
  /** scale of the zero-initialised branch outputs (authors' code: 0.5) */
  readonly weight: number
  /** hint made grayscale before it enters (authors' code: on) */
  readonly grayscale: boolean
  /** hint detached: no gradient into its source (ablation: "+stop-grad"; authors' code: on) */
  readonly stopGradient: boolean
  /** channels of the hint video as given (3: RGB low-fi decoder output) */
  readonly hintChannels: number
}

export interface LoraConfig {
  /** adapter rank on the attention projections (used when mode = "lora") */
  readonly rank: number
  /** adapter scale numerator: update = (alpha / rank) · x·A·B */
  readonly alpha: number
}

export interface VideoDiTConfig {
  /** channels of the diffused signal (3: pixels in the mini setting; 16: Cosmos tokenizer latents) */
  readonly inChannels: number
  /** pixels (or latents) per spatial patch side */
  readonly patchSpatial: number
  /** frames per temporal patch */
  readonly patchTemporal: number
  /** model width (Cosmos model_channels); keep it above the values of one patch (patchSpatial² · patchTemporal ·
   * inChannels): the velocity target ε − x0 carries per-value noise that a narrower token cannot represent,
   * and samples then stay noisy */
  readonly width: number
  readonly depth: number
  readonly heads: number
  /** MLP hidden = mlpRatio · width */
  readonly mlpRatio: number
  /** AdaLN-LoRA bottleneck (Cosmos 2B: 256); 0 = plain AdaLN (one Linear per modulation) */
  readonly adalnLoraDim: number
  /** cross-attention context width (Cosmos: 1024, the T5 width the codes replace) */
  readonly contextDim: number
  /** width of one code vector before the projection to contextDim (FSQ: number of levels, 4) */
  readonly codeDim: number
  readonly positionEncoding: PositionEncoding
  /** rope3d: NTK extrapolation ratios per axis and the temporal position scale (Cosmos: base_fps / fps) */
  readonly rope: { readonly extrapolation: { readonly t: number; readonly h: number; readonly w: number }; readonly temporalScale: number }
  /** network time = t · timeScale (Cosmos rectified_flow_t_scaling_factor: 1) */
  readonly timeScale: number
  /** an all-zero padding-mask channel is concatenated to the input (Cosmos concat_padding_mask: on) */
  readonly concatPaddingMask: boolean
  /** frame t attends only to codes visible at t (paper: on; released config: off) */
  readonly causalCrossAttention: boolean
  /** the clean first frame is also concatenated to every frame's input channels (ours; Cosmos video2world:
   * off, the first frame is only a clean frame of the sequence, reached through attention) */
  readonly firstFrameChannels: boolean
  /** fixed sin/cos features of each code's transition (in frames, its first visible frame) and query slot are
   * added to the projected codes, so attention can tell which transition a code describes (ours; authors:
   * off, the codes replace position-free T5 embeddings) */
  readonly codePositions: boolean
  /** the codes also modulate each frame's AdaLN (added to its timestep embedding, DiT-style class conditioning):
   * the latest transition visible at that frame and the sum of all visible ones, through a zero-initialised
   * Linear, so the joint stage starts at the pretrained function. Causal as the cross-attention mask. Ours
   * (authors: cross-attention only); measured at the mini preset, cross-attention alone did not learn to read
   * the codes within the joint stage's CPU budget */
  readonly codeModulation: boolean
  /** codes per transition (the dLDM's N queries); fixes the modulation Linear's input width */
  readonly codeQueries: number
  /** the DiT's spatio-temporal self-attention: "full" (Cosmos) or block-causal in time */
  readonly temporalSelfAttention: TemporalSelfAttention
  /** probability of dropping the whole code context for a training sample (enables CFG) */
  readonly contextDropout: number
  readonly control: ControlBranchConfig
  readonly training: { readonly mode: VdmTrainingMode; readonly lora: LoraConfig }
}

/** The 2B Cosmos-Predict2 DiT at 480p, 93 frames (24 latent frames of the 4×8×8 tokenizer), fine-tuned fully. */
export const paperDiT: VideoDiTConfig = {
  inChannels: 16,
  patchSpatial: 2,
  patchTemporal: 1,
  width: 2048,
  depth: 28,
  heads: 16,
  mlpRatio: 4,
  adalnLoraDim: 256,
  positionEncoding: "rope3d",
  // video2world feeds 16 fps against the RoPE's base 24 fps
  rope: { extrapolation: { t: 1, h: 1, w: 1 }, temporalScale: 1.5 },
  contextDim: 1024,
  codeDim: 4,
  timeScale: 1,
  concatPaddingMask: true,
  causalCrossAttention: true,
  firstFrameChannels: false,
  codePositions: false,
  codeModulation: false,
  codeQueries: 4,
  temporalSelfAttention: "full",
  contextDropout: 0.2,
  // the hint is tokenizer latents here: the paper's grayscale conversion happens in pixel space, before the tokenizer
  control: { enabled: true, blocks: 3, weight: 0.5, grayscale: false, stopGradient: true, hintChannels: 16 },
  training: { mode: "full", lora: { rank: 16, alpha: 16 } }
}

/** The video geometry the paper preset is declared for (not needed to build the network). */
export const paperVideo = { frames: 93, latentFrames: 24, height: 480, width: 832, latentHeight: 60, latentWidth: 104 } as const

/** MiniCraft 32×32 RGB in pixel space, tiny width and depth, so a training step is cheap even on the pure-JS backend. */
export const miniDiT: VideoDiTConfig = {
  inChannels: 3,
  // 4×4×3 = 48 values per token, below the width: with the rectified-flow target (ε − x0) the network must pass
  // per-pixel noise through, which an 8×8×3 = 192-value patch cannot squeeze through a 64-wide token
  patchSpatial: 4,
  patchTemporal: 1,
  width: 64,
  depth: 2,
  heads: 4,
  mlpRatio: 2,
  adalnLoraDim: 0,
  positionEncoding: "sincos",
  rope: { extrapolation: { t: 1, h: 1, w: 1 }, temporalScale: 1 },
  contextDim: 64,
  codeDim: 4,
  timeScale: 1000,
  concatPaddingMask: false,
  causalCrossAttention: true,
  // the first frame as input channels: each token sees what its patch looked like at frame 0 (measured: without
  // it the mini DiT's x0 error stayed above repeat-the-first-frame)
  firstFrameChannels: true,
  codePositions: true,
  codeModulation: true,
  codeQueries: 4,
  temporalSelfAttention: "full",
  contextDropout: 0.1,
  control: { enabled: true, blocks: 1, weight: 0.5, grayscale: true, stopGradient: true, hintChannels: 3 },
  training: { mode: "full", lora: { rank: 4, alpha: 4 } }
}

export const ditPresets = { paper: paperDiT, mini: miniDiT } as const
export type DiTPresetName = keyof typeof ditPresets

/** Throws with the config path of the first invalid field. */
export const validateDiTConfig = (c: VideoDiTConfig, path = "dit"): void => {
  const positiveInt = (v: number, key: string) => {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${path}.${key}: expected an integer ≥ 1, got ${v}`)
  }
  for (const key of ["inChannels", "patchSpatial", "patchTemporal", "width", "depth", "heads", "contextDim", "codeDim", "codeQueries"] as const) {
    positiveInt(c[key], key)
  }
  if (c.width % c.heads !== 0) throw new Error(`${path}.width: ${c.width} must be divisible by ${path}.heads (${c.heads})`)
  if ((c.width / c.heads) % 2 !== 0) throw new Error(`${path}.heads: head width ${c.width / c.heads} must be even`)
  if (!(c.mlpRatio > 0)) throw new Error(`${path}.mlpRatio: expected > 0, got ${c.mlpRatio}`)
  if (!Number.isInteger(c.adalnLoraDim) || c.adalnLoraDim < 0) throw new Error(`${path}.adalnLoraDim: expected an integer ≥ 0, got ${c.adalnLoraDim}`)
  if (!(c.contextDropout >= 0 && c.contextDropout < 1)) throw new Error(`${path}.contextDropout: expected 0 ≤ p < 1, got ${c.contextDropout}`)
  if (c.positionEncoding !== "rope3d" && c.positionEncoding !== "sincos") {
    throw new Error(`${path}.positionEncoding: expected "rope3d" or "sincos", got ${JSON.stringify(c.positionEncoding)}`)
  }
  if (c.positionEncoding === "rope3d") {
    const hd = c.width / c.heads
    const h = Math.floor(hd / 6) * 2
    if (h < 2 || hd - 2 * h < 2) throw new Error(`${path}.heads: head width ${hd} is too small for rope3d (needs ≥ 12)`)
  }
  if (c.codePositions && (c.contextDim < 4 || c.contextDim % 2 !== 0)) {
    throw new Error(`${path}.codePositions: needs an even contextDim ≥ 4 for its sin/cos features, got contextDim ${c.contextDim}`)
  }
  if (c.temporalSelfAttention !== "full" && c.temporalSelfAttention !== "causal") {
    throw new Error(`${path}.temporalSelfAttention: expected "full" or "causal", got ${JSON.stringify(c.temporalSelfAttention)}`)
  }
  if (c.control.enabled) {
    if (!Number.isInteger(c.control.blocks) || c.control.blocks < 1 || c.control.blocks > c.depth) {
      throw new Error(`${path}.control.blocks: expected 1 ≤ blocks ≤ depth (${c.depth}), got ${c.control.blocks}`)
    }
    positiveInt(c.control.hintChannels, "control.hintChannels")
    if (c.control.grayscale && c.control.hintChannels !== 3) {
      throw new Error(`${path}.control.grayscale: needs an RGB hint (hintChannels 3), got hintChannels ${c.control.hintChannels}`)
    }
    if (!(c.control.weight >= 0)) throw new Error(`${path}.control.weight: expected ≥ 0, got ${c.control.weight}`)
  }
  if (!(vdmTrainingModes as ReadonlyArray<string>).includes(c.training.mode)) {
    throw new Error(`${path}.training.mode: expected one of ${vdmTrainingModes.join(", ")}, got ${JSON.stringify(c.training.mode)}`)
  }
  if (c.training.mode === "lora") positiveInt(c.training.lora.rank, "training.lora.rank")
}
