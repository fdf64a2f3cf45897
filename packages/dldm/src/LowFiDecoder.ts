/**
 * Low-fidelity decoder (authors' code: starts from the first latent frame's features repeated over time and
 * cross-attends to the codes causally — latent frame i+1 sees codes of transitions ≤ i). Output: pixels.
 */
import * as tf from "@tensorflow/tfjs"
import { Initializers, LayerNorm, Linear, Module, blockMask, unpatchify, type InitContext, type Param } from "@vw2/nn"
import { geometry, type DldmConfig, type DldmGeometry } from "./DldmConfig.ts"
import type { PatchTransform } from "./PatchTransform.ts"
import { VideoBlock } from "./VideoBlock.ts"

/** Decoder latent frame i may read the codes of transition j iff j ≤ i − 1. */
export function decoderCodeMask(latentFrames: number, tokensPerFrame: number, transitions: number, queries: number): tf.Tensor2D {
  const frameOfToken = Array.from({ length: latentFrames * tokensPerFrame }, (_, q) => Math.floor(q / tokensPerFrame))
  const transitionOfCode = Array.from({ length: transitions * queries }, (_, c) => Math.floor(c / queries))
  return blockMask(frameOfToken, transitionOfCode, (i, j) => j <= i - 1)
}

export class LowFiDecoder extends Module {
  readonly config: DldmConfig
  readonly geo: DldmGeometry
  readonly fromFeatures: Linear
  readonly codeEmbed: Linear
  readonly codeSlotPos: Param // [N, D]: which query a code came from
  readonly codeTimePos: Param // [K−1, D]: which transition
  readonly spatialPos: Param
  readonly temporalPos: Param
  readonly blocks: ReadonlyArray<VideoBlock>
  readonly normOut: LayerNorm
  readonly toPatch: Linear
  /** flowWarp only: per-pixel flow (dx, dy) of each patch, [D → tc·s·s·2] */
  readonly toFlow: Linear | undefined

  /** shares the encoder's patch basis (Haar or identity) */
  private readonly patchTransform: PatchTransform

  constructor(init: InitContext, config: DldmConfig, patchTransform: PatchTransform) {
    super(init)
    this.config = config
    this.geo = geometry(config)
    this.patchTransform = patchTransform
    const d = config.decoder.width
    this.fromFeatures = this.module("from_features", new Linear(init, config.encoder.width, d))
    this.codeEmbed = this.module("code_embed", new Linear(init, config.fsqLevels.length, d))
    this.codeSlotPos = this.param("code_slot_pos", [config.queries, d], Initializers.normal(0.02))
    this.codeTimePos = this.param("code_time_pos", [this.geo.transitions, d], Initializers.normal(0.02))
    this.spatialPos = this.param("spatial_pos", [this.geo.tokensPerFrame, d], Initializers.normal(0.02))
    this.temporalPos = this.param("temporal_pos", [this.geo.latentFrames, d], Initializers.normal(0.02))
    this.blocks = this.moduleList(
      "blocks",
      Array.from(
        { length: config.decoder.depth },
        () => new VideoBlock(init, { ...config.decoder, temporalMixing: config.temporalMixing, temporalKernel: config.temporalKernel, contextDim: d })
      )
    )
    this.normOut = this.module("norm_out", new LayerNorm(init, d))
    // predicting the change from frame 0: start at "no change" (zero head), the copy-first-frame baseline
    this.toPatch = this.module("to_patch", new Linear(init, d, this.geo.patchDim, { zeroInit: config.firstFrameSkip }))
    // zero flow at start: the untrained decoder still outputs exactly frame 0
    this.toFlow = config.flowWarp ? this.module("to_flow", new Linear(init, d, this.geo.patchDim / 3 * 2, { zeroInit: true })) : undefined
  }

  /** codes [B, K'−1, N, dim] → context [B, (K'−1)·N, D] with transition and slot positions. */
  codeContext(codes: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, j, n] = codes.shape
      let c = this.codeEmbed.call(codes) // [B, J, N, D]
      c = tf.add(c, tf.expandDims(tf.slice(this.codeTimePos.v, [0, 0], [j, -1]), 1))
      c = tf.add(c, this.codeSlotPos.v)
      return tf.reshape(c, [b, j * n, c.shape[3]!]) as tf.Tensor3D
    })
  }

  /**
   * firstFeatures [B, S, Denc] (f_0), codes [B, J, N, dim] (J ≤ K−1 transitions) → pixel patches
   * [B, J+1, S, patchDim] in [−1, 1] space; with flowWarp followed by the flow patches (tc·s·s·2 values,
   * pixels / FLOW_UNIT) on the same axis: [B, J+1, S, patchDim + patchDim·2/3].
   */
  call(firstFeatures: tf.Tensor3D, codes: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [, s] = firstFeatures.shape
      const j = codes.shape[1]
      const k = j + 1
      if (j > this.geo.transitions) throw new Error(`decoder: ${j} transitions exceed the configured ${this.geo.transitions}`)
      const start = tf.expandDims(this.fromFeatures.call(firstFeatures), 1) // [B, 1, S, D]
      let h = tf.tile(start, [1, k, 1, 1]) // f_0 repeated over time
      h = tf.add(h, this.spatialPos.v)
      h = tf.add(h, tf.expandDims(tf.slice(this.temporalPos.v, [0, 0], [k, -1]), 1))
      const context = this.codeContext(codes)
      const mask = decoderCodeMask(k, s, j, codes.shape[2])
      let x = h as tf.Tensor4D
      for (const block of this.blocks) x = block.call(x, context, mask)
      const out = this.normOut.call(x)
      const patches = this.patchTransform.projectOut(out, this.toPatch) as tf.Tensor4D
      return this.toFlow === undefined ? patches : (tf.concat([patches, this.toFlow.call(out)], 3) as tf.Tensor4D)
    })
  }
}

/**
 * Pixel patches [B, K, S, patchDim] → video [B, T, H, W, 3] in [0, 1] (T = 1 + tc·(K−1)); the tc−1
 * padding frames in front of frame 0 are dropped.
 */
export function patchesToVideo(patches: tf.Tensor4D, config: DldmConfig): tf.Tensor5D {
  return tf.tidy(() => tf.div(tf.add(patchesToFrames(patches, config, 3), 1), 2) as tf.Tensor5D) // [−1,1] → [0,1]
}

/** Flow patches [B, K, S, tc·s·s·2] → flow [B, T, H, W, 2] in pixels. */
export function patchesToFlow(patches: tf.Tensor4D, config: DldmConfig): tf.Tensor5D {
  return tf.tidy(() => tf.mul(patchesToFrames(patches, config, 2), FLOW_UNIT) as tf.Tensor5D)
}

/** Pixels per unit of the flow head's output: the head's O(1) outputs then cover a few pixels of motion. */
export const FLOW_UNIT = 4

function patchesToFrames(patches: tf.Tensor4D, config: DldmConfig, channels: number): tf.Tensor5D {
  return tf.tidy(() => {
    const g = geometry(config)
    const tc = config.temporalCompression
    const pix = unpatchify(patches, { t: tc, s: config.spatialCompression }, { rows: g.rows, cols: g.cols, channels })
    return tf.slice(pix, [0, tc - 1, 0, 0, 0], [-1, -1, -1, -1, -1]) as tf.Tensor5D // drop the padding frames
  })
}
