/**
 * The video diffusion transformer of VideoWorld 2 (paper §3, "VDM"; authors' code: Cosmos-Predict2 DiT with
 * a ControlNet branch and the codes as cross-attention context).
 *
 * Axis legend: B batch, T input frames, H×W pixels (or latents), C channels, Tn = T/pt token frames,
 * P = (H/ps)(W/ps) patches per frame, N = Tn·P video tokens, D width, K transitions, Q codes per transition,
 * S = K·Q context tokens.
 *
 * Small parts first: time embedding → positions → masks → ControlBranch → VideoDiT.
 */
import * as tf from "@tensorflow/tfjs"
import {
  blockMask,
  Init,
  Linear,
  Module,
  patchify,
  RMSNorm,
  silu,
  sinusoidalEmbedding,
  stopGradient,
  unpatchify,
  type InitContext,
  type PatchSize
} from "@vw2/nn"
import { DiTBlock, expandToTokens, type BlockMasks } from "./DiTBlock.ts"
import { layerNormNoAffine } from "./internal/fastOps.ts"
import { grayscale3 } from "./internal/grayscale.ts"
import { rope3dAngles } from "./Rope3D.ts"
import type { VelocityNet } from "./RectifiedFlow.ts"
import { validateDiTConfig, type VideoDiTConfig } from "./VideoDiTConfig.ts"

/**
 * The codes as the DiT's cross-attention context. `codes` [B, K, Q, codeDim] are FSQ code vectors, Q per
 * transition; `visibleFrom[k]` is the first DiT input frame allowed to see transition k's codes (causal
 * cross-attention). Use `codeVisibility` to build it.
 */
export interface CodeContext {
  readonly codes: tf.Tensor
  readonly visibleFrom: ReadonlyArray<number>
}

/**
 * First DiT frame that may see each transition's codes. Transition k joins latent frame k and k+1 of a
 * causal encoder with temporal compression c (latent 0 = frame 0; latent j ≥ 1 = frames (j−1)c+1 … jc), so
 * its codes describe frames from (k·c + 1) on. With c = 1 this is "frame t sees transitions ≤ t−1"
 * (0-based), i.e. the transitions that lead up to frame t.
 */
export const codeVisibility = (transitions: number, temporalCompression = 1): number[] =>
  Array.from({ length: transitions }, (_, k) => k * temporalCompression + 1)

/**
 * [1, K·Q, dim] fixed features of each context token: sin/cos of its transition's first visible frame (half
 * the width) and of its query slot (the other half).
 */
export const codePositionFeatures = (visibleFrom: ReadonlyArray<number>, queries: number, dim: number): tf.Tensor =>
  tf.tidy(() => {
    const half = 2 * Math.floor(dim / 4)
    const n = visibleFrom.length * queries
    const frame = sinusoidalEmbedding(Array.from({ length: n }, (_, i) => visibleFrom[Math.floor(i / queries)]!), half)
    const slot = sinusoidalEmbedding(Array.from({ length: n }, (_, i) => i % queries), dim - half)
    return tf.expandDims(tf.concat([frame, slot], 1), 0)
  })

/**
 * The parameters through which the codes act (`VideoDiT.namedParams` names): the code projection, the code
 * modulation, and each block's cross-attention with its AdaLN gate (base and control branch). After
 * `vdm-pretrain` (no codes) the cross-attention gates are still at their zero init: this is the part of the DiT
 * that starts from nothing in the joint stage (the joint stage's `codePathLrScale`).
 */
export const readsCodes = (name: string): boolean =>
  name.startsWith("code_proj.") || name.startsWith("code_modulation.") || /(^|\.)(cross_attn|adaln_modulation_cross_attn)\./.test(name)

