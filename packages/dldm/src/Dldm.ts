/**
 * dLDM — dynamics-enhanced latent dynamics model (docs/paper.md "Components"): causal encoder → Q-Former queries
 * per transition → FSQ codes → low-fidelity decoder. Reads top-down from the parts in Encoder.ts, QFormer.ts,
 * LowFiDecoder.ts (the authors' token decoder from f_0 + codes) and ConvUNetDecoder.ts (ours: each
 * transition rendered from the previous frame; teacher-forced on the true frame in training, chained on its
 * own frames in decodeLowFi). See docs/paper.md "dLDM".
 *
 * Axis legend: B batch, T frames, K latent frames, J = K−1 transitions, N queries, S tokens per latent frame.
 */
import * as tf from "@tensorflow/tfjs"
import { FSQ, Module, l1Loss, type InitContext } from "@vw2/nn"
import { geometry, validateDldmConfig, type DldmConfig, type DldmGeometry } from "./DldmConfig.ts"
import { ConvUNetDecoder } from "./ConvUNetDecoder.ts"
import { CausalVideoEncoder } from "./Encoder.ts"
import { warpByFlow } from "./FlowWarp.ts"
import { LatentNorm } from "./LatentNorm.ts"
import { LowFiDecoder, patchesToFlow, patchesToVideo } from "./LowFiDecoder.ts"
import { QFormer } from "./QFormer.ts"

export interface DldmForward {
  /** encoder features [B, K, S, D] */
  readonly features: tf.Tensor4D
  /** quantised codes [B, J, N, levels] (straight-through gradient to the encoder and queries) */
  readonly codes: tf.Tensor4D
  /** FSQ indices [B, J, N] int32 in [0, vocabulary) */
  readonly indices: tf.Tensor3D
  /** pre-quantisation latents z [B, J, N, levels] (after latentNorm) */
  readonly latents: tf.Tensor4D
  /** low-fidelity reconstruction [B, T, H, W, 3] in [0, 1] */
  readonly recon: tf.Tensor5D
}

export class Dldm extends Module {
  readonly config: DldmConfig
  readonly geo: DldmGeometry
  readonly encoder: CausalVideoEncoder
  readonly qformer: QFormer
  readonly fsq: FSQ
  readonly decoder: LowFiDecoder | ConvUNetDecoder
  readonly latentNorm: LatentNorm | undefined
  /** seeds the conv decoder's training input noise, one draw per call; training checkpoints save it, so a resumed
   * run draws the noise an uninterrupted one would */
  noiseCalls = 0

  constructor(init: InitContext, config: DldmConfig) {
    super(init)
    validateDldmConfig(config)
    this.config = config
    this.geo = geometry(config)
    this.fsq = new FSQ(config.fsqLevels)
    this.encoder = this.module("encoder", new CausalVideoEncoder(init, config))
    this.qformer = this.module(
      "qformer",
      new QFormer(init, {
        width: config.encoder.width,
        heads: config.qformer.heads,
        depth: config.qformer.depth,
        queries: config.queries,
        codeDim: config.fsqLevels.length,
        mlpRatio: config.encoder.mlpRatio,
        context: config.qformer.context,
        queryInit: config.qformer.queryInit
      })
    )
    this.decoder = this.module(
      "decoder",
      config.decoder.kind === "conv-unet"
        ? new ConvUNetDecoder(init, {
            height: config.height,
            width: config.width,
            framesPerTransition: config.temporalCompression,
            codeDim: config.queries * config.fsqLevels.length,
            channels: config.decoder.channels,
            levels: config.decoder.levels,
            output: config.decoder.output
          })
        : new LowFiDecoder(init, config, this.encoder.patchTransform)
    )
    this.latentNorm = config.latentNorm === "batch" ? this.module("latent_norm", new LatentNorm(init, config.queries, config.fsqLevels.length)) : undefined
  }

