/**
 * Draws MiniCraft frames: table (texture), distractors and tray are drawn once per episode into a cached
 * background; each frame adds the sheet layers or blocks and the hand, then lighting and sensor noise are
 * applied per output pixel. The same renderer draws the judge's reference states, so ground truth matches
 * them exactly up to the hand and noise.
 */
import type { Appearance, Distractor } from "./Appearance.ts"
import type { Affine, Polygon, Vec } from "./Geometry.ts"
import { apply, compose, invert, rotate, scale, translate, vec } from "./Geometry.ts"
import type { Paint, Rgb } from "./Raster.ts"
import { Canvas } from "./Raster.ts"
import type { SceneState, SheetLayer } from "./Scene.ts"
import type { Task } from "./Tasks.ts"
import { blockPolygon } from "./Tasks.ts"

export interface RenderOptions {
  readonly width: number
  readonly height: number
  /** subpixels per pixel along each axis (anti-aliasing) */
  readonly supersample: number
}

export const MIN_RESOLUTION = 16
export const MAX_RESOLUTION = 128

const SHADOW_OFFSET = 0.022
const SHADOW_FACTOR = 0.72
const TRAY_COLOR: Rgb = [0.2, 0.22, 0.26]
const TRAY_RIM: Rgb = [0.32, 0.34, 0.38]
const frac = (x: number): number => x - Math.floor(x)

const tableShader = (appearance: Appearance): Paint => {
  const { color, texture, textureScale: s, textureAngle, contrast } = appearance.table
  if (texture === "plain") return color
  const ca = Math.cos(textureAngle)
  const sa = Math.sin(textureAngle)
  const [r, g, b] = color
  return (x, y, out) => {
    const u = ca * x + sa * y
    const v = -sa * x + ca * y
    let k: number
    switch (texture) {
      case "grain":
        k = Math.sin((u / s + 0.8 * Math.sin(v * 2.3)) * Math.PI * 2) * 0.7 + Math.sin((u / s) * 9.1) * 0.3
        break
      case "stripes":
        k = frac(u / s) < 0.5 ? 1 : -1
        break
      case "checker":
        k = (Math.floor(u / s) + Math.floor(v / s)) % 2 === 0 ? 1 : -1
        break
      default: {
        const du = frac(u / s) - 0.5
        const dv = frac(v / s) - 0.5
        k = du * du + dv * dv < 0.06 ? -1.6 : 0.3
      }
    }
    const gain = 1 + contrast * k
    out[0] = r * gain
    out[1] = g * gain
    out[2] = b * gain
  }
}

const paperShader = (appearance: Appearance, layer: SheetLayer): Paint => {
  const { color, backColor, pattern, patternScale: s } = appearance.paper
  const k = layer.shade
  if (!layer.frontUp) return [backColor[0] * k, backColor[1] * k, backColor[2] * k]
  if (pattern === "plain") return [color[0] * k, color[1] * k, color[2] * k]
  const worldToSheet = invert(layer.sheetToWorld)
  return (x, y, out) => {
    const p = apply(worldToSheet, vec(x, y))
    let gain = 1
    let whiten = 0
    switch (pattern) {
      case "grid":
        if (frac(p.x / s) < 0.14 || frac(p.y / s) < 0.14) gain = 0.78
        break
      case "stripes":
        if (frac((p.x + p.y) / (1.4 * s)) < 0.5) whiten = 0.45
        break
      default: {
        const du = frac(p.x / s) - 0.5
        const dv = frac(p.y / s) - 0.5
        if (du * du + dv * dv < 0.07) gain = 0.7
      }
    }
    for (let c = 0; c < 3; c++) out[c] = (color[c]! * (1 - whiten) + whiten) * gain * k
  }
}

const regular = (center: Vec, radius: number, sides: number, phase = 0, squash = 1): Polygon =>
  Array.from({ length: sides }, (_, i) => {
    const a = phase + (2 * Math.PI * i) / sides
    return vec(center.x + radius * Math.cos(a), center.y + radius * squash * Math.sin(a))
  })

const placed = (m: Affine, polygon: Polygon): Polygon => polygon.map((p) => apply(m, p))