/** Everything the network reads in one call. */
export interface DiTInput {
  /** [B, T, H, W, C] network input ((1 − t)·x_σ, conditioning frames clean) */
  readonly x: tf.Tensor
  /** [B, T] network time t per frame */
  readonly time: tf.Tensor
  /** [B, T] 1 on clean conditioning frames */
  readonly conditionMask: tf.Tensor
  /** the code context; omitted = unconditional (zero context) */
  readonly context?: CodeContext
  /** [B, T, H, W, hintChannels] low-fidelity motion video for the control branch (in [−1, 1]) */
  readonly hint?: tf.Tensor
  /** [B] 1 = keep the context, 0 = drop it (classifier-free-guidance training) */
  readonly contextKeep?: tf.Tensor
  /** [B] 1 = keep the hint, 0 = drop it (the control branch's residuals zeroed: as if no hint were given);
   * hint dropout in the joint stage, so the codes must carry the motion for those samples */
  readonly hintKeep?: tf.Tensor
}

/** Sinusoidal timestep features → MLP (Cosmos `t_embedder`): [B, Tn] → emb [B, Tn, D] (+ AdaLN-LoRA [B, Tn, 3D]). */
export class TimestepEmbedder extends Module {
  readonly dim: number
  readonly linear_1: Linear
  readonly linear_2: Linear
  readonly useAdalnLora: boolean

  constructor(init: InitContext, dim: number, useAdalnLora: boolean) {
    super(init)
    this.dim = dim
    this.useAdalnLora = useAdalnLora
    this.linear_1 = this.module("linear_1", new Linear(init, dim, dim, { bias: !useAdalnLora }))
    this.linear_2 = this.module("linear_2", new Linear(init, dim, useAdalnLora ? 3 * dim : dim, { bias: false }))
  }

  call(time: tf.Tensor): { emb: tf.Tensor; adalnLora: tf.Tensor | undefined } {
    const [b, tn] = time.shape as [number, number]
    const features = tf.tidy(() => tf.reshape(sinusoidalEmbedding(tf.reshape(time, [-1]) as tf.Tensor1D, this.dim), [b, tn, this.dim]))
    const out = tf.tidy(() => this.linear_2.call(silu(this.linear_1.call(features))))
    if (this.useAdalnLora) return { emb: features, adalnLora: out }
    features.dispose()
    return { emb: out, adalnLora: undefined }
  }
}

/** Fixed 3D sinusoidal positions (frame, row, column) → [Tn·P, D]; widths split 2⌊D/6⌋ ×2 for rows/cols, the rest frames. */
export const videoPositions = (frames: number, rows: number, cols: number, dim: number): tf.Tensor2D =>
  tf.tidy(() => {
    const dr = 2 * Math.floor(dim / 6)
    const dt = dim - 2 * dr
    const n = frames * rows * cols
    const idx = (f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i))
    const t = sinusoidalEmbedding(idx((i) => Math.floor(i / (rows * cols))), dt)
    const r = sinusoidalEmbedding(idx((i) => Math.floor(i / cols) % rows), dr)
    const c = sinusoidalEmbedding(idx((i) => i % cols), dr)
    return tf.concat([t, r, c], 1) as tf.Tensor2D
  })

/** Final AdaLN (shift, scale) + projection back to patch values (Cosmos `final_layer`, zero-initialised). */
export class FinalLayer extends Module {
  readonly adaln_down: Linear | undefined
  readonly adaln_up: Linear
  readonly linear: Linear

  constructor(init: InitContext, dim: number, outFeatures: number, loraDim: number) {
    super(init)
    this.adaln_down = loraDim > 0 ? this.module("adaln_down", new Linear(init, dim, loraDim, { bias: false })) : undefined
    this.adaln_up = this.module("adaln_up", new Linear(init, loraDim > 0 ? loraDim : dim, 2 * dim, { bias: false, zeroInit: true }))
    this.linear = this.module("linear", new Linear(init, dim, outFeatures, { bias: false, zeroInit: true }))
  }

  /** h [B, Tn, P, D], emb [B, Tn, D] → [B, Tn, P, outFeatures] */
  call(h: tf.Tensor, emb: tf.Tensor, adalnLora: tf.Tensor | undefined): tf.Tensor {
    return tf.tidy(() => {
      let m = silu(emb)
      if (this.adaln_down !== undefined) m = this.adaln_down.call(m)
      m = this.adaln_up.call(m)
      const [b, tn, d2] = m.shape as [number, number, number]
      if (adalnLora !== undefined) m = tf.add(m, tf.slice(adalnLora, [0, 0, 0], [b, tn, d2]))
      const [shift, scale] = expandToTokens(tf.split(tf.reshape(m, [b, tn, 1, d2]), 2, 3), h.shape[2]!) as [tf.Tensor, tf.Tensor]
      return this.linear.call(tf.add(tf.mul(layerNormNoAffine(h), tf.add(1, scale)), shift))
    })
  }
}

