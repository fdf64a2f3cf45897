/**
 * Rollout GIFs: ground truth (left) and generated (right), side by side, upscaled by an integer factor so
 * tiny MiniCraft frames stay visible in the MLflow UI. Encoded with gifenc.
 */
import * as gifencModule from "gifenc"
import { frameAt, type RgbVideo } from "./Video.ts"

export interface SideBySideOptions {
  /** integer upscale factor for each pixel */
  readonly scale?: number
  /** milliseconds per frame */
  readonly delayMs?: number
  /** width in (upscaled) pixels of the white gap between the two panels */
  readonly gap?: number
}

// gifenc is CommonJS: under plain Node its functions sit on the default export; bundlers (vitest) resolve
// its ESM build with named exports. Take whichever this loader produced.
const gifenc: typeof gifencModule =
  typeof (gifencModule as { GIFEncoder?: unknown }).GIFEncoder === "function" ? gifencModule : (gifencModule as unknown as { default: typeof gifencModule }).default
const { applyPalette, GIFEncoder, quantize } = gifenc

/** Compose frame t of every panel into one RGBA canvas; a panel shorter than t shows its last frame. */
const composeFrame = (panels: ReadonlyArray<RgbVideo>, t: number, scale: number, gap: number) => {
  const { height, width } = panels[0]!
  const outW = panels.length * width * scale + (panels.length - 1) * gap
  const outH = height * scale
  const rgba = new Uint8Array(outW * outH * 4).fill(255)
  panels.forEach((panel, p) => {
    const frame = frameAt(panel, Math.min(t, panel.frames - 1))
    const left = p * (width * scale + gap)
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < width * scale; x++) {
        const src = (Math.floor(y / scale) * width + Math.floor(x / scale)) * 3
        const dst = (y * outW + left + x) * 4
        rgba[dst] = frame[src]!
        rgba[dst + 1] = frame[src + 1]!
        rgba[dst + 2] = frame[src + 2]!
      }
    }
  })
  return { rgba, width: outW, height: outH }
}

/** GIF bytes of the panels played side by side for the longest panel's length. */
export const sideBySideGif = (panels: ReadonlyArray<RgbVideo>, options: SideBySideOptions = {}): Uint8Array => {
  if (panels.length === 0) throw new Error("sideBySideGif: no panels")
  const { height, width } = panels[0]!
  for (const p of panels) {
    if (p.height !== height || p.width !== width) throw new Error(`sideBySideGif: panels differ in size (${p.height}×${p.width} vs ${height}×${width})`)
    if (p.frames === 0) throw new Error("sideBySideGif: a panel has no frames")
  }
  const scale = options.scale ?? Math.max(1, Math.floor(192 / height))
  const gap = options.gap ?? 4
  const frames = Math.max(...panels.map((p) => p.frames))
  const gif = GIFEncoder()
  for (let t = 0; t < frames; t++) {
    const canvas = composeFrame(panels, t, scale, gap)
    const palette = quantize(canvas.rgba, 256)
    gif.writeFrame(applyPalette(canvas.rgba, palette), canvas.width, canvas.height, { palette, delay: options.delayMs ?? 120 })
  }
  gif.finish()
  return gif.bytes()
}
