/**
 * Contact sheet for a robot dataset: one row per episode (up to `rows`), `cols` frames evenly spaced from
 * its first to its last frame, as a PNG — a quick visual check of what the demonstrations show. Frames are
 * enlarged `scale`× (nearest neighbour) so 32-pixel frames stay legible.
 */
import { Dataset } from "../dataset/Dataset.ts"
import { encodePng } from "../formats/image.ts"

export const robotContactSheet = (datasetDir: string, rows = 8, cols = 6, scale = 3): Uint8Array => {
  const dataset = Dataset.open(datasetDir)
  const { height: h, width: w } = dataset
  const episodes = [...dataset.episodes({ split: "train" }).slice(0, Math.ceil(rows / 2)), ...dataset.episodes({ split: "test" })].slice(0, rows)
  const n = Math.max(1, episodes.length)
  const sheet = new Uint8Array(n * h * cols * w * 3).fill(255)
  episodes.forEach((episode, row) => {
    const picks = Array.from({ length: cols }, (_, k) => Math.round((k * (episode.length - 1)) / Math.max(1, cols - 1)))
    const frames = dataset.readFrames(episode.id, picks)
    picks.forEach((_, col) => {
      for (let y = 0; y < h; y++) {
        const src = frames.subarray(((col * h + y) * w) * 3, ((col * h + y + 1) * w) * 3)
        sheet.set(src, ((row * h + y) * cols * w + col * w) * 3)
      }
    })
  })
  if (scale === 1) return encodePng({ width: cols * w, height: n * h, data: sheet })
  const W = cols * w
  const big = new Uint8Array(n * h * scale * W * scale * 3)
  for (let y = 0; y < n * h * scale; y++) {
    for (let x = 0; x < W * scale; x++) {
      const src = (Math.floor(y / scale) * W + Math.floor(x / scale)) * 3
      big.set(sheet.subarray(src, src + 3), (y * W * scale + x) * 3)
    }
  }
  return encodePng({ width: W * scale, height: n * h * scale, data: big })
}
