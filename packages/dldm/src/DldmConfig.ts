/**
 * The dLDM's typed config (docs/paper.md "dLDM" + "Facts from the authors' released code"). One object describes
 * the model at every size; `paper` and `mini` are presets. Saved as config.json in every checkpoint; later
 * stages take the architecture from the checkpoint, never from their own config.
 */
import { Schema } from "effect"
import { PositiveInt, withDefault } from "./internal/schema.ts"

export interface TransformerWidth {
  /** token width */
  readonly width: number
  /** number of blocks */
  readonly depth: number
  readonly heads: number
  /** MLP hidden = mlpRatio · width */
  readonly mlpRatio: number
}

/**
 * The low-fidelity decoder. "tokens": the authors' structure (f_0 repeated over time, causal cross-attention to
 * the codes, transformer widths above). "conv-unet" (ours, ConvUNetDecoder.ts): renders each transition's
 * frames from the previous frame, FiLM-conditioned on that transition's codes, with a gated copy output —
 * at mini widths the token decoder ignores its codes (issue 13, reference/), this one reads them.
 */
export interface DecoderConfig extends TransformerWidth {
  readonly kind: "tokens" | "conv-unet"
  /** conv-unet: base channels (level i has channels·min(2^i, 4)) */
  readonly channels: number
  /** conv-unet: down-sampling levels (each halves the frame) */
  readonly levels: number
  /** conv-unet: "gated" x̂ = g·x_prev + (1−g)·rgb (copies static pixels exactly) or "residual" x̂ = x_prev + Δ */
  readonly output: "gated" | "residual"
  /**
   * conv-unet: std of Gaussian noise on the teacher-forced previous frame in training (reference's --aug),
   * so the decoder tolerates its own imperfect frames when decodeLowFi chains them
   */
  readonly inputNoise: number
}

export interface DldmConfig {
  /** clip length T; must be 1 + temporalCompression·k (the first frame is its own latent frame, causal-VAE style) */
  readonly frames: number
  readonly height: number
  readonly width: number
  /** "haar": orthonormal 3D Haar transform of each patch before the embedding (the authors' encoder); "linear": raw pixels */
  readonly patching: "haar" | "linear"
  /** frames per latent frame (authors: 4) */
  readonly temporalCompression: number
  /** pixels per latent token side (authors: 16) */
  readonly spatialCompression: number
  /** how tokens mix along time: causal attention, or a causal temporal convolution (kernel `temporalKernel`) */
  readonly temporalMixing: "attention" | "conv"
  readonly temporalKernel: number
  readonly encoder: TransformerWidth
  /**
   * Ours, not the authors' (0 in the paper preset): gain g of extra encoder input tokens made of the pixel
   * differences x_t − x_{t−1} of each latent frame's patch (own linear embedding, added to the patch token).
   * Causal (frame t and t−1 only). At mini widths the transition's change is a few pixels of a 384-value
   * patch; handing it to the encoder explicitly (as the PyTorch reference's conv encoder does, g = 4) keeps
   * the codes from describing appearance only.
   */
  readonly frameDiff: number
  /** learnable queries per transition (paper: N = 4) */
  readonly queries: number
  /**
   * Q-Former over the token maps of latent frames t−1 and t (authors: depth 2, 4 heads); width = encoder width.
   * `context`: "pair" (authors) attends to the two token maps; "pair-diff" (ours) also to their difference
   * f_t − f_{t−1}, so the queries read what changed directly instead of comparing two maps through attention.
   * `queryInit`: std of the learnable queries' initialisation (0.02, BLIP-2 style). At mini width the
   * attention outputs dwarf 0.02-sized queries, the N queries stay copies of each other and the N codes per
   * transition are one code (measured: slot correlation 1.00); a unit-scale start keeps them apart.
   */
  readonly qformer: { readonly depth: number; readonly heads: number; readonly context: "pair" | "pair-diff"; readonly queryInit: number }
  /** FSQ levels (paper: [8,5,5,5] → 1000 codes) */
  readonly fsqLevels: ReadonlyArray<number>
  readonly decoder: DecoderConfig
  /**
   * Ours, not the authors' (token decoder only): the decoder predicts the change from frame 0 (x̂_t = x_0 + d_t/2) instead of
   * whole frames. At mini widths f_0 cannot carry the appearance, so without it the low-fi video is mostly
   * wrong colours; with it the decoder's capacity and the codes go to motion. Off in the paper preset.
   */
  readonly firstFrameSkip: boolean
  /**
   * Ours, not the authors' (needs firstFrameSkip): the decoder also predicts a per-pixel flow that warps
   * frame 0 (x̂_t = warp(x_0, flow_t) + d_t/2). Measured (NOTES-collapse.md): at mini widths a token decoder
   * does not learn to render motion even from perfect codes, so the codes collapse; moving frame 0's pixels
   * is motion in one step, and codes that tell where things go pay off at once. Off in the paper preset.
   */
  readonly flowWarp: boolean
  /**
   * Ours, not the authors' ("none" in the paper preset): "batch" standardises the pre-FSQ latents with batch
   * statistics in training and running ones at inference (LatentNorm.ts). Measured (NOTES-collapse.md):
   * without it the mini latents drift into tanh saturation and one FSQ index before the decoder reads them.
   */
  readonly latentNorm: "none" | "batch"
  /**
   * Low-fi reconstruction objective of warm-up and joint stage: "l1" (authors; LPIPS is the warm-up stage's
   * own term) or "mse" (ours: the gated conv decoder learns faster under MSE — measured on MiniCraft,
   * test own-code L1 .0193 vs .0239 after 400 steps). Both in [−1, 1] pixel units.
   */
  readonly reconstructionLoss: "l1" | "mse"
}

