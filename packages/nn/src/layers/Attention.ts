/**
 * Multi-head attention (self and cross) with optional boolean masks (causal, block-causal, arbitrary).
 * Parameter names follow `attn.wq / wk / wv / wo`.
 */
import * as tf from "@tensorflow/tfjs"
import { Module, type InitContext } from "../Module.ts"
import { Linear } from "./Linear.ts"

/**
 * softmax(q kᵀ/√d + mask) v.  q [B, H, Lq, d], k/v [B, H, Lk, d], mask bool [Lq, Lk] | [B, Lq, Lk].
 * A query row with no allowed key outputs zeros (so "sees nothing" really means nothing leaks in).
 */
export function scaledDotProductAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask?: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => {
    const d = q.shape[3]
    let scores: tf.Tensor = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)) // [B, H, Lq, Lk]
    if (mask === undefined) return tf.matMul(tf.softmax(scores), v) as tf.Tensor4D
    const [lq, lk] = [q.shape[2], k.shape[2]]
    const m4 =
      mask.rank === 2 ? tf.reshape(mask, [1, 1, lq, lk]) : mask.rank === 3 ? tf.expandDims(mask, 1) : undefined
    if (m4 === undefined || m4.shape[2] !== lq || m4.shape[3] !== lk) {
      throw new Error(`attention mask shape [${mask.shape.join(", ")}] must be [${lq}, ${lk}] or [B, ${lq}, ${lk}]`)
    }
    const allowed = tf.cast(m4, "float32") // [1|B, 1, Lq, Lk]
    scores = tf.add(scores, tf.mul(tf.sub(1, allowed), -1e9))
    const probs = tf.mul(tf.softmax(scores), allowed) // zero exactly where masked; all-masked rows → 0
    return tf.matMul(probs, v) as tf.Tensor4D
  })
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

  /** [B, L, dim] → [B, H, L, headDim] */
  private split(x: tf.Tensor): tf.Tensor4D {
    const [b, l] = x.shape as [number, number, number]
    return tf.transpose(tf.reshape(x, [b, l, this.heads, this.headDim]), [0, 2, 1, 3]) as tf.Tensor4D
  }

  /**
   * x [B, Lq, dim]; context [B, Lk, contextDim] (omit for self-attention); mask bool [Lq, Lk] | [B, Lq, Lk].
   * → [B, Lq, dim]
   */
  call(x: tf.Tensor, context?: tf.Tensor, mask?: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      if (x.rank !== 3) throw new Error(`MultiHeadAttention: x must be [B, L, ${this.dim}], got [${x.shape.join(", ")}]`)
      const kv = context ?? x
      const q = this.split(this.wq.call(x))
      const k = this.split(this.wk.call(kv))
      const v = this.split(this.wv.call(kv))
      const o = scaledDotProductAttention(q, k, v, mask) // [B, H, Lq, hd]
      const [b, , lq] = o.shape
      const merged = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [b, lq, this.dim])
      return this.wo.call(merged) as tf.Tensor3D
    })
  }
}