/** Shared, per-call state the base and the control branch both read. */
interface Prepared {
  readonly emb: tf.Tensor
  readonly adalnLora: tf.Tensor | undefined
  readonly context: tf.Tensor
  readonly masks: BlockMasks
  readonly positions: tf.Tensor
}

/**
 * ControlNet branch (paper §3 "+ControlNet"; authors' code): copies of the patch embedding and the first k
 * base blocks read the input plus the embedded hint; each copy's output goes through a zero-initialised
 * Linear, × control weight, and is added to the matching base block's output.
 */
export class ControlBranch extends Module {
  readonly config: VideoDiTConfig
  readonly x_embedder: Linear
  readonly hint_embedder: Linear
  readonly blocks: ReadonlyArray<DiTBlock>
  readonly zero_linears: ReadonlyArray<Linear>

  constructor(init: InitContext, c: VideoDiTConfig, inPatchDim: number) {
    super(init)
    this.config = c
    const p = c.patchSpatial * c.patchSpatial * c.patchTemporal
    this.x_embedder = this.module("x_embedder", new Linear(init, inPatchDim, c.width, { bias: false }))
    this.hint_embedder = this.module("hint_embedder", new Linear(init, c.control.hintChannels * p, c.width, { bias: false }))
    this.blocks = this.moduleList("blocks", Array.from({ length: c.control.blocks }, () => new DiTBlock(init, c, 0)))
    this.zero_linears = this.moduleList(
      "zero_linears",
      Array.from({ length: c.control.blocks }, () => new Linear(init, c.width, c.width, { zeroInit: true }))
    )
  }

  /** Copy the patch embedding and the first k blocks from the base (LoRA adapters are not copied). */
  initFromBase(base: VideoDiT): void {
    const baseParams = base.paramMap()
    for (const [name, p] of this.namedParams()) {
      if (name.startsWith("hint_embedder.") || name.startsWith("zero_linears.")) continue
      const source = baseParams.get(name)
      if (source === undefined) throw new Error(`ControlBranch.initFromBase: base has no parameter "${name}"`)
      p.assign(source.v, `control.${name}`)
    }
  }

  /** Per-block residuals (already × control weight), each [B, Tn, P, D]. */
  residuals(xPatches: tf.Tensor, hintPatches: tf.Tensor, s: Prepared): tf.Tensor[] {
    const out: tf.Tensor[] = []
    let h = tf.tidy(() => tf.add(tf.add(this.x_embedder.call(xPatches), this.hint_embedder.call(hintPatches)), s.positions))
    this.blocks.forEach((block, i) => {
      const next = block.call(h, s.emb, s.adalnLora, s.context, s.masks)
      h.dispose()
      h = next
      out.push(tf.tidy(() => tf.mul(this.zero_linears[i]!.call(h), this.config.control.weight)))
    })
    h.dispose()
    return out
  }
}

export class VideoDiT extends Module {
  readonly config: VideoDiTConfig
  readonly patch: PatchSize
  readonly x_embedder: Linear
  readonly t_embedder: TimestepEmbedder
  readonly t_embedding_norm: RMSNorm
  readonly code_proj: Linear
  readonly code_modulation: Linear | undefined
  readonly blocks: ReadonlyArray<DiTBlock>
  readonly final_layer: FinalLayer
  readonly control: ControlBranch | undefined