/** Quantities derived from a config. */
export interface DldmGeometry {
  /** K = 1 + (T − 1) / temporalCompression */
  readonly latentFrames: number
  /** K − 1 */
  readonly transitions: number
  readonly rows: number
  readonly cols: number
  /** tokens per latent frame S = rows·cols */
  readonly tokensPerFrame: number
  /** tc·s·s·3 */
  readonly patchDim: number
  /** (K − 1)·N FSQ indices per clip */
  readonly codesPerClip: number
  readonly vocabulary: number
}

export function geometry(c: DldmConfig): DldmGeometry {
  const tc = c.temporalCompression
  const s = c.spatialCompression
  const latentFrames = 1 + (c.frames - 1) / tc
  const rows = c.height / s
  const cols = c.width / s
  return {
    latentFrames,
    transitions: latentFrames - 1,
    rows,
    cols,
    tokensPerFrame: rows * cols,
    patchDim: tc * s * s * 3,
    codesPerClip: (latentFrames - 1) * c.queries,
    vocabulary: c.fsqLevels.reduce((a, b) => a * b, 1)
  }
}

/** Throws with the config path of the first inconsistency. */
export function validateDldmConfig(c: DldmConfig, where = "dldm.model"): void {
  const fail = (path: string, msg: string): never => {
    throw new Error(`${where}.${path}: ${msg}`)
  }
  const isPow2 = (n: number) => Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0
  if (!Number.isInteger(c.frames) || c.frames < 1) fail("frames", `must be a positive integer, got ${c.frames}`)
  if ((c.frames - 1) % c.temporalCompression !== 0) {
    fail("frames", `T − 1 = ${c.frames - 1} must be divisible by temporalCompression ${c.temporalCompression} (e.g. T = ${1 + c.temporalCompression * 2})`)
  }
  if (c.frames < 1 + c.temporalCompression) fail("frames", `need at least two latent frames (one transition): T ≥ ${1 + c.temporalCompression}`)
  if (c.height % c.spatialCompression !== 0 || c.width % c.spatialCompression !== 0) {
    fail("spatialCompression", `${c.spatialCompression} must divide height ${c.height} and width ${c.width}`)
  }
  if (c.patching === "haar" && (!isPow2(c.temporalCompression) || !isPow2(c.spatialCompression))) {
    fail("patching", `"haar" needs power-of-two compressions, got temporal ${c.temporalCompression}, spatial ${c.spatialCompression}`)
  }
  for (const [name, t] of [["encoder", c.encoder], ["decoder", c.decoder]] as const) {
    if (t.width % t.heads !== 0) fail(`${name}.width`, `${t.width} must be divisible by heads ${t.heads}`)
  }
  if (c.encoder.width % c.qformer.heads !== 0) fail("qformer.heads", `encoder width ${c.encoder.width} must be divisible by ${c.qformer.heads}`)
  if (!Number.isInteger(c.queries) || c.queries < 1) fail("queries", `must be ≥ 1, got ${c.queries}`)
  if (c.decoder.kind === "conv-unet") {
    if (c.flowWarp || c.firstFrameSkip) fail("decoder.kind", `"conv-unet" renders from the previous frame itself; set flowWarp and firstFrameSkip to false (token-decoder options)`)
    const div = 2 ** c.decoder.levels
    if (c.height % div !== 0 || c.width % div !== 0) fail("decoder.levels", `${c.decoder.levels} levels need height and width divisible by ${div}`)
    if (c.decoder.inputNoise < 0) fail("decoder.inputNoise", `must be ≥ 0, got ${c.decoder.inputNoise}`)
  }
  if (c.flowWarp && !c.firstFrameSkip) fail("flowWarp", "warping frame 0 needs firstFrameSkip: true (the residual is added to the warped frame 0)")
  c.fsqLevels.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 2) fail(`fsqLevels[${i}]`, `expected integer ≥ 2, got ${l}`)
  })
}