const drawDistractor = (canvas: Canvas, d: Distractor): void => {
  const m = compose(translate(d.x, d.y), rotate(d.rotation))
  const darker: Rgb = [d.color[0] * 0.6, d.color[1] * 0.6, d.color[2] * 0.6]
  switch (d.shape) {
    case "cup":
      canvas.fillPolygon(regular(vec(d.x, d.y), d.size * 0.55, 16), d.color)
      canvas.fillPolygon(regular(vec(d.x, d.y), d.size * 0.38, 16), darker)
      break
    case "pen":
      canvas.fillPolygon(placed(m, [vec(-d.size, -0.025), vec(d.size, -0.025), vec(d.size + 0.04, 0), vec(d.size, 0.025), vec(-d.size, 0.025)]), d.color)
      break
    case "book":
      canvas.fillPolygon(placed(m, [vec(-d.size * 0.6, -d.size * 0.8), vec(d.size * 0.6, -d.size * 0.8), vec(d.size * 0.6, d.size * 0.8), vec(-d.size * 0.6, d.size * 0.8)]), d.color)
      canvas.fillPolygon(placed(m, [vec(-d.size * 0.6, -d.size * 0.8), vec(-d.size * 0.45, -d.size * 0.8), vec(-d.size * 0.45, d.size * 0.8), vec(-d.size * 0.6, d.size * 0.8)]), darker)
      break
    default:
      canvas.fillPolygon(placed(m, [vec(-d.size, d.size * 0.5), vec(d.size, d.size * 0.5), vec(-d.size, -d.size * 0.7)]), d.color)
      canvas.fillPolygon(placed(m, [vec(-d.size * 0.7, d.size * 0.35), vec(-d.size * 0.05, d.size * 0.35), vec(-d.size * 0.7, -d.size * 0.15)]), darker)
  }
}

/**
 * Polygons of the hand for a fingertip at `tip`, the arm entering from `anchor`. v2 draws a slim forearm, a
 * small palm and a thumb–index pinch: the arm lies across much of the view, so its width sets how many pixels
 * the hand covers against the task object (scripts/motion-budget.ts). Thinner arms (< ~1.6 px at 32 px)
 * vanish under a 3×3 blur and the exact judge no longer finds the hand.
 */
export const handPolygons = (tip: Vec, anchor: Vec): Polygon[] => {
  let dx = tip.x - anchor.x
  let dy = tip.y - anchor.y
  const length = Math.hypot(dx, dy) || 1
  dx /= length
  dy /= length
  const px = -dy
  const py = dx
  const at = (along: number, across: number): Vec => vec(tip.x + dx * along + px * across, tip.y + dy * along + py * across)
  return [
    // forearm from beyond the image border to the wrist
    [vec(anchor.x + px * 0.055, anchor.y + py * 0.055), at(-0.14, 0.05), at(-0.14, -0.05), vec(anchor.x - px * 0.055, anchor.y - py * 0.055)],
    regular(at(-0.09, 0), 0.07, 10, Math.atan2(dy, dx)),
    // index finger to the tip, thumb beside it
    [at(-0.09, -0.022), at(0, -0.014), at(0, 0.014), at(-0.09, 0.022)],
    [at(-0.13, 0.05), at(-0.05, 0.08), at(-0.035, 0.06), at(-0.1, 0.025)]
  ]
}

/** A fingertip and where its arm comes from (world coordinates; see Timeline's `armLine`). */
export interface HandPose {
  readonly tip: Vec
  readonly anchor: Vec
}

/** The camera: world → normalised view coordinates. */
export const cameraOf = (appearance: Appearance): Affine =>
  compose(translate(appearance.view.offsetX, appearance.view.offsetY), compose(scale(appearance.view.zoom), rotate(appearance.view.rotation)))

export const validateRenderOptions = (options: RenderOptions): void => {
  for (const key of ["width", "height"] as const) {
    const v = options[key]
    if (!Number.isInteger(v) || v < MIN_RESOLUTION || v > MAX_RESOLUTION) {
      throw new RangeError(`${key}: expected an integer in [${MIN_RESOLUTION}, ${MAX_RESOLUTION}], got ${v}`)
    }
  }
  if (!Number.isInteger(options.supersample) || options.supersample < 1 || options.supersample > 8) {
    throw new RangeError(`supersample: expected an integer in [1, 8], got ${options.supersample}`)
  }
}

export class Renderer {
  readonly task: Task
  readonly appearance: Appearance
  readonly options: RenderOptions
  private readonly background: Canvas
  private readonly canvas: Canvas
  /** per output pixel and channel: brightness × tint × light gradient */
  readonly light: Float32Array

  constructor(task: Task, appearance: Appearance, options: RenderOptions) {
    validateRenderOptions(options)
    this.task = task
    this.appearance = appearance
    this.options = options
    const camera = cameraOf(appearance)
    this.background = new Canvas(options.width, options.height, options.supersample, camera)
    this.canvas = new Canvas(options.width, options.height, options.supersample, camera)
    this.background.fillAll(tableShader(appearance))
    for (const d of appearance.distractors) drawDistractor(this.background, d)
    if (task.family === "blocks") {
      const [a, , c] = task.tray
      this.background.fillPolygon(task.tray, TRAY_RIM)
      this.background.fillPolygon(blockPolygon(c!.x - a!.x - 0.05, c!.y - a!.y - 0.05, vec((a!.x + c!.x) / 2, (a!.y + c!.y) / 2)), TRAY_COLOR)
    }
    this.light = lightGains(appearance, options)
  }