  /**
   * video [B, T, H, W, 3] in [0, 1] → features, latents, codes, indices (no decoding). `train`: latentNorm
   * uses (and updates its running averages from) this batch's statistics; inference leaves it false.
   */
  codesOf(video: tf.Tensor, train = false): { features: tf.Tensor4D; latents: tf.Tensor4D; codes: tf.Tensor4D; indices: tf.Tensor3D } {
    return tf.tidy(() => {
      const features = this.encoder.call(video)
      const z = this.qformer.call(features)
      const latents = (this.latentNorm === undefined ? z : this.latentNorm.call(z, train)) as tf.Tensor4D
      const codes = this.fsq.quantize(latents) as tf.Tensor4D
      const indices = this.fsq.codesToIndices(codes) as tf.Tensor3D
      return { features, latents, codes, indices }
    })
  }

  /**
   * Full pass: encode, quantise, reconstruct the clip from the codes (`train`: see codesOf and reconstruct).
   * The conv decoder reconstructs teacher-forced (each transition from the clip's true previous frame).
   */
  forward(video: tf.Tensor, train = false): DldmForward {
    return tf.tidy(() => {
      const { features, latents, codes, indices } = this.codesOf(video, train)
      const recon = this.reconstructFrom(video, codes, features, train)
      return { features, latents, codes, indices, recon }
    })
  }

  /**
   * video [B, T, H, W, 3], code vectors [B, J, N, levels] → reconstruction [B, T, H, W, 3]: the token decoder
   * from f_0; the conv decoder teacher-forced, transition j from the true frame tc·j (+ `inputNoise` when
   * `train`). Frame 0 is the clip's own. Callers that need stop-gradient codes (the joint stage's hint) pass them.
   */
  reconstruct(video: tf.Tensor, codes: tf.Tensor4D, train = false): tf.Tensor5D {
    return tf.tidy(() => this.reconstructFrom(video, codes, undefined, train))
  }

  private reconstructFrom(video: tf.Tensor, codes: tf.Tensor4D, features: tf.Tensor4D | undefined, train: boolean): tf.Tensor5D {
    const decoder = this.decoder
    if (decoder instanceof ConvUNetDecoder) {
      const [b, t, h, w, c] = video.shape as [number, number, number, number, number]
      const tc = this.config.temporalCompression
      const j = codes.shape[1]
      if (t !== 1 + tc * j) throw new Error(`reconstruct: ${j} transitions need ${1 + tc * j} frames, got ${t}`)
      // previous frames x_0, x_tc, …, x_{tc(J−1)}: [B, J, H, W, 3]
      const starts = tf.gather(video, Array.from({ length: j }, (_, i) => tc * i), 1)
      let prev = tf.reshape(starts, [b * j, h, w, c]) as tf.Tensor4D
      const noise = this.config.decoder.inputNoise
      if (train && noise > 0) {
        prev = tf.clipByValue(tf.add(prev, tf.randomNormal(prev.shape, 0, noise, "float32", this.noiseSeed())), 0, 1) as tf.Tensor4D
      }
      const next = decoder.call(prev, tf.reshape(codes, [b * j, -1]) as tf.Tensor2D) // [B·J, tc, H, W, 3]
      const first = tf.slice(video, [0, 0, 0, 0, 0], [b, 1, h, w, c])
      return tf.concat([first, tf.reshape(next, [b, j * tc, h, w, c])], 1) as tf.Tensor5D
    }
    const f = features ?? this.encoder.call(tf.slice(video, [0, 0, 0, 0, 0], [-1, 1, -1, -1, -1]))
    const [b, , s, d] = f.shape
    const f0 = tf.reshape(tf.slice(f, [0, 0, 0, 0], [b, 1, s, d]), [b, s, d]) as tf.Tensor3D
    return this.toVideo(decoder.call(f0, codes), video)
  }

  /** Chained conv decoding: each transition from the decoder's own last frame. first [B, 1, H, W, 3]. */
  private chain(decoder: ConvUNetDecoder, first: tf.Tensor, codes: tf.Tensor4D): tf.Tensor5D {
    const [b, , h, w, c] = first.shape as [number, number, number, number, number]
    const tc = this.config.temporalCompression
    const frames: tf.Tensor[] = [first]
    let prev = tf.reshape(first, [b, h, w, c]) as tf.Tensor4D
    for (let j = 0; j < codes.shape[1]; j++) {
      const z = tf.reshape(tf.slice(codes, [0, j, 0, 0], [b, 1, -1, -1]), [b, -1]) as tf.Tensor2D
      const next = decoder.call(prev, z) // [B, tc, H, W, 3]
      frames.push(next)
      prev = tf.reshape(tf.slice(next, [0, tc - 1, 0, 0, 0], [b, 1, h, w, c]), [b, h, w, c]) as tf.Tensor4D
    }
    return tf.clipByValue(tf.concat(frames, 1), 0, 1) as tf.Tensor5D
  }

