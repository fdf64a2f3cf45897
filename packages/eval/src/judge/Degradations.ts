/**
 * Image degradations for the classifier judge (docs/paper.md "Evaluation": the step classifier must judge
 * generated frames fairly, so it is trained and calibrated on rendered frames degraded the way a learned
 * renderer degrades them): Gaussian noise, blur, ×2 down/up-sampling, brightness offset, gain, small shifts,
 * and the "mush" negatives (heavy blur, uniform noise).
 *
 * Pure functions on one frame: Float32Array [H, W, 3] in [0, 1] (row-major, channels last); each returns a
 * new array clipped to [0, 1]. `onVideo` lifts one to a uint8 [T, H, W, 3] video.
 */
import { MiniCraft } from "@vw2/data"

/** Uniform [0, 1) source; the judge passes its seeded stream so every augmentation is reproducible. */
export type Uniform = () => number

export interface FrameSize {
  readonly height: number
  readonly width: number
}

const clip01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x)

const checkFrame = (frame: Float32Array, size: FrameSize, what: string): void => {
  if (frame.length !== size.height * size.width * 3) {
    throw new RangeError(`${what}: frame has ${frame.length} values, expected ${size.height}×${size.width}×3 = ${size.height * size.width * 3}`)
  }
}

/** One standard normal draw (Box–Muller; `1 - u` keeps the log finite). */
export const normal = (uniform: Uniform): number => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform())

/** Adds i.i.d. Gaussian noise of standard deviation `sigma` (in [0, 1] units, e.g. 8 / 255). */
export const gaussianNoise = (frame: Float32Array, sigma: number, uniform: Uniform): Float32Array => {
  const out = new Float32Array(frame.length)
  // Box–Muller gives two independent normals per pair of uniforms
  for (let i = 0; i < frame.length; i += 2) {
    const r = sigma * Math.sqrt(-2 * Math.log(1 - uniform()))
    const a = 2 * Math.PI * uniform()
    out[i] = clip01(frame[i]! + r * Math.cos(a))
    if (i + 1 < frame.length) out[i + 1] = clip01(frame[i + 1]! + r * Math.sin(a))
  }
  return out
}

/** `passes` rounds of the 3×3 binomial filter (@vw2/data's, the exact judge's blur). */
export const blur = (frame: Float32Array, size: FrameSize, passes = 1): Float32Array => {
  checkFrame(frame, size, "blur")
  const { height, width } = size
  let src = frame
  for (let pass = 0; pass < passes; pass++) {
    const out = new Float32Array(frame.length)
    MiniCraft.binomialBlurInto(src, out, width, height)
    src = out
  }
  return passes === 0 ? Float32Array.from(frame) : src
}

/** Average-pools by `factor` (edges replicated when the size does not divide), then bilinear back to full size. */
export const downUp = (frame: Float32Array, size: FrameSize, factor = 2): Float32Array => {
  checkFrame(frame, size, "downUp")
  const { height, width } = size
  const h = Math.ceil(height / factor)
  const w = Math.ceil(width / factor)
  const small = new Float32Array(h * w * 3)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0
        for (let dy = 0; dy < factor; dy++) {
          for (let dx = 0; dx < factor; dx++) {
            const yy = Math.min(height - 1, y * factor + dy)
            const xx = Math.min(width - 1, x * factor + dx)
            sum += frame[(yy * width + xx) * 3 + c]!
          }
        }
        small[(y * w + x) * 3 + c] = sum / (factor * factor)
      }
    }
  }
  const out = new Float32Array(frame.length)
  for (let y = 0; y < height; y++) {
    // half-pixel centres: output pixel y sits at (y + 0.5) / factor - 0.5 in the small grid
    const sy = Math.min(h - 1, Math.max(0, (y + 0.5) / factor - 0.5))
    const y0 = Math.floor(sy)
    const y1 = Math.min(h - 1, y0 + 1)
    const fy = sy - y0
    for (let x = 0; x < width; x++) {
      const sx = Math.min(w - 1, Math.max(0, (x + 0.5) / factor - 0.5))
      const x0 = Math.floor(sx)
      const x1 = Math.min(w - 1, x0 + 1)
      const fx = sx - x0
      for (let c = 0; c < 3; c++) {
        const top = small[(y0 * w + x0) * 3 + c]! * (1 - fx) + small[(y0 * w + x1) * 3 + c]! * fx
        const bottom = small[(y1 * w + x0) * 3 + c]! * (1 - fx) + small[(y1 * w + x1) * 3 + c]! * fx
        out[(y * width + x) * 3 + c] = clip01(top * (1 - fy) + bottom * fy)
      }
    }
  }
  return out
}

/** Adds `offset` to every channel (e.g. 15 / 255). */
export const brightness = (frame: Float32Array, offset: number): Float32Array => {
  const out = new Float32Array(frame.length)
  for (let i = 0; i < frame.length; i++) out[i] = clip01(frame[i]! + offset)
  return out
}

/** Multiplies every channel by `gain`, or each channel by its own gain when given three. */
export const gain = (frame: Float32Array, g: number | readonly [number, number, number]): Float32Array => {
  const [r, gr, b] = typeof g === "number" ? [g, g, g] : g
  const out = new Float32Array(frame.length)
  for (let i = 0; i < frame.length; i += 3) {
    out[i] = clip01(frame[i]! * r)
    out[i + 1] = clip01(frame[i + 1]! * gr)
    out[i + 2] = clip01(frame[i + 2]! * b)
  }
  return out
}

