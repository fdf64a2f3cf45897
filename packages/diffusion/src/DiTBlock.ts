/**
 * One DiT block ("FA-CA-MLP", Cosmos-Predict2): full spatio-temporal self-attention, cross-attention to the
 * code context, GELU MLP; each sub-layer is a LayerNorm (no affine) modulated per frame by AdaLN
 * (shift, scale, gate) from the frame's timestep embedding (DiT, Peebles & Xie 2023, §3.2 "adaLN-Zero").
 */
import * as tf from "@tensorflow/tfjs"
import { gelu, Linear, Module, silu, type InitContext } from "@vw2/nn"
import { DiTAttention } from "./DiTAttention.ts"
import type { RopeAngles } from "./Rope3D.ts"
import { layerNormNoAffine } from "./internal/fastOps.ts"
import type { VideoDiTConfig } from "./VideoDiTConfig.ts"

/**
 * emb [B, Tn, D] → (shift, scale, gate), each [B, Tn, 1, D]. With AdaLN-LoRA (Cosmos 2B) the modulation is a
 * D → r → 3D bottleneck plus the shared `adalnLora` [B, Tn, 3D] from the timestep embedder.
 */
export class AdaLNModulation3 extends Module {
  readonly down: Linear | undefined
  readonly up: Linear

  constructor(init: InitContext, dim: number, loraDim: number) {
    super(init)
    if (loraDim > 0) {
      this.down = this.module("down", new Linear(init, dim, loraDim, { bias: false }))
      this.up = this.module("up", new Linear(init, loraDim, 3 * dim, { bias: false, zeroInit: true }))
    } else {
      this.down = undefined
      this.up = this.module("up", new Linear(init, dim, 3 * dim, { bias: false, zeroInit: true }))
    }
  }

  call(emb: tf.Tensor, adalnLora: tf.Tensor | undefined): tf.Tensor[] {
    return tf.tidy(() => {
      let m = silu(emb)
      if (this.down !== undefined) m = this.down.call(m)
      m = this.up.call(m)
      if (adalnLora !== undefined) m = tf.add(m, adalnLora)
      const [b, tn, d3] = m.shape as [number, number, number]
      return tf.split(tf.reshape(m, [b, tn, 1, d3]), 3, 3)
    })
  }
}

/**
 * Broadcasting without broadcast ops. tfjs's pure-JS backend runs broadcasting element-wise ops (and their
 * gradients) ~5–10× slower than same-shape ones, and `tile`'s gradient is a loop of slices; expanding with a
 * rank-1 matmul against ones is fast forward and backward on every backend.
 */

/** [B, Tn, 1, D] → [B, Tn, P, D] (each frame's vector repeated for its P patches). */
export const expandToTokens = (mods: tf.Tensor[], patches: number): tf.Tensor[] =>
  mods.map((m) => {
    if (patches === 1) return m
    const [b, tn, , d] = m.shape as [number, number, number, number]
    const expanded = tf.matMul(tf.ones([b * tn, patches, 1]), tf.reshape(m, [b * tn, 1, d])) // [B·Tn, P, D]
    return tf.reshape(expanded, [b, tn, patches, d])
  })

/** Masks for one forward pass; `undefined` = everything visible. */
export interface BlockMasks {
  /** bool [N, N] over the Tn·P video tokens */
  readonly self?: tf.Tensor
  /** bool [N, S] or [B, N, S] video tokens × context tokens */
  readonly cross?: tf.Tensor
  /** rotary angles of the self-attention (positionEncoding "rope3d") */
  readonly rope?: RopeAngles
}

const modulate = (x: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor) => tf.add(tf.mul(x, tf.add(1, scale)), shift)

export class DiTBlock extends Module {
  readonly dim: number
  readonly self_attn: DiTAttention
  readonly adaln_modulation_self_attn: AdaLNModulation3
  readonly cross_attn: DiTAttention
  readonly adaln_modulation_cross_attn: AdaLNModulation3
  readonly layer1: Linear
  readonly layer2: Linear
  readonly adaln_modulation_mlp: AdaLNModulation3

  constructor(init: InitContext, c: VideoDiTConfig, loraRank: number) {
    super(init)
    const d = c.width
    this.dim = d
    const lora = { loraRank, loraAlpha: c.training.lora.alpha }
    this.self_attn = this.module("self_attn", new DiTAttention(init, d, c.heads, lora))
    this.adaln_modulation_self_attn = this.module("adaln_modulation_self_attn", new AdaLNModulation3(init, d, c.adalnLoraDim))
    this.cross_attn = this.module("cross_attn", new DiTAttention(init, d, c.heads, { ...lora, contextDim: c.contextDim }))
    this.adaln_modulation_cross_attn = this.module("adaln_modulation_cross_attn", new AdaLNModulation3(init, d, c.adalnLoraDim))
    const hidden = Math.round(d * c.mlpRatio)
    this.layer1 = this.module("layer1", new Linear(init, d, hidden, { bias: false }))
    this.layer2 = this.module("layer2", new Linear(init, hidden, d, { bias: false }))
    this.adaln_modulation_mlp = this.module("adaln_modulation_mlp", new AdaLNModulation3(init, d, c.adalnLoraDim))
  }

  /**
   * h [B, Tn, P, D] (Tn token frames × P patches); emb [B, Tn, D]; adalnLora [B, Tn, 3D] | undefined;
   * context [B, S, contextDim]. → [B, Tn, P, D]
   */
  call(h: tf.Tensor, emb: tf.Tensor, adalnLora: tf.Tensor | undefined, context: tf.Tensor, masks: BlockMasks): tf.Tensor {
    return tf.tidy(() => {
      const [b, tn, p, d] = h.shape as [number, number, number, number]
      const tokens = (x: tf.Tensor) => tf.reshape(x, [b, tn * p, d]) // [B, N, D]
      const frames = (x: tf.Tensor) => tf.reshape(x, [b, tn, p, d]) // [B, Tn, P, D]

      const mods = (m: AdaLNModulation3) => expandToTokens(m.call(emb, adalnLora), p) as [tf.Tensor, tf.Tensor, tf.Tensor]
      const [s1, c1, g1] = mods(this.adaln_modulation_self_attn)
      const a = this.self_attn.call(tokens(modulate(layerNormNoAffine(h), s1, c1)), undefined, masks.self, masks.rope)
      let x = tf.add(h, tf.mul(g1, frames(a)))

      const [s2, c2, g2] = mods(this.adaln_modulation_cross_attn)
      const ca = this.cross_attn.call(tokens(modulate(layerNormNoAffine(x), s2, c2)), context, masks.cross)
      x = tf.add(x, tf.mul(g2, frames(ca)))

      const [s3, c3, g3] = mods(this.adaln_modulation_mlp)
      const m = this.layer2.call(gelu(this.layer1.call(modulate(layerNormNoAffine(x), s3, c3))))
      return tf.add(x, tf.mul(g3, m))
    })
  }
}
