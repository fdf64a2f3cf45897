/**
 * Factorised video token mixing for x [B, T, S, D] (T frames, S tokens per frame):
 * spatial attention within a frame, causal attention or causal convolution along time per token.
 * Causality: output at frame t depends only on frames ≤ t.
 */
import * as tf from "@tensorflow/tfjs"
import { Initializers, Module, type InitContext, type Param } from "../Module.ts"
import { MultiHeadAttention } from "./Attention.ts"
import { causalMask } from "./masks.ts"

/** [B, T, S, D] → [B·S, T, D] (one time series per spatial token) */
export function toTimeMajor(x: tf.Tensor): tf.Tensor3D {
  const [b, t, s, d] = x.shape as [number, number, number, number]
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b * s, t, d]) as tf.Tensor3D
}

/** [B·S, T, D] → [B, T, S, D] */
export function fromTimeMajor(x: tf.Tensor, batch: number): tf.Tensor4D {
  const [bs, t, d] = x.shape as [number, number, number]
  return tf.transpose(tf.reshape(x, [batch, bs / batch, t, d]), [0, 2, 1, 3]) as tf.Tensor4D
}

/** Self-attention within each frame: x [B, T, S, D] → [B, T, S, D]. */
export class SpatialAttention extends Module {
  readonly attn: MultiHeadAttention
  constructor(init: InitContext, dim: number, heads: number) {
    super(init)
    this.attn = this.module("attn", new MultiHeadAttention(init, dim, heads))
  }
  call(x: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, t, s, d] = x.shape as [number, number, number, number]
      return tf.reshape(this.attn.call(tf.reshape(x, [b * t, s, d])), [b, t, s, d]) as tf.Tensor4D
    })
  }
}

/** Causal self-attention along time, per spatial token: x [B, T, S, D] → [B, T, S, D]. */
export class CausalTemporalAttention extends Module {
  readonly attn: MultiHeadAttention
  constructor(init: InitContext, dim: number, heads: number) {
    super(init)
    this.attn = this.module("attn", new MultiHeadAttention(init, dim, heads))
  }
  call(x: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      const t = x.shape[1]!
      const mask = causalMask(t)
      return fromTimeMajor(this.attn.call(toTimeMajor(x), undefined, mask), x.shape[0]!)
    })
  }
}

/** Causal 1D convolution along time (left zero padding k−1), per spatial token: [B, T, S, Din] → [B, T, S, Dout]. */
export class CausalTemporalConv extends Module {
  readonly kernel: number
  readonly weight: Param // [k, Din, Dout]
  readonly bias: Param

  constructor(init: InitContext, inDim: number, outDim: number, kernel: number) {
    super(init)
    this.kernel = kernel
    this.weight = this.param("weight", [kernel, inDim, outDim], Initializers.normal(1 / Math.sqrt(kernel * inDim)))
    this.bias = this.param("bias", [outDim], Initializers.zeros)
  }

  call(x: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      const b = x.shape[0]!
      const seq = toTimeMajor(x) // [B·S, T, Din]
      const padded = tf.pad(seq, [[0, 0], [this.kernel - 1, 0], [0, 0]]) // causal: only past frames enter
      const y = tf.add(tf.conv1d(padded, this.weight.v as tf.Tensor3D, 1, "valid"), this.bias.v)
      return fromTimeMajor(y, b)
    })
  }
}