/**
 * Paper scale: 93-frame clips at 480×832 (Cosmos 480p, 16 fps, 5 s) → 24 latent frames of 30×52 tokens, 23 transitions ×
 * 4 queries = 92 indices, vocabulary 1000. Compression, Haar patching, Q-Former depth/heads, N and FSQ are the
 * authors'. Their encoder/decoder are conv + attention (Cosmos-tokenizer family); we build transformer
 * blocks of the same token grid with widths giving the same ~10⁸-parameter magnitude (the released config's
 * exact channel widths are not in the digest).
 */
export const paperPreset: DldmConfig = {
  frames: 93,
  height: 480,
  width: 832,
  patching: "haar",
  temporalCompression: 4,
  spatialCompression: 16,
  temporalMixing: "attention",
  temporalKernel: 3,
  encoder: { width: 512, depth: 8, heads: 8, mlpRatio: 4 },
  frameDiff: 0,
  queries: 4,
  qformer: { depth: 2, heads: 4, context: "pair", queryInit: 0.02 },
  fsqLevels: [8, 5, 5, 5],
  decoder: { kind: "tokens", width: 512, depth: 8, heads: 8, mlpRatio: 4, channels: 64, levels: 4, output: "gated", inputNoise: 0 },
  firstFrameSkip: false,
  flowWarp: false,
  latentNorm: "none",
  reconstructionLoss: "l1"
}

/**
 * MiniCraft scale: 9 frames of 32×32 → 5 latent frames of 4×4 tokens, 4 transitions × 4 queries = 16 indices;
 * tiny widths so one training step of the pure-JS backend takes well under a second.
 */