/** Moves the content by (dx, dy) whole pixels (positive: right / down); uncovered pixels repeat the edge. */
export const shift = (frame: Float32Array, size: FrameSize, dx: number, dy: number): Float32Array => {
  checkFrame(frame, size, "shift")
  const { height, width } = size
  const out = new Float32Array(frame.length)
  for (let y = 0; y < height; y++) {
    const sy = Math.min(height - 1, Math.max(0, y - dy))
    for (let x = 0; x < width; x++) {
      const sx = Math.min(width - 1, Math.max(0, x - dx))
      const from = (sy * width + sx) * 3
      const to = (y * width + x) * 3
      out[to] = frame[from]!
      out[to + 1] = frame[from + 1]!
      out[to + 2] = frame[from + 2]!
    }
  }
  return out
}

/** A frame of uniform noise (every channel independent in [0, 1)): no scene at all. */
export const uniformNoise = (size: FrameSize, uniform: Uniform): Float32Array => {
  const out = new Float32Array(size.height * size.width * 3)
  for (let i = 0; i < out.length; i++) out[i] = uniform()
  return out
}

/** Blurred "mush": average-pooled to about 4 × 4 cells and back, so no object is recognisable. */
export const mush = (frame: Float32Array, size: FrameSize): Float32Array => downUp(frame, size, Math.max(2, Math.floor(Math.min(size.height, size.width) / 4)))

export const toUnit = (bytes: Uint8Array): Float32Array => {
  const out = new Float32Array(bytes.length)
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]! / 255
  return out
}

export const toBytes = (frame: Float32Array): Uint8Array => {
  const out = new Uint8Array(frame.length)
  for (let i = 0; i < frame.length; i++) out[i] = Math.round(clip01(frame[i]!) * 255)
  return out
}

/** Applies a frame degradation to every frame of a uint8 [T, H, W, 3] video (frame index passed along). */
export const onVideo = (video: Uint8Array, frames: number, size: FrameSize, degrade: (frame: Float32Array, t: number) => Float32Array): Uint8Array => {
  const n = size.height * size.width * 3
  if (video.length !== frames * n) throw new RangeError(`onVideo: video has ${video.length} bytes, expected ${frames}×${size.height}×${size.width}×3`)
  const out = new Uint8Array(video.length)
  for (let t = 0; t < frames; t++) out.set(toBytes(degrade(toUnit(video.subarray(t * n, (t + 1) * n)), t)), t * n)
  return out
}

export interface AugmentOptions {
  /** largest Gaussian noise σ (uniform in [0, noiseMax]), applied with probability pNoise */
  readonly noiseMax: number
  readonly pNoise: number
  /** blur by 1 or 2 binomial passes */
  readonly pBlur: number
  readonly pDownUp: number
  /** brightness offset uniform in ±brightnessMax */
  readonly brightnessMax: number
  readonly pBrightness: number
  /** gain uniform in [1 − gainMax, 1 + gainMax], per channel up to ±colorMax more */
  readonly gainMax: number
  readonly colorMax: number
  readonly pGain: number
  /** shift up to ±shiftMax pixels on each axis */
  readonly shiftMax: number
  readonly pShift: number
}

/** Heavy enough that every calibration degradation (σ 8/255, +15/255, ×2 down/up, 1 px shift) is inside the training range. */
export const defaultAugment: AugmentOptions = {
  noiseMax: 14 / 255,
  pNoise: 0.7,
  pBlur: 0.4,
  pDownUp: 0.5,
  brightnessMax: 25 / 255,
  pBrightness: 0.5,
  gainMax: 0.2,
  colorMax: 0.05,
  pGain: 0.5,
  shiftMax: 2,
  pShift: 0.7
}

/** Moves a one-channel mask [H, W] by (dx, dy) like `shift` moves a frame (into `out`). */
export const shiftMask = (mask: Uint8Array | Float32Array, size: FrameSize, dx: number, dy: number, out: Float32Array = new Float32Array(size.height * size.width)): Float32Array => {
  const { height, width } = size
  for (let y = 0; y < height; y++) {
    const sy = Math.min(height - 1, Math.max(0, y - dy))
    for (let x = 0; x < width; x++) out[y * width + x] = mask[sy * width + Math.min(width - 1, Math.max(0, x - dx))]!
  }
  return out
}

/** One random composition of the degradations (geometry and blur first, then photometric, noise last, as a camera would). */
export const augment = (frame: Float32Array, size: FrameSize, o: AugmentOptions, uniform: Uniform): Float32Array => augmentWithShift(frame, size, o, uniform).frame

/** `augment`, also returning the shift it applied (labels tied to pixels move with it). */
export const augmentWithShift = (frame: Float32Array, size: FrameSize, o: AugmentOptions, uniform: Uniform): { frame: Float32Array; dx: number; dy: number } => {
  let x = frame
  const range = (max: number) => (2 * uniform() - 1) * max
  let dx = 0
  let dy = 0
  if (uniform() < o.pShift) {
    dx = Math.round(range(o.shiftMax))
    dy = Math.round(range(o.shiftMax))
    x = shift(x, size, dx, dy)
  }
  if (uniform() < o.pDownUp) x = downUp(x, size, 2)
  if (uniform() < o.pBlur) x = blur(x, size, uniform() < 0.5 ? 1 : 2)
  if (uniform() < o.pGain) {
    const g = 1 + range(o.gainMax)
    x = gain(x, [g + range(o.colorMax), g + range(o.colorMax), g + range(o.colorMax)])
  }
  if (uniform() < o.pBrightness) x = brightness(x, range(o.brightnessMax))
  if (uniform() < o.pNoise) x = gaussianNoise(x, uniform() * o.noiseMax, uniform)
  return { frame: x === frame ? Float32Array.from(frame) : x, dx, dy }
}
