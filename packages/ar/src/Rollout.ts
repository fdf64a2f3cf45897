/**
 * Long-horizon rollout (paper §3, inference): predict one clip's codes with the AR transformer, decode them
 * to a T-frame clip with the dLDM (VDM sampler), take the clip's last decoded frame as the next clip's start
 * frame, and continue until the model closes a clip with EOS, or the clip / frame budget is spent.
 */
import type { Rng } from "./internal/nn.ts"
import type { ArTransformer } from "./ArTransformer.ts"
import { historyStream } from "./CodeStream.ts"
import { sampleClip, type SamplingOptions } from "./Sampler.ts"

/** Turns one clip's codes into frames; implemented by the dLDM (low-fi decoder + DiT sampler). */
export interface ClipDecoder {
  /** frames per decoded clip, including the start frame */
  readonly framesPerClip: number
  /** start frame [H, W, 3] and codes [codesPerClip] → frames [framesPerClip, H, W, 3] in [0, 1]; frame 0 is the start frame */
  readonly decode: (startFrame: Float32Array, codes: Int32Array) => Promise<Float32Array>
}

export interface RolloutOptions {
  readonly model: ArTransformer
  readonly decoder: ClipDecoder
  /** instruction token ids [maxTextTokens] */
  readonly text: Int32Array
  /** the episode's initial frame [H, W, 3] in [0, 1] */
  readonly initialFrame: Float32Array
  readonly sampling: SamplingOptions
  readonly rng: Rng
  /** at most this many clips (the task's step budget in clips) */
  readonly maxClips: number
  /** stop once the video has at least this many frames */
  readonly maxFrames: number
  /** stop when the model predicts EOS (default true); false rolls out to the budget, e.g. to match a reference length */
  readonly stopOnEos?: boolean
}

export interface Rollout {
  /** the generated video [frames, H, W, 3]: the initial frame, then each clip's frames after its start frame */
  readonly frames: Float32Array
  readonly frameCount: number
  /** codes of every clip, in order */
  readonly clipCodes: ReadonlyArray<Int32Array>
  /** the start frame each clip was predicted and decoded from (clip k > 0: clip k−1's last decoded frame) */
  readonly startFrames: ReadonlyArray<Float32Array>
  readonly stoppedBy: "eos" | "max-clips" | "max-frames"
}

export const rollout = async (o: RolloutOptions): Promise<Rollout> => {
  const { height, width, codesPerClip, historyClips, codeVocab } = o.model.arch
  const frameSize = height * width * 3
  if (o.initialFrame.length !== frameSize) throw new Error(`rollout: initial frame has ${o.initialFrame.length} values, expected ${height}×${width}×3`)
  if (o.maxClips < 1) throw new Error("rollout: maxClips must be ≥ 1")
  const pieces: Array<Float32Array> = [o.initialFrame]
  let frameCount = 1
  const clipCodes: Array<Int32Array> = []
  const startFrames: Array<Float32Array> = []
  let start = o.initialFrame
  let stoppedBy: Rollout["stoppedBy"] = "max-clips"
  for (let k = 0; k < o.maxClips; k++) {
    const allCodes = new Int32Array(clipCodes.length * codesPerClip)
    clipCodes.forEach((c, j) => allCodes.set(c, j * codesPerClip))
    const stream = historyStream(allCodes, codesPerClip, k, historyClips, codeVocab)
    const clip = sampleClip(o.model, { text: o.text, frame: start, stream }, o.sampling, o.rng)
    startFrames.push(start)
    clipCodes.push(clip.codes)
    const decoded = await o.decoder.decode(start, clip.codes)
    const t = decoded.length / frameSize
    if (!Number.isInteger(t) || t < 2) throw new Error(`rollout: decoder returned ${decoded.length} values, not a clip of ≥ 2 frames of ${height}×${width}×3`)
    pieces.push(decoded.subarray(frameSize)) // frame 0 repeats the start frame
    frameCount += t - 1
    start = decoded.slice((t - 1) * frameSize)
    if (clip.done && o.stopOnEos !== false) {
      stoppedBy = "eos"
      break
    }
    if (frameCount >= o.maxFrames) {
      stoppedBy = "max-frames"
      break
    }
  }
  const frames = new Float32Array(frameCount * frameSize)
  let offset = 0
  for (const p of pieces) {
    frames.set(p, offset)
    offset += p.length
  }
  return { frames, frameCount, clipCodes, startFrames, stoppedBy }
}
