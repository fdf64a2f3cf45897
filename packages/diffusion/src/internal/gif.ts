/** Side-by-side video GIFs (ground truth | generated) with gifenc, upscaled so 32×32 frames stay visible. */

interface GifencModule {
  GIFEncoder(): {
    writeFrame(index: Uint8Array, width: number, height: number, opts?: { palette?: number[][]; delay?: number }): void
    finish(): void
    bytes(): Uint8Array
  }
  quantize(rgba: Uint8Array, maxColors: number): number[][]
  applyPalette(rgba: Uint8Array, palette: number[][]): Uint8Array
}

// gifenc ships no types: bind the calls used here to a local interface instead of an ambient declaration.
const gifencName = "gifenc"
/** gifenc is CommonJS: plain Node puts its functions on `default`, vitest resolves its ESM build with named exports. */
const loadGifenc = async (): Promise<GifencModule> => {
  const mod = (await import(gifencName)) as GifencModule & { default?: GifencModule }
  return typeof mod.GIFEncoder === "function" ? mod : mod.default!
}

/** One video: [T, H, W, 3] values in [0, 1]. */
export interface RgbFrames {
  readonly data: Float32Array
  readonly frames: number
  readonly height: number
  readonly width: number
}

export const sideBySideGif = async (panels: ReadonlyArray<RgbFrames>, scale = 4, delayMs = 150): Promise<Uint8Array> => {
  const { GIFEncoder, quantize, applyPalette } = await loadGifenc()
  const { height, width } = panels[0]!
  const gap = scale
  const outW = panels.length * width * scale + (panels.length - 1) * gap
  const outH = height * scale
  const frames = Math.max(...panels.map((p) => p.frames))
  const gif = GIFEncoder()
  for (let t = 0; t < frames; t++) {
    const rgba = new Uint8Array(outW * outH * 4).fill(255)
    panels.forEach((panel, p) => {
      const f = Math.min(t, panel.frames - 1)
      const left = p * (width * scale + gap)
      for (let y = 0; y < outH; y++)
        for (let x = 0; x < width * scale; x++) {
          const src = ((f * height + Math.floor(y / scale)) * width + Math.floor(x / scale)) * 3
          const dst = (y * outW + left + x) * 4
          for (let c = 0; c < 3; c++) rgba[dst + c] = Math.round(255 * Math.min(1, Math.max(0, panel.data[src + c]!)))
        }
    })
    const palette = quantize(rgba, 256)
    gif.writeFrame(applyPalette(rgba, palette), outW, outH, { palette, delay: delayMs })
  }
  gif.finish()
  return gif.bytes()
}
