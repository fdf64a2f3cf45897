/**
 * SSIM between two videos, frame by frame, with ssim.js (Wang et al. 2004, the paper's SSIM↑ column).
 * Frames are compared pairwise over the shorter length; the score is the mean over frames.
 */
import { ssim } from "ssim.js"
import { frameAt, type RgbVideo } from "./Video.ts"

const toRgba = (rgb: Uint8Array, height: number, width: number) => {
  const data = new Uint8ClampedArray(height * width * 4)
  for (let p = 0; p < height * width; p++) {
    data[p * 4] = rgb[p * 3]!
    data[p * 4 + 1] = rgb[p * 3 + 1]!
    data[p * 4 + 2] = rgb[p * 3 + 2]!
    data[p * 4 + 3] = 255
  }
  return { data, height, width }
}

/** Mean SSIM of one frame pair. Small frames use a window that fits them (ssim.js defaults to 11). */
export const frameSsim = (a: Uint8Array, b: Uint8Array, height: number, width: number): number => {
  const windowSize = Math.min(11, height, width)
  // downsample: false — MiniCraft frames are already tiny; the default would shrink them further
  return ssim(toRgba(a, height, width), toRgba(b, height, width), { windowSize, downsample: false }).mssim
}

/** Per-frame SSIM of `generated` against `reference` over their common length. */
export const videoSsimPerFrame = (reference: RgbVideo, generated: RgbVideo): ReadonlyArray<number> => {
  if (reference.height !== generated.height || reference.width !== generated.width) {
    throw new Error(`SSIM needs equal frame sizes: reference ${reference.height}×${reference.width}, generated ${generated.height}×${generated.width}`)
  }
  const n = Math.min(reference.frames, generated.frames)
  const scores: Array<number> = []
  for (let t = 0; t < n; t++) scores.push(frameSsim(frameAt(reference, t), frameAt(generated, t), reference.height, reference.width))
  return scores
}

export const videoSsim = (reference: RgbVideo, generated: RgbVideo): number => {
  const scores = videoSsimPerFrame(reference, generated)
  if (scores.length === 0) throw new Error("SSIM of an empty video is undefined")
  return scores.reduce((s, x) => s + x, 0) / scores.length
}
