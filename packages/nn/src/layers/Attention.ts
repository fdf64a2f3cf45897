/**
 * Multi-head attention (self and cross) with optional boolean masks (causal, block-causal, arbitrary).
 * Parameter names follow `attn.wq / wk / wv / wo`.
 */
import * as tf from "@tensorflow/tfjs"
import { Module, type InitContext } from "../Module.ts"
import { denseBlocks, fusedOpsActive, headMajorAttention, multiHeadAttentionCore, packedSelfAttention } from "./fused.ts"
import { Linear } from "./Linear.ts"

/**
 * softmax(q kᵀ/√d + mask) v.  q [B, H, Lq, d], k/v [B, H, Lk, d], mask bool [Lq, Lk] | [B, Lq, Lk].
 * A query row with no allowed key outputs zeros (so "sees nothing" really means nothing leaks in).
 */
export function scaledDotProductAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask?: tf.Tensor): tf.Tensor4D {
  return headMajorAttention(q, k, v, mask)
}

export interface AttentionOptions {
  /** Width of the context for cross-attention (default: same as dim). */
  readonly contextDim?: number
  readonly bias?: boolean
  /** Zero-init the output projection. */
  readonly zeroOut?: boolean
}

export class MultiHeadAttention extends Module {
  readonly dim: number
  readonly heads: number
  readonly headDim: number
  readonly wq: Linear
  readonly wk: Linear
  readonly wv: Linear
  readonly wo: Linear

  constructor(init: InitContext, dim: number, heads: number, options: AttentionOptions = {}) {
    super(init)
    if (dim % heads !== 0) throw new Error(`MultiHeadAttention: dim ${dim} is not divisible by heads ${heads}`)
    this.dim = dim
    this.heads = heads
    this.headDim = dim / heads
    const ctx = options.contextDim ?? dim
    const bias = options.bias ?? true
    this.wq = this.module("wq", new Linear(init, dim, dim, { bias }))
    this.wk = this.module("wk", new Linear(init, ctx, dim, { bias }))
    this.wv = this.module("wv", new Linear(init, ctx, dim, { bias }))
    this.wo = this.module("wo", new Linear(init, dim, dim, { bias, zeroInit: options.zeroOut === true }))
  }

  /**
   * Self-attention with q, k, v from one projection op against [Wq | Wk | Wv] (denseBlocks: the parameters
   * stay wq/wk/wv, nothing is concatenated on the fused path) and the packed fused op: about half the ops of
   * three projections.
   */
  private selfAttentionPacked(x: tf.Tensor3D, mask: tf.Tensor | undefined): tf.Tensor3D {
    const ws = [this.wq.weight.v, this.wk.weight.v, this.wv.weight.v]
    const biases = [this.wq.bias, this.wk.bias, this.wv.bias]
    const bs = biases.every((p) => p !== undefined) ? biases.map((p) => p!.v) : undefined
    return packedSelfAttention(denseBlocks(x, ws, bs) as tf.Tensor3D, this.heads, mask)
  }

  /**
   * x [B, Lq, dim]; context [B, Lk, contextDim] (omit for self-attention); mask bool [Lq, Lk] | [B, Lq, Lk].
   * → [B, Lq, dim]
   */
  call(x: tf.Tensor, context?: tf.Tensor, mask?: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      if (x.rank !== 3) throw new Error(`MultiHeadAttention: x must be [B, L, ${this.dim}], got [${x.shape.join(", ")}]`)
      if (context === undefined && fusedOpsActive()) return this.wo.call(this.selfAttentionPacked(x as tf.Tensor3D, mask)) as tf.Tensor3D
      const kv = context ?? x
      // heads stay column blocks of [B, L, dim]: the fused op reads them strided, no transposes
      const q = this.wq.call(x) as tf.Tensor3D
      const k = this.wk.call(kv) as tf.Tensor3D
      const v = this.wv.call(kv) as tf.Tensor3D
      return this.wo.call(multiHeadAttentionCore(q, k, v, this.heads, mask)) as tf.Tensor3D
    })
  }
}
