/**
 * The autoregressive transformer of VideoWorld 2 (paper §3, "Autoregressive transformer"): input =
 * instruction tokens, the clip's start frame as patch embeddings, and the latent-code stream (history clips
 * then the current clip); output = the next code token. A GPT: pre-norm blocks, causal self-attention,
 * learned positions. Reads top-down: attention with a KV cache → block → model.
 *
 * Sequence (length L = textTokens + patches + stream):
 *   [t_1 .. t_Lt][p_1 .. p_P][BOS, codes of history clips each + NEXT, codes of current clip, NEXT|EOS]
 * Logits are produced for stream positions only: logits at stream index i predict stream token i+1.
 */
import * as tf from "@tensorflow/tfjs"
import { type ArArchitecture, maxSequenceLength, outputVocab, patchCount, specialTokens } from "./ArConfig.ts"
import { gatherRows } from "./internal/gatherRows.ts"
import { Initializers, LayerNorm, Linear, maskFrom, Mlp, Module, type InitContext, type Param, scaledDotProductAttention } from "./internal/nn.ts"

/** Keys and values of every earlier position, per block: [B, heads, Lpast, headDim]. */
export interface KvCache {
  readonly layers: ReadonlyArray<{ readonly k: tf.Tensor4D; readonly v: tf.Tensor4D }>
  /** positions already in the cache */
  readonly length: number
}

export const disposeCache = (cache: KvCache | undefined): void => {
  cache?.layers.forEach((l) => {
    l.k.dispose()
    l.v.dispose()
  })
}

/** Causal self-attention that can extend a cache: new queries see every cached key and earlier new keys. */
class CausalSelfAttention extends Module {
  readonly heads: number
  readonly headDim: number
  readonly wq: Linear
  readonly wk: Linear
  readonly wv: Linear
  readonly wo: Linear

  constructor(init: InitContext, dim: number, heads: number) {
    super(init)
    if (dim % heads !== 0) throw new Error(`ar.model: dim ${dim} is not divisible by heads ${heads}`)
    this.heads = heads
    this.headDim = dim / heads
    this.wq = this.module("wq", new Linear(init, dim, dim))
    this.wk = this.module("wk", new Linear(init, dim, dim))
    this.wv = this.module("wv", new Linear(init, dim, dim))
    this.wo = this.module("wo", new Linear(init, dim, dim))
  }

  /** [B, L, dim] → [B, H, L, hd] */
  private split(x: tf.Tensor): tf.Tensor4D {
    const [b, l] = x.shape as [number, number, number]
    return tf.transpose(tf.reshape(x, [b, l, this.heads, this.headDim]), [0, 2, 1, 3]) as tf.Tensor4D
  }

  /** x [B, L, dim], past k/v [B, H, P, hd] → output [B, L, dim] and the extended k/v [B, H, P+L, hd] */
  call(x: tf.Tensor3D, past?: { k: tf.Tensor4D; v: tf.Tensor4D }): { out: tf.Tensor3D; k: tf.Tensor4D; v: tf.Tensor4D } {
    return tf.tidy(() => {
      const [b, l, dim] = x.shape
      const q = this.split(this.wq.call(x))
      const kNew = this.split(this.wk.call(x))
      const vNew = this.split(this.wv.call(x))
      const k = past === undefined ? kNew : (tf.concat([past.k, kNew], 2) as tf.Tensor4D)
      const v = past === undefined ? vNew : (tf.concat([past.v, vNew], 2) as tf.Tensor4D)
      const p = k.shape[2] - l
      const mask = maskFrom(l, p + l, (qi, ki) => ki <= p + qi) // new query qi sits at absolute position p+qi
      const o = scaledDotProductAttention(q, k, v, mask) // [B, H, L, hd]
      const merged = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [b, l, dim])
      return { out: this.wo.call(merged) as tf.Tensor3D, k, v }
    })
  }
}

class Block extends Module {
  readonly norm1: LayerNorm
  readonly attn: CausalSelfAttention
  readonly norm2: LayerNorm
  readonly mlp: Mlp

  constructor(init: InitContext, dim: number, heads: number, mlpRatio: number) {
    super(init)
    this.norm1 = this.module("norm1", new LayerNorm(init, dim))
    this.attn = this.module("attn", new CausalSelfAttention(init, dim, heads))
    this.norm2 = this.module("norm2", new LayerNorm(init, dim))
    this.mlp = this.module("mlp", new Mlp(init, dim, dim * mlpRatio))
  }

