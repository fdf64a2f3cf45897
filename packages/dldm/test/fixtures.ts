/** A tiny synthetic clip: a coloured square moving right over a flat background (MiniCraft-like motion). */
import * as tf from "@tensorflow/tfjs"

export function movingSquares(batch: number, frames: number, size = 32, seed = 0): tf.Tensor5D {
  const data = new Float32Array(batch * frames * size * size * 3)
  for (let b = 0; b < batch; b++) {
    const bg = [0.2 + 0.1 * ((b + seed) % 3), 0.3, 0.5 - 0.1 * (b % 2)]
    const fg = [0.9, 0.8 - 0.3 * (b % 2), 0.1]
    const y0 = 4 + ((b * 7 + seed) % 16)
    const speed = 1 + (b % 3)
    for (let t = 0; t < frames; t++) {
      const x0 = (2 + t * speed + b * 3) % (size - 8)
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) {
          const inside = y >= y0 && y < y0 + 8 && x >= x0 && x < x0 + 8
          const base = (((b * frames + t) * size + y) * size + x) * 3
          for (let c = 0; c < 3; c++) data[base + c] = inside ? fg[c]! : bg[c]!
        }
    }
  }
  return tf.tensor5d(data, [batch, frames, size, size, 3])
}

export const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!)
