/**
 * The DiT's attention (Cosmos-Predict2 layout): bias-free q/k/v/output projections, RMSNorm on each head's
 * queries and keys, optional LoRA adapters on all four projections (ablation (e), "LoRA").
 */
import * as tf from "@tensorflow/tfjs"
import { Initializers, Linear, Module, RMSNorm, type InitContext, type Param } from "@vw2/nn"
import { attention, rmsNorm } from "./internal/fastOps.ts"
import { applyRope, type RopeAngles } from "./Rope3D.ts"

/** Low-rank update x·A·B·(alpha/rank); B starts at zero so the adapted layer starts equal to the base. */
export class LoraAdapter extends Module {
  readonly a: Param
  readonly b: Param
  readonly scale: number

  constructor(init: InitContext, inFeatures: number, outFeatures: number, rank: number, alpha: number) {
    super(init)
    this.a = this.param("a", [inFeatures, rank], Initializers.normal(1 / Math.sqrt(inFeatures)))
    this.b = this.param("b", [rank, outFeatures], Initializers.zeros)
    this.scale = alpha / rank
  }

  /** x [N, in] → [N, out] */
  call(x2d: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.mul(tf.matMul(tf.matMul(x2d, this.a.v as tf.Tensor2D), this.b.v as tf.Tensor2D), this.scale))
  }
}

/** A bias-free projection with an optional LoRA adapter (registered beside it as `<name>_lora`). */
const project = (linear: Linear, lora: LoraAdapter | undefined, x: tf.Tensor): tf.Tensor =>
  tf.tidy(() => {
    const y = linear.call(x)
    if (lora === undefined) return y
    const flat = tf.reshape(x, [-1, linear.inFeatures]) as tf.Tensor2D
    return tf.add(y, tf.reshape(lora.call(flat), y.shape))
  })

export interface DiTAttentionOptions {
  /** width of the keys/values' source; omit for self-attention */
  readonly contextDim?: number
  /** LoRA rank on the four projections; 0 = none */
  readonly loraRank: number
  readonly loraAlpha: number
}

export class DiTAttention extends Module {
  readonly dim: number
  readonly heads: number
  readonly headDim: number
  readonly q_proj: Linear
  readonly k_proj: Linear
  readonly v_proj: Linear
  readonly output_proj: Linear
  readonly q_norm: RMSNorm
  readonly k_norm: RMSNorm
  readonly loras: { q?: LoraAdapter; k?: LoraAdapter; v?: LoraAdapter; o?: LoraAdapter }

  constructor(init: InitContext, dim: number, heads: number, options: DiTAttentionOptions) {
    super(init)
    this.dim = dim
    this.heads = heads
    this.headDim = dim / heads
    const ctx = options.contextDim ?? dim
    this.q_proj = this.module("q_proj", new Linear(init, dim, dim, { bias: false }))
    this.q_norm = this.module("q_norm", new RMSNorm(init, this.headDim, { eps: 1e-6 }))
    this.k_proj = this.module("k_proj", new Linear(init, ctx, dim, { bias: false }))
    this.k_norm = this.module("k_norm", new RMSNorm(init, this.headDim, { eps: 1e-6 }))
    this.v_proj = this.module("v_proj", new Linear(init, ctx, dim, { bias: false }))
    this.output_proj = this.module("output_proj", new Linear(init, dim, dim, { bias: false }))
    this.loras = {}
    if (options.loraRank > 0) {
      const r = options.loraRank
      const a = options.loraAlpha
      this.loras.q = this.module("q_proj_lora", new LoraAdapter(init, dim, dim, r, a))
      this.loras.k = this.module("k_proj_lora", new LoraAdapter(init, ctx, dim, r, a))
      this.loras.v = this.module("v_proj_lora", new LoraAdapter(init, ctx, dim, r, a))
      this.loras.o = this.module("output_proj_lora", new LoraAdapter(init, dim, dim, r, a))
    }
  }

  /** [B, L, dim] → [B, H, L, headDim] */
  private heads4(x: tf.Tensor): tf.Tensor4D {
    const [b, l] = x.shape as [number, number, number]
    return tf.transpose(tf.reshape(x, [b, l, this.heads, this.headDim]), [0, 2, 1, 3]) as tf.Tensor4D
  }

  /**
   * x [B, Lq, dim]; context [B, Lk, contextDim] (omit for self-attention); mask bool [Lq, Lk] or [B, Lq, Lk]
   * (true = may attend; a query row with nothing allowed outputs zero); rope: rotary angles for
   * self-attention queries and keys (Cosmos applies them after the QK norms). → [B, Lq, dim]
   */
  call(x: tf.Tensor, context?: tf.Tensor, mask?: tf.Tensor, rope?: RopeAngles): tf.Tensor {
    return tf.tidy(() => {
      const kv = context ?? x
      let q = rmsNorm(this.heads4(project(this.q_proj, this.loras.q, x)), this.q_norm.weight!.v, this.q_norm.eps) as tf.Tensor4D
      let k = rmsNorm(this.heads4(project(this.k_proj, this.loras.k, kv)), this.k_norm.weight!.v, this.k_norm.eps) as tf.Tensor4D
      if (rope !== undefined) {
        q = applyRope(q, rope)
        k = applyRope(k, rope)
      }
      const v = this.heads4(project(this.v_proj, this.loras.v, kv))
      const o = attention(q, k, v, mask) // [B, H, Lq, hd]
      const [b, , lq] = o.shape
      const merged = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [b, lq, this.dim])
      return project(this.output_proj, this.loras.o, merged)
    })
  }
}