  /** Build from a config; `Init.meta()` records shapes only (parameter counting at paper scale). */
  constructor(init: InitContext, config: VideoDiTConfig) {
    validateDiTConfig(config)
    super(init)
    this.config = config
    const c = config
    this.patch = { t: c.patchTemporal, s: c.patchSpatial }
    const p = c.patchSpatial * c.patchSpatial * c.patchTemporal
    // + first frame (+ condition-mask, + padding-mask) channels
    const inPatchDim = (c.inChannels * (c.firstFrameChannels ? 2 : 1) + 1 + (c.concatPaddingMask ? 1 : 0)) * p
    const loraRank = c.training.mode === "lora" ? c.training.lora.rank : 0
    this.x_embedder = this.module("x_embedder", new Linear(init, inPatchDim, c.width, { bias: false }))
    this.t_embedder = this.module("t_embedder", new TimestepEmbedder(init, c.width, c.adalnLoraDim > 0))
    this.t_embedding_norm = this.module("t_embedding_norm", new RMSNorm(init, c.width, { eps: 1e-6 }))
    this.code_proj = this.module("code_proj", new Linear(init, c.codeDim, c.contextDim))
    this.code_modulation = c.codeModulation
      ? this.module("code_modulation", new Linear(init, 2 * c.codeQueries * c.codeDim, c.width, { bias: false, zeroInit: true }))
      : undefined
    this.blocks = this.moduleList("blocks", Array.from({ length: c.depth }, () => new DiTBlock(init, c, loraRank)))
    this.final_layer = this.module("final_layer", new FinalLayer(init, c.width, p * c.inChannels, c.adalnLoraDim))
    this.control = c.control.enabled ? this.module("control", new ControlBranch(init, c, inPatchDim)) : undefined
    if (this.control !== undefined && !init.meta) this.control.initFromBase(this)
    this.applyTrainingMode()
  }

  /**
   * Ablation (e): which base parameters train. "random"/"full": all; "frozen": none of the base;
   * "lora": only the LoRA adapters. The code projection and the control branch always train (they are
   * new in VideoWorld 2 and carry the codes' and the hint's signal).
   */
  applyTrainingMode(): void {
    const mode = this.config.training.mode
    const alwaysTrains = (name: string) => name.startsWith("control.") || name.startsWith("code_proj.") || name.startsWith("code_modulation.")
    for (const [name, p] of this.namedParams()) {
      const trainable =
        mode === "full" || mode === "random" || alwaysTrains(name) || (mode === "lora" && name.includes("_lora."))
      p.trainable = trainable
      if (p.allocated) p.v.trainable = trainable
    }
  }

  /** Trainable variables as a name-sorted list (for optimizers and `tf.variableGrads`). */
  trainableList(): tf.Variable[] {
    return [...this.trainableVariables().values()]
  }