  call(x: tf.Tensor3D, past?: { k: tf.Tensor4D; v: tf.Tensor4D }): { out: tf.Tensor3D; k: tf.Tensor4D; v: tf.Tensor4D } {
    return tf.tidy(() => {
      const a = this.attn.call(this.norm1.call(x) as tf.Tensor3D, past)
      const h = tf.add(x, a.out)
      const out = tf.add(h, this.mlp.call(this.norm2.call(h))) as tf.Tensor3D
      return { out, k: a.k, v: a.v }
    })
  }
}

/** Embedding lookup: ids [B, L] → [B, L, dim] (row gather with a cheap gradient, see gatherRows). */
export const embedTokens = (table: tf.Tensor2D, ids: Int32Array, batch: number): tf.Tensor3D =>
  tf.tidy(() => tf.reshape(gatherRows(table, ids), [batch, ids.length / batch, table.shape[1]]) as tf.Tensor3D)

/** Frame [B, H, W, 3] → patches [B, P, patch·patch·3], row-major over the patch grid. */
export const patchify = (frames: tf.Tensor4D, patch: number): tf.Tensor3D =>
  tf.tidy(() => {
    const [b, h, w, c] = frames.shape
    const gh = h / patch
    const gw = w / patch
    const grid = tf.reshape(frames, [b, gh, patch, gw, patch, c]) // split both spatial axes
    return tf.reshape(tf.transpose(grid, [0, 1, 3, 2, 4, 5]), [b, gh * gw, patch * patch * c]) as tf.Tensor3D
  })

export interface ArInputs {
  /** instruction token ids [B, maxTextTokens] */
  readonly text: tf.Tensor2D
  /** the clip's start frame in [0, 1], [B, H, W, 3] */
  readonly frame: tf.Tensor4D
  /** code-stream token ids [B, S] (S ≥ 1, starting with BOS) */
  readonly stream: tf.Tensor2D
}

export class ArTransformer extends Module {
  readonly arch: ArArchitecture
  readonly textEmbed: Param
  readonly codeEmbed: Param
  readonly position: Param
  readonly patchEmbed: Linear
  readonly blocks: ReadonlyArray<Block>
  readonly normOut: LayerNorm
  readonly head: Linear
  readonly prefixLength: number
  readonly tokens: ReturnType<typeof specialTokens>

  constructor(init: InitContext, arch: ArArchitecture) {
    super(init)
    this.arch = arch
    this.tokens = specialTokens(arch.codeVocab)
    this.prefixLength = arch.maxTextTokens + patchCount(arch)
    const std = Initializers.normal(0.02)
    this.textEmbed = this.param("text_embed", [arch.textVocab, arch.dim], std)
    this.codeEmbed = this.param("code_embed", [arch.codeVocab + 4, arch.dim], std)
    this.position = this.param("position", [maxSequenceLength(arch), arch.dim], std)
    this.patchEmbed = this.module("patch_embed", new Linear(init, arch.patchSize * arch.patchSize * 3, arch.dim))
    this.blocks = this.moduleList("blocks", Array.from({ length: arch.depth }, () => new Block(init, arch.dim, arch.heads, arch.mlpRatio)))
    this.normOut = this.module("norm_out", new LayerNorm(init, arch.dim))
    this.head = this.module("head", new Linear(init, arch.dim, outputVocab(arch.codeVocab), { bias: false }))
  }