  /**
   * Renders one frame into `out` (H·W·3 uint8). `hand` is a fingertip and its arm's anchor, or a bare
   * fingertip whose arm comes from the appearance's `armAnchor` (omit for no hand); `noiseFrame` is the
   * frame index that seeds the sensor noise (omit for a noise-free frame).
   */
  render(scene: SceneState, hand: Vec | HandPose | undefined, noiseFrame: number | undefined, out = new Uint8Array(this.options.width * this.options.height * 3)): Uint8Array {
    const canvas = this.canvas
    canvas.copyFrom(this.background)
    this.drawScene(canvas, scene)
    if (hand !== undefined) {
      const pose: HandPose = "tip" in hand ? hand : { tip: hand, anchor: this.appearance.armAnchor }
      for (const polygon of handPolygons(pose.tip, pose.anchor)) canvas.fillPolygon(polygon, this.appearance.skin.color)
    }
    const amplitude = this.appearance.noise.amplitude
    const noise = noiseFrame === undefined || amplitude === 0 ? undefined : noiseSource(this.appearance.noise.seed, noiseFrame, amplitude)
    return canvas.resolve(out, this.light, noise)
  }

  /** The lit colour of the skin at every pixel (the judge finds the hand with it). */
  skinPlate(): Uint8Array {
    const canvas = new Canvas(this.options.width, this.options.height, 1, cameraOf(this.appearance))
    canvas.fillAll(this.appearance.skin.color)
    return canvas.resolve(new Uint8Array(this.options.width * this.options.height * 3), this.light)
  }

  private drawScene(canvas: Canvas, scene: SceneState): void {
    if (scene.family === "fold") {
      for (const layer of scene.layers) {
        const m = layer.sheetToWorld
        if (Math.abs(m.a * m.d - m.b * m.c) < 1e-6) continue // a flap seen edge-on covers nothing
        // each layer casts a small shadow on what lies below it, so folded edges stay visible
        canvas.darkenPolygon(layer.polygon.map((p) => vec(p.x + SHADOW_OFFSET, p.y + SHADOW_OFFSET)), SHADOW_FACTOR)
        canvas.fillPolygon(layer.polygon, paperShader(this.appearance, layer))
      }
      return
    }
    if (this.task.family !== "blocks") throw new Error("Renderer: scene family does not match the task")
    const steps = this.task.steps
    // lifted blocks are drawn last: they are above everything else
    const ordered = [...scene.blocks].sort((p, q) => Number(p.lifted) - Number(q.lifted))
    for (const block of ordered) {
      const step = steps[block.step]!
      const edge: Rgb = [step.color[0] * 0.62, step.color[1] * 0.62, step.color[2] * 0.62]
      // a carried block shows it is lifted by its shadow (its path barely rises: see Scene's carryPath)
      const lift = block.lifted ? 0.06 : 0
      canvas.darkenPolygon(blockPolygon(step.width, step.height, vec(block.center.x + SHADOW_OFFSET + lift, block.center.y + SHADOW_OFFSET + lift)), SHADOW_FACTOR)
      canvas.fillPolygon(blockPolygon(step.width, step.height, block.center), edge)
      canvas.fillPolygon(blockPolygon(step.width - 0.03, step.height - 0.03, block.center), step.color)
    }
  }
}

const lightGains = (appearance: Appearance, options: RenderOptions): Float32Array => {
  const { width, height } = options
  const { brightness, tint, gradient, gradientAngle } = appearance.lighting
  const gx = Math.cos(gradientAngle)
  const gy = Math.sin(gradientAngle)
  const out = new Float32Array(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const nx = ((x + 0.5) / width) * 2 - 1
      const ny = ((y + 0.5) / height) * 2 - 1
      const g = brightness * (1 + gradient * (gx * nx + gy * ny))
      for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = g * tint[c]!
    }
  }
  return out
}

/** Integer noise in [-amplitude, amplitude], a pure function of (seed, frame, element index). */
const noiseSource = (seed: number, frame: number, amplitude: number): ((index: number) => number) => {
  const base = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(frame + 1, 0xc2b2ae35)
  const span = 2 * amplitude + 1
  return (index) => {
    let h = base ^ Math.imul(index + 0x27d4eb2f, 0x165667b1)
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d)
    h = Math.imul(h ^ (h >>> 12), 0x297a2d39)
    h ^= h >>> 15
    return ((h >>> 0) % span) - amplitude
  }
}
