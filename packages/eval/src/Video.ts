/**
 * An RGB video in memory: uint8 frames laid out [T, H, W, 3], the layout of `frames.npy` in a dataset
 * artifact. Metrics and renderers take this one shape; `fromUnitFloat` converts the dataset API's
 * Float32 [0, 1] clips and the decoders' outputs.
 */
export interface RgbVideo {
  /** uint8 [frames, height, width, 3] */
  readonly data: Uint8Array
  readonly frames: number
  readonly height: number
  readonly width: number
}

export const makeVideo = (data: Uint8Array, frames: number, height: number, width: number): RgbVideo => {
  if (data.length !== frames * height * width * 3) {
    throw new Error(`video data has ${data.length} bytes, expected frames×height×width×3 = ${frames}×${height}×${width}×3`)
  }
  return { data, frames, height, width }
}

/** Float32 values in [0, 1] laid out [T, H, W, 3] → uint8 video (values clamped, rounded). */
export const fromUnitFloat = (values: Float32Array, frames: number, height: number, width: number): RgbVideo => {
  const data = new Uint8Array(values.length)
  for (let i = 0; i < values.length; i++) data[i] = Math.round(Math.min(1, Math.max(0, values[i]!)) * 255)
  return makeVideo(data, frames, height, width)
}

export const frameBytes = (video: RgbVideo): number => video.height * video.width * 3

/** A view on one frame's bytes [H, W, 3]; no copy. */
export const frameAt = (video: RgbVideo, index: number): Uint8Array => {
  if (index < 0 || index >= video.frames) throw new Error(`frame ${index} outside video of ${video.frames} frames`)
  const size = frameBytes(video)
  return video.data.subarray(index * size, (index + 1) * size)
}

/** Concatenate videos of the same frame size along time. */
export const concatVideos = (videos: ReadonlyArray<RgbVideo>): RgbVideo => {
  if (videos.length === 0) throw new Error("concatVideos: no videos given")
  const { height, width } = videos[0]!
  for (const v of videos) {
    if (v.height !== height || v.width !== width) throw new Error(`concatVideos: frame size ${v.height}×${v.width} ≠ ${height}×${width}`)
  }
  const frames = videos.reduce((n, v) => n + v.frames, 0)
  const data = new Uint8Array(frames * height * width * 3)
  let offset = 0
  for (const v of videos) {
    data.set(v.data, offset)
    offset += v.data.length
  }
  return makeVideo(data, frames, height, width)
}