  /** [text][patches] embeddings [B, prefixLength, dim] (no positions yet). */
  private prefixEmbeddings(text: tf.Tensor2D, frame: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, lt] = text.shape
      if (lt !== this.arch.maxTextTokens) throw new Error(`ar: text must be [B, ${this.arch.maxTextTokens}] token ids, got [${text.shape.join(", ")}]`)
      const [fb, h, w] = frame.shape
      if (fb !== b || h !== this.arch.height || w !== this.arch.width) {
        throw new Error(`ar: frame must be [${b}, ${this.arch.height}, ${this.arch.width}, 3], got [${frame.shape.join(", ")}]`)
      }
      const t = embedTokens(this.textEmbed.v as tf.Tensor2D, text.dataSync() as Int32Array, b) // [B, Lt, dim]
      const p = this.patchEmbed.call(patchify(frame, this.arch.patchSize)) // [B, P, dim]
      return tf.concat([t, p], 1) as tf.Tensor3D
    })
  }

  private streamEmbeddings(stream: tf.Tensor2D): tf.Tensor3D {
    return embedTokens(this.codeEmbed.v as tf.Tensor2D, tf.tidy(() => tf.cast(stream, "int32")).dataSync() as Int32Array, stream.shape[0])
  }

  /** Run the blocks over x [B, L, dim] placed at absolute positions start..start+L−1, extending `cache`. */
  private run(x: tf.Tensor3D, cache: KvCache | undefined): { hidden: tf.Tensor3D; cache: KvCache } {
    const start = cache?.length ?? 0
    const l = x.shape[1]
    if (start + l > this.position.shape[0]!) {
      throw new Error(`ar: sequence of ${start + l} tokens exceeds the model's maximum ${this.position.shape[0]} (raise ar.model.historyClips or shorten the input)`)
    }
    const layers: Array<{ k: tf.Tensor4D; v: tf.Tensor4D }> = []
    const hidden = tf.tidy(() => {
      let h = tf.add(x, tf.slice(this.position.v, [start, 0], [l, this.arch.dim])) as tf.Tensor3D
      this.blocks.forEach((block, i) => {
        const r = block.call(h, cache?.layers[i])
        layers.push({ k: tf.keep(r.k), v: tf.keep(r.v) })
        h = r.out
      })
      return this.normOut.call(h) as tf.Tensor3D
    })
    return { hidden, cache: { layers, length: start + l } }
  }

  /** Training forward: logits [B, S, outVocab] over the stream positions. */
  call(inputs: ArInputs): tf.Tensor3D {
    return tf.tidy(() => {
      const x = tf.concat([this.prefixEmbeddings(inputs.text, inputs.frame), this.streamEmbeddings(inputs.stream)], 1) as tf.Tensor3D
      const { hidden, cache } = this.run(x, undefined)
      disposeCache(cache)
      const s = inputs.stream.shape[1]
      return this.head.call(tf.slice(hidden, [0, this.prefixLength, 0], [-1, s, -1])) as tf.Tensor3D
    })
  }

  /**
   * Training forward restricted to some stream positions: `rows` indexes the flattened [B, S] stream
   * (b·S + i); returns their logits [R, outVocab]. The loss only needs the positions that have a target,
   * so the output head and the softmax run on those alone.
   */
  logitsAt(inputs: ArInputs, rows: Int32Array): tf.Tensor2D {
    return tf.tidy(() => {
      const x = tf.concat([this.prefixEmbeddings(inputs.text, inputs.frame), this.streamEmbeddings(inputs.stream)], 1) as tf.Tensor3D
      const { hidden, cache } = this.run(x, undefined)
      disposeCache(cache)
      const [b, s] = inputs.stream.shape
      const stream = tf.reshape(tf.slice(hidden, [0, this.prefixLength, 0], [-1, s, -1]), [b * s, this.arch.dim]) as tf.Tensor2D
      return this.head.call(gatherRows(stream, rows)) as tf.Tensor2D
    })
  }

  /** Prefill the cache with prefix + stream; logits of the last position [B, outVocab]. */
  prefill(inputs: ArInputs): { logits: tf.Tensor2D; cache: KvCache } {
    const x = tf.tidy(() => tf.concat([this.prefixEmbeddings(inputs.text, inputs.frame), this.streamEmbeddings(inputs.stream)], 1) as tf.Tensor3D)
    const { hidden, cache } = this.run(x, undefined)
    x.dispose()
    const logits = tf.tidy(() => this.head.call(tf.squeeze(tf.slice(hidden, [0, hidden.shape[1] - 1, 0], [-1, 1, -1]), [1])) as tf.Tensor2D)
    hidden.dispose()
    return { logits, cache }
  }

  /** Append stream tokens [B, n] to a cache (consumed: do not reuse it); logits of the last one. */
  extend(tokens: tf.Tensor2D, cache: KvCache): { logits: tf.Tensor2D; cache: KvCache } {
    const x = this.streamEmbeddings(tokens)
    const { hidden, cache: next } = this.run(x, cache)
    x.dispose()
    disposeCache(cache)
    const logits = tf.tidy(() => this.head.call(tf.squeeze(tf.slice(hidden, [0, hidden.shape[1] - 1, 0], [-1, 1, -1]), [1])) as tf.Tensor2D)
    hidden.dispose()
    return { logits, cache: next }
  }
}