  /**
   * [B, T, H, W, C] + [B, T] condition mask → patch tokens [B, Tn, P, inPatchDim]. With firstFrameChannels
   * frame 0 of x, where it is a clean condition (zero where it is not), is concatenated to every frame.
   */
  private inputPatches(x: tf.Tensor, conditionMask: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [b, t, h, w] = x.shape as [number, number, number, number, number]
      const channels = [x]
      if (this.config.firstFrameChannels) {
        const first = tf.mul(tf.slice(x, [0, 0], [-1, 1]), tf.reshape(tf.slice(conditionMask, [0, 0], [-1, 1]), [b, 1, 1, 1, 1])) // [B, 1, H, W, C]
        channels.push(t === 1 ? first : tf.concat(new Array<tf.Tensor>(t).fill(first), 1))
      }
      channels.push(tf.add(tf.zeros([b, t, h, w, 1]), tf.reshape(conditionMask, [b, t, 1, 1, 1])))
      if (this.config.concatPaddingMask) channels.push(tf.zeros([b, t, h, w, 1]))
      return patchify(tf.concat(channels, 4), this.patch)
    })
  }

  /** The hint as the control branch sees it: grayscale and detached per config. */
  prepareHint(hint: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const c = this.config.control
      if (hint.shape[4] !== c.hintChannels) {
        throw new Error(`VideoDiT hint: expected ${c.hintChannels} channels (dit.control.hintChannels), got [${hint.shape.join(", ")}]`)
      }
      const gray = c.grayscale ? grayscale3(hint) : hint
      return c.stopGradient ? stopGradient(gray) : gray
    })
  }

  /** bool masks for the token layout of this call (undefined = unrestricted). */
  private masks(tn: number, p: number, s: number, visibleFrom: ReadonlyArray<number> | undefined, codesPer: number): BlockMasks {
    const frameOfToken = Array.from({ length: tn * p }, (_, i) => Math.floor(i / p))
    const self = this.config.temporalSelfAttention === "causal" ? blockMask(frameOfToken, frameOfToken, (q, k) => k <= q) : undefined
    let cross: tf.Tensor | undefined
    if (this.config.causalCrossAttention && visibleFrom !== undefined && s > 0) {
      const pt = this.config.patchTemporal
      const lastFrameOfToken = frameOfToken.map((j) => j * pt + pt - 1) // a token frame covers pt input frames
      const visibleOfCode = Array.from({ length: s }, (_, i) => visibleFrom[Math.floor(i / codesPer)]!)
      cross = blockMask(lastFrameOfToken, visibleOfCode, (f, v) => v <= f)
    }
    return { self, cross }
  }

  /** Projected context [B, S, contextDim] (zeros when absent: the unconditional branch of CFG). */
  private contextTokens(b: number, context: CodeContext | undefined, keep: tf.Tensor | undefined): tf.Tensor {
    return tf.tidy(() => {
      if (context === undefined) return tf.zeros([b, 1, this.config.contextDim])
      const [cb, k, q, cd] = context.codes.shape as [number, number, number, number]
      if (context.codes.rank !== 4 || cb !== b || cd !== this.config.codeDim) {
        throw new Error(`VideoDiT context.codes: expected [${b}, K, Q, ${this.config.codeDim}] (dit.codeDim), got [${context.codes.shape.join(", ")}]`)
      }
      if (context.visibleFrom.length !== k) {
        throw new Error(`VideoDiT context.visibleFrom: expected one entry per transition (${k}), got ${context.visibleFrom.length}`)
      }
      let projected = this.code_proj.call(tf.reshape(context.codes, [b, k * q, cd])) // [B, S, contextDim]
      if (this.config.codePositions) projected = tf.add(projected, codePositionFeatures(context.visibleFrom, q, this.config.contextDim))
      return keep === undefined ? projected : tf.mul(projected, tf.reshape(keep, [b, 1, 1]))
    })
  }

  /**
   * Per-token-frame code features for the AdaLN path (codeModulation) → [B, Tn, D]: [codes of the latest
   * transition visible at the token frame's last frame, sum of all visible ones] through `code_modulation`;
   * zeros before the first visible transition.
   */
  private codeEmbedding(context: CodeContext, tn: number, keep: tf.Tensor | undefined): tf.Tensor {
    return tf.tidy(() => {
      const c = this.config
      const [b, k, q, cd] = context.codes.shape as [number, number, number, number]
      if (q !== c.codeQueries) {
        throw new Error(`VideoDiT context.codes: ${q} codes per transition, dit.codeQueries is ${c.codeQueries} (codeModulation reads them all)`)
      }
      const latest = new Float32Array(tn * k)
      const visible = new Float32Array(tn * k)
      for (let j = 0; j < tn; j++) {
        const lastFrame = j * c.patchTemporal + c.patchTemporal - 1
        let newest = -1
        for (let i = 0; i < k; i++) {
          // the same visibility as the cross-attention mask (everything when causalCrossAttention is off)
          if (c.causalCrossAttention && context.visibleFrom[i]! > lastFrame) continue
          visible[j * k + i] = 1
          newest = i
        }
        if (newest >= 0) latest[j * k + newest] = 1
      }
      const select = tf.concat([tf.tensor2d(latest, [tn, k]), tf.tensor2d(visible, [tn, k])], 0) // [2·Tn, K]
      const perTransition = tf.reshape(tf.transpose(tf.reshape(context.codes, [b, k, q * cd]), [1, 0, 2]), [k, b * q * cd]) // [K, B·F]
      const picked = tf.reshape(tf.matMul(select, perTransition), [2, tn, b, q * cd]) // [latest | sum, Tn, B, F]
      const features = tf.reshape(tf.transpose(picked, [2, 1, 0, 3]), [b, tn, 2 * q * cd])
      const emb = this.code_modulation!.call(features)
      return keep === undefined ? emb : tf.mul(emb, tf.reshape(keep, [b, 1, 1]))
    })
  }

  /** The velocity F for `input` → [B, T, H, W, C]. */
  call(input: DiTInput): tf.Tensor {
    const c = this.config
    const x = input.x
    if (x.rank !== 5 || x.shape[4] !== c.inChannels) {
      throw new Error(`VideoDiT: x must be [B, T, H, W, ${c.inChannels}] (dit.inChannels), got [${x.shape.join(", ")}]`)
    }
    const [b, t, h, w] = x.shape as [number, number, number, number, number]
    if (input.hint !== undefined && this.control === undefined) {
      throw new Error("VideoDiT: a hint was given but dit.control.enabled is false")
    }
    return tf.tidy(() => {
      const xPatches = this.inputPatches(x, input.conditionMask) // [B, Tn, P, inPatchDim]
      const [, tn, p] = xPatches.shape as [number, number, number, number]
      const tokenTime = tf.mul(tf.stridedSlice(input.time, [0, 0], [b, t], [1, c.patchTemporal]), c.timeScale) // [B, Tn]
      const te = this.t_embedder.call(tokenTime)
      const rows = h / c.patchSpatial
      const cols = w / c.patchSpatial
      const positions =
        c.positionEncoding === "sincos" ? tf.reshape(videoPositions(tn, rows, cols, c.width), [1, tn, p, c.width]) : tf.zeros([1, 1, 1, c.width])
      const context = this.contextTokens(b, input.context, input.contextKeep)
      const codesPer = input.context?.codes.shape[2] ?? 1
      const masks = {
        ...this.masks(tn, p, context.shape[1]!, input.context?.visibleFrom, codesPer),
        ...(c.positionEncoding === "rope3d" ? { rope: rope3dAngles(tn, rows, cols, c.width / c.heads, c.rope) } : {})
      }
      let emb = this.t_embedding_norm.call(te.emb) // [B, Tn, D]
      if (this.code_modulation !== undefined && input.context !== undefined) emb = tf.add(emb, this.codeEmbedding(input.context, tn, input.contextKeep))
      const prepared: Prepared = { emb, adalnLora: te.adalnLora, context, masks, positions }

      const residuals =
        this.control !== undefined && input.hint !== undefined
          ? this.control.residuals(xPatches, patchify(this.prepareHint(input.hint), this.patch), prepared)
          : []
      const hintKeep = input.hintKeep === undefined ? undefined : tf.reshape(input.hintKeep, [b, 1, 1, 1])
      const dropHint = (r: tf.Tensor) => (hintKeep === undefined ? r : tf.mul(r, hintKeep))
      let hidden = tf.add(this.x_embedder.call(xPatches), positions)
      this.blocks.forEach((block, i) => {
        const next = block.call(hidden, prepared.emb, prepared.adalnLora, context, masks)
        hidden = residuals[i] !== undefined ? tf.add(next, dropHint(residuals[i]!)) : next
      })
      const out = this.final_layer.call(hidden, prepared.emb, prepared.adalnLora) // [B, Tn, P, p·C]
      return unpatchify(out, this.patch, { rows: h / c.patchSpatial, cols: w / c.patchSpatial, channels: c.inChannels })
    })
  }

  /** This network as the objective's/sampler's `VelocityNet`, with its context and hint bound. */
  velocityNet(context: CodeContext | undefined, hint: tf.Tensor | undefined, contextKeep?: tf.Tensor, hintKeep?: tf.Tensor): VelocityNet {
    return ({ x, time, conditionMask }) => this.call({ x, time, conditionMask, context, hint, contextKeep, hintKeep })
  }
}

/** Parameter count of a config without allocating anything (works at paper scale). */
export const countDiTParams = (config: VideoDiTConfig, filter?: (name: string) => boolean): number =>
  new VideoDiT(Init.meta(), config).paramCount(filter)
