/**
 * Contact sheets: grids of frames (one row per episode or phase, one column per step), upscaled with
 * nearest-neighbour and encoded as PNG (pngjs, via formats/image.ts). What a person looks at to check that steps are distinct
 * and domains differ.
 */
import { encodePng } from "../formats/image.ts"
import type { FrameLabel } from "./Timeline.ts"

export interface Tile {
  readonly width: number
  readonly height: number
  /** uint8 RGB [H, W, 3] */
  readonly pixels: Uint8Array
}

export interface GridOptions {
  /** each source pixel becomes scale × scale */
  readonly scale: number
  /** gap between tiles in output pixels */
  readonly gap: number
}

/** Lays rows of tiles (rows may differ in length) onto one white-gapped RGBA image and encodes it as PNG. */
export const encodeGridPng = (rows: ReadonlyArray<ReadonlyArray<Tile | undefined>>, options: GridOptions = { scale: 4, gap: 4 }): Uint8Array => {
  const { scale, gap } = options
  let tileW = 0
  let tileH = 0
  for (const row of rows) for (const t of row) if (t !== undefined) { tileW = Math.max(tileW, t.width * scale); tileH = Math.max(tileH, t.height * scale) }
  const cols = Math.max(1, ...rows.map((r) => r.length))
  const width = gap + cols * (tileW + gap)
  const height = gap + rows.length * (tileH + gap)
  const data = new Uint8Array(width * height * 3).fill(255)
  rows.forEach((row, r) => {
    row.forEach((tile, c) => {
      if (tile === undefined) return
      const x0 = gap + c * (tileW + gap)
      const y0 = gap + r * (tileH + gap)
      for (let y = 0; y < tile.height * scale; y++) {
        for (let x = 0; x < tile.width * scale; x++) {
          const s = (Math.floor(y / scale) * tile.width + Math.floor(x / scale)) * 3
          const d = ((y0 + y) * width + x0 + x) * 3
          data[d] = tile.pixels[s]!
          data[d + 1] = tile.pixels[s + 1]!
          data[d + 2] = tile.pixels[s + 2]!
        }
      }
    })
  })
  return encodePng({ width, height, data })
}

/**
 * Which frames of a labelled episode go on its two contact-sheet rows: the settled state after each step
 * (column k = the last frame showing k steps done, hand withdrawn) and the middle of each step's action.
 */
export const contactFrames = (labels: ReadonlyArray<FrameLabel>): { states: number[]; actions: number[] } => {
  const states: number[] = []
  const actions: number[] = []
  const steps = Math.max(0, ...labels.map((l) => l.state.completed))
  for (let k = 0; k <= steps; k++) {
    // the last settled frame (release or idle) showing k steps done
    let settled = -1
    labels.forEach((l, i) => {
      if (l.state.completed === k && (l.phase === "release" || l.phase === "idle")) settled = i
    })
    if (settled >= 0) states.push(settled)
  }
  for (let step = 1; step <= steps; step++) {
    const acting = labels.flatMap((l, i) => (l.step === step && (l.phase === "fold" || l.phase === "carry") ? [i] : []))
    if (acting.length > 0) actions.push(acting[Math.floor(acting.length / 2)]!)
  }
  return { states, actions }
}