export const miniPreset: DldmConfig = {
  frames: 9,
  height: 32,
  width: 32,
  patching: "haar",
  temporalCompression: 2,
  spatialCompression: 8,
  temporalMixing: "attention",
  temporalKernel: 2,
  encoder: { width: 32, depth: 2, heads: 4, mlpRatio: 2 },
  // frame differences into the encoder and the Q-Former, unit-scale queries (issue 13): without them the codes
  // collapse on MiniCraft v2 (held-out perplexity 6.4 → 117, step probe 1.6× → 2.6× chance, the 4 slots
  // correlation 1.00 → 0.8–0.98; scripts/warmup-probe.ts and scripts/slot-stats.ts, seed 0, 4 train episodes per task)
  frameDiff: 4,
  queries: 4,
  qformer: { depth: 2, heads: 4, context: "pair-diff", queryInit: 1 },
  fsqLevels: [8, 5, 5, 5],
  // conv U-Net on the previous frame (issue 13): the token decoder at this width ignores its codes
  // channels 8: the decoder is ~85 % of a warm-up step; 16 doubles it for no clear gain at 400 steps
  decoder: { kind: "conv-unet", width: 32, depth: 2, heads: 4, mlpRatio: 2, channels: 8, levels: 3, output: "gated", inputNoise: 0.02 },
  firstFrameSkip: false,
  flowWarp: false,
  latentNorm: "batch",
  reconstructionLoss: "mse"
}

export const dldmPresets = { paper: paperPreset, mini: miniPreset } as const

// ---- Schema (stage configs embed the model config; every field defaults to the mini preset) ----


const widthSchema = (d: TransformerWidth) =>
  Schema.Struct({
    width: withDefault(PositiveInt, d.width),
    depth: withDefault(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)), d.depth),
    heads: withDefault(PositiveInt, d.heads),
    mlpRatio: withDefault(Schema.Finite.check(Schema.isGreaterThan(0)), d.mlpRatio)
  })

export const DldmConfigSchema = Schema.Struct({
  frames: withDefault(PositiveInt, miniPreset.frames),
  height: withDefault(PositiveInt, miniPreset.height),
  width: withDefault(PositiveInt, miniPreset.width),
  patching: withDefault(Schema.Literals(["haar", "linear"]), miniPreset.patching),
  temporalCompression: withDefault(PositiveInt, miniPreset.temporalCompression),
  spatialCompression: withDefault(PositiveInt, miniPreset.spatialCompression),
  temporalMixing: withDefault(Schema.Literals(["attention", "conv"]), miniPreset.temporalMixing),
  temporalKernel: withDefault(PositiveInt, miniPreset.temporalKernel),
  encoder: withDefault(widthSchema(miniPreset.encoder), miniPreset.encoder),
  frameDiff: withDefault(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)), miniPreset.frameDiff),
  queries: withDefault(PositiveInt, miniPreset.queries),
  qformer: withDefault(
    Schema.Struct({
      depth: withDefault(PositiveInt, miniPreset.qformer.depth),
      heads: withDefault(PositiveInt, miniPreset.qformer.heads),
      context: withDefault(Schema.Literals(["pair", "pair-diff"]), miniPreset.qformer.context),
      queryInit: withDefault(Schema.Finite.check(Schema.isGreaterThan(0)), miniPreset.qformer.queryInit)
    }),
    miniPreset.qformer
  ),
  fsqLevels: withDefault(Schema.Array(Schema.Int.check(Schema.isGreaterThanOrEqualTo(2))), [...miniPreset.fsqLevels]),
  decoder: withDefault(
    Schema.Struct({
      ...widthSchema(miniPreset.decoder).fields,
      kind: withDefault(Schema.Literals(["tokens", "conv-unet"]), miniPreset.decoder.kind),
      channels: withDefault(PositiveInt, miniPreset.decoder.channels),
      levels: withDefault(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)), miniPreset.decoder.levels),
      output: withDefault(Schema.Literals(["gated", "residual"]), miniPreset.decoder.output),
      inputNoise: withDefault(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)), miniPreset.decoder.inputNoise)
    }),
    miniPreset.decoder
  ),
  firstFrameSkip: withDefault(Schema.Boolean, miniPreset.firstFrameSkip),
  flowWarp: withDefault(Schema.Boolean, miniPreset.flowWarp),
  latentNorm: withDefault(Schema.Literals(["none", "batch"]), miniPreset.latentNorm),
  reconstructionLoss: withDefault(Schema.Literals(["l1", "mse"]), miniPreset.reconstructionLoss)
})
