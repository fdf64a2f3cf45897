/**
 * Causal video encoder (docs/paper.md "dLDM": clip → features f_0..f_K, f_k sees frames ≤ k).
 * Frame 0 is its own latent frame (padded by repeating it, as causal video VAEs do); every later latent
 * frame covers `temporalCompression` frames. Tokens: tc×s×s patches → (3D Haar, fused, see
 * PatchTransform.ts) linear embedding + learned spatial/temporal positions → factorised blocks with causal temporal mixing.
 */
import * as tf from "@tensorflow/tfjs"
import { Initializers, LayerNorm, Linear, Module, patchify, type InitContext, type Param } from "@vw2/nn"
import { PatchTransform } from "./PatchTransform.ts"
import { geometry, type DldmConfig, type DldmGeometry } from "./DldmConfig.ts"
import { VideoBlock } from "./VideoBlock.ts"

/**
 * [B, T, H, W, 3] with T = 1 + tc·(K−1) → [B, tc·K, H, W, 3] by repeating frame 0 tc−1 times in front,
 * so latent frame 0 depends on frame 0 only.
 */
export function padFirstFrame(video: tf.Tensor, tc: number): tf.Tensor5D {
  return tf.tidy(() => {
    if (tc === 1) return video.clone() as tf.Tensor5D
    const first = tf.slice(video, [0, 0, 0, 0, 0], [-1, 1, -1, -1, -1])
    return tf.concat([tf.tile(first, [1, tc - 1, 1, 1, 1]), video], 1) as tf.Tensor5D
  })
}

export class CausalVideoEncoder extends Module {
  readonly config: DldmConfig
  readonly geo: DldmGeometry
  readonly embed: Linear
  /** frameDiff > 0: embedding of the per-frame pixel differences of each patch (raw pixel basis) */
  readonly embedDiff: Linear | undefined
  readonly spatialPos: Param
  readonly temporalPos: Param
  readonly blocks: ReadonlyArray<VideoBlock>
  readonly normOut: LayerNorm
  readonly patchTransform: PatchTransform

  constructor(init: InitContext, config: DldmConfig) {
    super(init)
    this.config = config
    this.geo = geometry(config)
    const e = config.encoder
    this.embed = this.module("embed", new Linear(init, this.geo.patchDim, e.width))
    this.embedDiff = config.frameDiff > 0 ? this.module("embed_diff", new Linear(init, this.geo.patchDim, e.width)) : undefined
    this.spatialPos = this.param("spatial_pos", [this.geo.tokensPerFrame, e.width], Initializers.normal(0.02))
    this.temporalPos = this.param("temporal_pos", [this.geo.latentFrames, e.width], Initializers.normal(0.02))
    this.blocks = this.moduleList(
      "blocks",
      Array.from({ length: e.depth }, () => new VideoBlock(init, { ...e, temporalMixing: config.temporalMixing, temporalKernel: config.temporalKernel }))
    )
    this.normOut = this.module("norm_out", new LayerNorm(init, e.width))
    this.patchTransform = new PatchTransform(config, init.meta)
  }

  /** Pixel patch tokens of a video in [0, 1]: [B, T, H, W, 3] → [B, K, S, patchDim] in [−1, 1]. */
  tokens(video: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      const c = this.config
      if (video.rank !== 5 || video.shape[2] !== c.height || video.shape[3] !== c.width || video.shape[4] !== 3) {
        throw new Error(`encoder: video must be [B, T, ${c.height}, ${c.width}, 3], got [${video.shape.join(", ")}]`)
      }
      if ((video.shape[1]! - 1) % c.temporalCompression !== 0) {
        throw new Error(`encoder: T − 1 = ${video.shape[1]! - 1} must be divisible by temporalCompression ${c.temporalCompression}`)
      }
      const x = tf.sub(tf.mul(video, 2), 1) // [0,1] → [−1,1]
      return patchify(padFirstFrame(x, c.temporalCompression), { t: c.temporalCompression, s: c.spatialCompression })
    })
  }

  /**
   * Difference tokens: g·(x_t − x_{t−1}) of the padded clip (0 for frame 0), patchified like the frames →
   * [B, K, S, patchDim]. Latent frame k's token sees frames ≤ its own last frame only.
   */
  diffTokens(video: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      const c = this.config
      const x = padFirstFrame(tf.mul(video, 2), c.temporalCompression) // [−1, 1] scale: differences ×2
      const prev = tf.concat([tf.slice(x, [0, 0, 0, 0, 0], [-1, 1, -1, -1, -1]), tf.slice(x, [0, 0, 0, 0, 0], [-1, x.shape[1] - 1, -1, -1, -1])], 1)
      return patchify(tf.mul(tf.sub(x, prev), c.frameDiff) as tf.Tensor5D, { t: c.temporalCompression, s: c.spatialCompression })
    })
  }

  /**
   * video [B, T, H, W, 3] in [0, 1], T = 1 + tc·(K'−1) for any K' ≤ K (a single frame gives f_0 only)
   * → features [B, K', S, D].
   */
  call(video: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      const t = this.tokens(video)
      const k = t.shape[1]
      if (k > this.geo.latentFrames) throw new Error(`encoder: ${k} latent frames exceed the configured ${this.geo.latentFrames} (frames = ${this.config.frames})`)
      let h = this.patchTransform.projectIn(t, this.embed) as tf.Tensor4D // [B, K', S, D]
      if (this.embedDiff !== undefined) h = tf.add(h, this.embedDiff.call(this.diffTokens(video))) as tf.Tensor4D
      h = tf.add(h, this.spatialPos.v) // broadcast over B, K'
      h = tf.add(h, tf.expandDims(tf.slice(this.temporalPos.v, [0, 0], [k, -1]), 1)) // [K', 1, D]
      for (const block of this.blocks) h = block.call(h)
      return this.normOut.call(h) as tf.Tensor4D
    })
  }

  override dispose(): void {
    this.patchTransform.dispose()
    super.dispose()
  }
}