  private noiseSeed(): number {
    return 7919 + this.noiseCalls++
  }

  /** `encode(video) → codes`: FSQ indices [B, K−1, N] (int32). */
  encode(video: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => this.codesOf(video).indices)
  }

  /**
   * `decodeLowFi(firstFrame, codes) → video`. firstFrame [B, H, W, 3] (or [B, 1, H, W, 3]) in [0, 1];
   * codes: indices [B, J, N] (int32) or code vectors [B, J, N, levels] → [B, 1 + tc·J, H, W, 3] in [0, 1].
   */
  decodeLowFi(firstFrame: tf.Tensor, codes: tf.Tensor): tf.Tensor5D {
    return tf.tidy(() => {
      const frame = firstFrame.rank === 4 ? tf.expandDims(firstFrame, 1) : firstFrame
      const vectors = (codes.rank === 3 ? this.fsq.indicesToCodes(codes) : codes) as tf.Tensor4D
      if (vectors.rank !== 4 || vectors.shape[2] !== this.config.queries) {
        throw new Error(`decodeLowFi: codes must be [B, J, ${this.config.queries}] indices or [B, J, ${this.config.queries}, ${this.fsq.dim}] vectors, got [${codes.shape.join(", ")}]`)
      }
      if (this.decoder instanceof ConvUNetDecoder) return this.chain(this.decoder, frame, vectors)
      const features = this.encoder.call(frame) // causal: f_0 from frame 0 alone equals f_0 of the whole clip
      const [b, , s, d] = features.shape
      const f0 = tf.reshape(features, [b, s, d]) as tf.Tensor3D
      return this.toVideo((this.decoder as LowFiDecoder).call(f0, vectors), frame)
    })
  }

  /**
   * Decoder patches → video in [0, 1]. With `firstFrameSkip` the decoder predicts the change from frame 0:
   * x̂_t = x_0 + d_t / 2 (d in [−1, 1] pixel units), so it spends its capacity on motion, not appearance.
   * With `flowWarp` frame 0 is first warped by the decoder's flow: x̂_t = warp(x_0, flow_t) + d_t / 2.
   * `clip` [B, ≥1, H, W, 3]: only its frame 0 is read (causality holds: every output may see frame 0).
   */
  toVideo(patches: tf.Tensor4D, clip: tf.Tensor): tf.Tensor5D {
    return tf.tidy(() => {
      const pd = this.geo.patchDim
      const pixels = this.config.flowWarp ? (tf.slice(patches, [0, 0, 0, 0], [-1, -1, -1, pd]) as tf.Tensor4D) : patches
      const video = patchesToVideo(pixels, this.config)
      if (!this.config.firstFrameSkip) return video
      const [b, , h, w, c] = clip.shape as [number, number, number, number, number]
      const first = tf.slice(clip, [0, 0, 0, 0, 0], [b, 1, h, w, c])
      const base = this.config.flowWarp
        ? warpByFlow(tf.reshape(first, [b, h, w, c]) as tf.Tensor4D, patchesToFlow(tf.slice(patches, [0, 0, 0, pd], [-1, -1, -1, -1]) as tf.Tensor4D, this.config))
        : first
      return tf.add(tf.sub(video, 0.5), base) as tf.Tensor5D
    })
  }

  /** Warm-up objective (config.reconstructionLoss): L1 or MSE between the low-fi reconstruction and the clip, in [−1, 1] pixel space. */
  reconstructionLoss(video: tf.Tensor, recon: tf.Tensor): tf.Scalar {
    return tf.tidy(() =>
      this.config.reconstructionLoss === "mse" ? (tf.mul(tf.mean(tf.square(tf.sub(recon, video))), 4) as tf.Scalar) : (tf.mul(l1Loss(recon, video), 2) as tf.Scalar)
    )
  }
}
