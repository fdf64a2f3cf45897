/**
 * Q-Former over transitions (authors' code: one shared Q-Former, depth 2, 4 heads; N learnable queries
 * cross-attend to the token maps of latent frames t−1 and t and yield N codes per adjacent pair).
 * A learned role embedding tells the two frames apart, so the codes can carry the direction of change.
 * `context: "pair-diff"` (ours) appends the difference map f_{j+1} − f_j (third role) to the context.
 * Causality: transition j reads f_j and f_{j+1} only.
 */
import * as tf from "@tensorflow/tfjs"
import { Initializers, LayerNorm, Linear, Mlp, Module, MultiHeadAttention, type InitContext, type Param } from "@vw2/nn"

class QFormerLayer extends Module {
  readonly normSelf: LayerNorm
  readonly selfAttn: MultiHeadAttention
  readonly normQuery: LayerNorm
  readonly normContext: LayerNorm
  readonly crossAttn: MultiHeadAttention
  readonly normMlp: LayerNorm
  readonly mlp: Mlp

  constructor(init: InitContext, width: number, heads: number, mlpRatio: number) {
    super(init)
    this.normSelf = this.module("norm1", new LayerNorm(init, width))
    this.selfAttn = this.module("self_attn", new MultiHeadAttention(init, width, heads))
    this.normQuery = this.module("norm2", new LayerNorm(init, width))
    this.normContext = this.module("norm_ctx", new LayerNorm(init, width))
    this.crossAttn = this.module("cross_attn", new MultiHeadAttention(init, width, heads))
    this.normMlp = this.module("norm3", new LayerNorm(init, width))
    this.mlp = this.module("mlp", new Mlp(init, width, Math.round(mlpRatio * width)))
  }

  /** q [M, N, D], context [M, 2S | 3S, D] → [M, N, D] */
  call(q: tf.Tensor3D, context: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      let h: tf.Tensor = tf.add(q, this.selfAttn.call(this.normSelf.call(q)))
      h = tf.add(h, this.crossAttn.call(this.normQuery.call(h), this.normContext.call(context)))
      return tf.add(h, this.mlp.call(this.normMlp.call(h))) as tf.Tensor3D
    })
  }
}

export class QFormer extends Module {
  readonly queriesPerTransition: number
  readonly width: number
  readonly queries: Param // [N, D]
  readonly role: Param // [2 | 3, D]: frame t−1, frame t (, their difference)
  readonly withDiff: boolean
  readonly layers: ReadonlyArray<QFormerLayer>
  readonly normOut: LayerNorm
  readonly toCode: Linear

  constructor(
    init: InitContext,
    o: { width: number; heads: number; depth: number; queries: number; codeDim: number; mlpRatio: number; context?: "pair" | "pair-diff"; queryInit?: number }
  ) {
    super(init)
    this.queriesPerTransition = o.queries
    this.width = o.width
    this.withDiff = o.context === "pair-diff"
    this.queries = this.param("queries", [o.queries, o.width], Initializers.normal(o.queryInit ?? 0.02))
    this.role = this.param("role", [this.withDiff ? 3 : 2, o.width], Initializers.normal(0.02))
    this.layers = this.moduleList("layers", Array.from({ length: o.depth }, () => new QFormerLayer(init, o.width, o.heads, o.mlpRatio)))
    this.normOut = this.module("norm_out", new LayerNorm(init, o.width))
    this.toCode = this.module("to_code", new Linear(init, o.width, o.codeDim))
  }

  /** features [B, K, S, D] → pre-quantisation latents z [B, K−1, N, codeDim] (one set per transition). */
  call(features: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, k, s, d] = features.shape
      if (k < 2) throw new Error(`QFormer: need ≥ 2 latent frames for a transition, got ${k}`)
      const n = this.queriesPerTransition
      const f0 = tf.slice(features, [0, 0, 0, 0], [b, k - 1, s, d]) // frames 0..K−2
      const f1 = tf.slice(features, [0, 1, 0, 0], [b, k - 1, s, d]) // frames 1..K−1
      const parts = [tf.add(f0, tf.slice(this.role.v, [0, 0], [1, d])), tf.add(f1, tf.slice(this.role.v, [1, 0], [1, d]))]
      if (this.withDiff) parts.push(tf.add(tf.sub(f1, f0), tf.slice(this.role.v, [2, 0], [1, d])))
      const context = tf.reshape(tf.concat(parts, 2), [b * (k - 1), parts.length * s, d]) // one context per transition
      let q = tf.tile(tf.expandDims(this.queries.v, 0), [b * (k - 1), 1, 1]) as tf.Tensor3D // [B·(K−1), N, D]
      for (const layer of this.layers) q = layer.call(q, context as tf.Tensor3D)
      const z = this.toCode.call(this.normOut.call(q)) // [B·(K−1), N, codeDim]
      return tf.reshape(z, [b, k - 1, n, z.shape[2]!]) as tf.Tensor4D
    })
  }
}
