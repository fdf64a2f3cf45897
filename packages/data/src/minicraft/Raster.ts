/**
 * A small 2D rasterizer: polygons filled on a supersampled RGB canvas (scanline, even-odd rule), then box-
 * filtered down to the output size, which anti-aliases every edge. Colours are floats in [0, 1].
 * Shapes are given in world coordinates; the canvas' camera maps them to pixels.
 */
import type { Affine, Polygon } from "./Geometry.ts"
import { apply, compose, invert } from "./Geometry.ts"

export type Rgb = readonly [number, number, number]

/** Writes the colour at world point (x, y) into `out[0..2]`. */
export type Shader = (x: number, y: number, out: Float32Array) => void

export type Paint = Rgb | Shader

export class Canvas {
  readonly width: number
  readonly height: number
  readonly supersample: number
  readonly subWidth: number
  readonly subHeight: number
  /** supersampled RGB, row-major */
  readonly pixels: Float32Array
  /** world → subpixel coordinates */
  readonly toSubpixel: Affine
  private readonly fromSubpixel: Affine
  private readonly scratch = new Float32Array(3)
  private readonly crossings: number[] = []

  /** `camera` maps world coordinates to normalised view coordinates, where [-1, 1]² fills the image. */
  constructor(width: number, height: number, supersample: number, camera: Affine) {
    this.width = width
    this.height = height
    this.supersample = supersample
    this.subWidth = width * supersample
    this.subHeight = height * supersample
    this.pixels = new Float32Array(this.subWidth * this.subHeight * 3)
    const viewToSubpixel: Affine = { a: this.subWidth / 2, b: 0, c: 0, d: this.subHeight / 2, e: this.subWidth / 2, f: this.subHeight / 2 }
    this.toSubpixel = compose(viewToSubpixel, camera)
    this.fromSubpixel = invert(this.toSubpixel)
  }

  copyFrom(other: Canvas): void {
    if (other.pixels.length !== this.pixels.length) throw new RangeError("Canvas.copyFrom: size mismatch")
    this.pixels.set(other.pixels)
  }

  /** Paints every subpixel (the table). */
  fillAll(paint: Paint): void {
    for (let y = 0; y < this.subHeight; y++) this.fillSpan(y, 0, this.subWidth, paint)
  }

  fillPolygon(polygon: Polygon, paint: Paint | number): void {
    if (polygon.length < 3) return
    const pts = polygon.map((p) => apply(this.toSubpixel, p))
    let minY = Infinity
    let maxY = -Infinity
    for (const p of pts) {
      if (p.y < minY) minY = p.y
      if (p.y > maxY) maxY = p.y
    }
    const y0 = Math.max(0, Math.ceil(minY - 0.5))
    const y1 = Math.min(this.subHeight - 1, Math.floor(maxY - 0.5))
    const xs = this.crossings
    for (let y = y0; y <= y1; y++) {
      const yc = y + 0.5
      xs.length = 0
      for (let i = 0; i < pts.length; i++) {
        const p = pts[i]!
        const q = pts[(i + 1) % pts.length]!
        if (p.y <= yc !== q.y <= yc) xs.push(p.x + ((yc - p.y) * (q.x - p.x)) / (q.y - p.y))
      }
      xs.sort((a, b) => a - b)
      for (let k = 0; k + 1 < xs.length; k += 2) {
        const from = Math.max(0, Math.ceil(xs[k]! - 0.5))
        const to = Math.min(this.subWidth, Math.ceil(xs[k + 1]! - 0.5))
        if (to > from) this.fillSpan(y, from, to, paint)
      }
    }
  }

  /** Multiplies the subpixels inside `polygon` by `factor` (a soft shadow cast by what lies above). */
  darkenPolygon(polygon: Polygon, factor: number): void {
    this.fillPolygon(polygon, factor)
  }

  /** Fills subpixels [from, to) of row y. */
  private fillSpan(y: number, from: number, to: number, paint: Paint | number): void {
    const px = this.pixels
    let i = (y * this.subWidth + from) * 3
    if (typeof paint === "number") {
      for (let x = from; x < to; x++, i += 3) {
        px[i] = px[i]! * paint
        px[i + 1] = px[i + 1]! * paint
        px[i + 2] = px[i + 2]! * paint
      }
      return
    }
    if (typeof paint !== "function") {
      const [r, g, b] = paint
      for (let x = from; x < to; x++, i += 3) {
        px[i] = r
        px[i + 1] = g
        px[i + 2] = b
      }
      return
    }
    const m = this.fromSubpixel
    const out = this.scratch
    const yc = y + 0.5
    for (let x = from; x < to; x++, i += 3) {
      const xc = x + 0.5
      paint(m.a * xc + m.c * yc + m.e, m.b * xc + m.d * yc + m.f, out)
      px[i] = out[0]!
      px[i + 1] = out[1]!
      px[i + 2] = out[2]!
    }
  }

  /**
   * Box-filters to the output size, multiplies by `light(px, py)` (per output pixel RGB gains), adds integer
   * `noise(index)` and writes uint8 RGB into `out` (H·W·3).
   */
  resolve(out: Uint8Array, light: Float32Array, noise?: (index: number) => number): Uint8Array {
    const { width, height, supersample: s, subWidth } = this
    if (out.length !== width * height * 3) throw new RangeError("Canvas.resolve: output size mismatch")
    const px = this.pixels
    const norm = 255 / (s * s)
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let r = 0
        let g = 0
        let b = 0
        for (let dy = 0; dy < s; dy++) {
          let i = ((y * s + dy) * subWidth + x * s) * 3
          for (let dx = 0; dx < s; dx++, i += 3) {
            r += px[i]!
            g += px[i + 1]!
            b += px[i + 2]!
          }
        }
        const o = (y * width + x) * 3
        const values = [r, g, b]
        for (let c = 0; c < 3; c++) {
          let v = values[c]! * norm * light[o + c]!
          if (noise !== undefined) v += noise(o + c)
          out[o + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v)
        }
      }
    }
    return out
  }
}
