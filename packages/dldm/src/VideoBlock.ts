/**
 * One factorised spatio-temporal transformer block over video tokens x [B, K, S, D]
 * (K latent frames, S tokens per frame), pre-norm residual:
 *   x += SpatialAttn(LN x)          within each latent frame
 *   x += CausalTemporal(LN x)       along time per token (attention or conv), frame k sees frames ≤ k
 *   x += CrossAttn(LN x, context)   optional, with a [K·S, L] mask (the decoder's causal access to codes)
 *   x += MLP(LN x)
 */
import * as tf from "@tensorflow/tfjs"
import {
  CausalTemporalAttention,
  CausalTemporalConv,
  LayerNorm,
  Mlp,
  Module,
  MultiHeadAttention,
  SpatialAttention,
  type InitContext
} from "@vw2/nn"

export interface VideoBlockOptions {
  readonly width: number
  readonly heads: number
  readonly mlpRatio: number
  readonly temporalMixing: "attention" | "conv"
  readonly temporalKernel: number
  /** width of a cross-attention context; omit for no cross-attention */
  readonly contextDim?: number
}

export class VideoBlock extends Module {
  readonly normSpatial: LayerNorm
  readonly spatial: SpatialAttention
  readonly normTemporal: LayerNorm
  readonly temporal: CausalTemporalAttention | CausalTemporalConv
  readonly normCross: LayerNorm | undefined
  readonly cross: MultiHeadAttention | undefined
  readonly normMlp: LayerNorm
  readonly mlp: Mlp

  constructor(init: InitContext, o: VideoBlockOptions) {
    super(init)
    const d = o.width
    this.normSpatial = this.module("norm1", new LayerNorm(init, d))
    this.spatial = this.module("spatial", new SpatialAttention(init, d, o.heads))
    this.normTemporal = this.module("norm2", new LayerNorm(init, d))
    this.temporal = this.module(
      "temporal",
      o.temporalMixing === "attention" ? new CausalTemporalAttention(init, d, o.heads) : new CausalTemporalConv(init, d, d, o.temporalKernel)
    )
    if (o.contextDim !== undefined) {
      this.normCross = this.module("norm_cross", new LayerNorm(init, d))
      this.cross = this.module("cross", new MultiHeadAttention(init, d, o.heads, { contextDim: o.contextDim }))
    } else {
      this.normCross = undefined
      this.cross = undefined
    }
    this.normMlp = this.module("norm3", new LayerNorm(init, d))
    this.mlp = this.module("mlp", new Mlp(init, d, Math.round(o.mlpRatio * d)))
  }

  /** x [B, K, S, D]; context [B, L, Dc]; contextMask bool [K·S, L] → [B, K, S, D] */
  call(x: tf.Tensor4D, context?: tf.Tensor3D, contextMask?: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, k, s, d] = x.shape
      let h: tf.Tensor = tf.add(x, this.spatial.call(this.normSpatial.call(x)))
      h = tf.add(h, this.temporal.call(this.normTemporal.call(h)))
      if (this.cross !== undefined && this.normCross !== undefined) {
        if (context === undefined) throw new Error("VideoBlock: this block cross-attends and needs a context")
        const flat = tf.reshape(this.normCross.call(h), [b, k * s, d]) // tokens of all frames, frame-major
        h = tf.add(h, tf.reshape(this.cross.call(flat, context, contextMask), [b, k, s, d]))
      }
      h = tf.add(h, this.mlp.call(this.normMlp.call(h)))
      return h as tf.Tensor4D
    })
  }
}
