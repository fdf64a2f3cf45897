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

/**
 * Random moving squares: per clip a random flat background, a random-coloured 8×8 square at a random start
 * and a random velocity (dx, dy) ∈ {−3..3}² (bouncing off the borders). Frame 0 says where the square is but
 * not where it goes: only codes that carry the motion let a decoder beat repeating frame 0.
 */
export function randomMovingSquares(batch: number, frames: number, seed: number, size = 32, positions?: number[][][]): tf.Tensor5D {
  let s = (seed * 2654435761 + 12345) >>> 0
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
  const data = new Float32Array(batch * frames * size * size * 3)
  const side = 8
  for (let b = 0; b < batch; b++) {
    const bg = [rand(), rand(), rand()].map((v) => 0.15 + 0.3 * v)
    const fg = [rand(), rand(), rand()].map((v) => 0.55 + 0.45 * v)
    let x = Math.floor(rand() * (size - side))
    let y = Math.floor(rand() * (size - side))
    let dx = Math.floor(rand() * 7) - 3
    let dy = Math.floor(rand() * 7) - 3
    const track: number[][] = []
    positions?.push(track)
    for (let t = 0; t < frames; t++) {
      track.push([x, y])
      for (let py = 0; py < size; py++)
        for (let px = 0; px < size; px++) {
          const inside = py >= y && py < y + side && px >= x && px < x + side
          const base = (((b * frames + t) * size + py) * size + px) * 3
          for (let c = 0; c < 3; c++) data[base + c] = inside ? fg[c]! : bg[c]!
        }
      if (x + dx < 0 || x + dx > size - side) dx = -dx
      if (y + dy < 0 || y + dy > size - side) dy = -dy
      x += dx
      y += dy
    }
  }
  return tf.tensor5d(data, [batch, frames, size, size, 3])
}

/**
 * Panning textures: per clip a random blocky texture (4×4-pixel cells) that shifts as a whole by a random
 * (dx, dy) ∈ {−2..2}² pixels per frame (wrapping around). Frame 0 says nothing about the direction, so only
 * codes that carry the motion let a decoder beat repeating frame 0; a global shift is the simplest motion
 * to render, which keeps a training test short. `velocities` receives each clip's (dx, dy).
 */
export function panningTextures(batch: number, frames: number, seed: number, size = 32, velocities?: number[][]): tf.Tensor5D {
  let s = (seed * 2654435761 + 777) >>> 0
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
  const cell = 4
  const cells = size / cell
  const data = new Float32Array(batch * frames * size * size * 3)
  for (let b = 0; b < batch; b++) {
    const texture = Array.from({ length: cells * cells * 3 }, () => 0.1 + 0.8 * rand())
    const dx = Math.floor(rand() * 5) - 2
    const dy = Math.floor(rand() * 5) - 2
    velocities?.push([dx, dy])
    for (let t = 0; t < frames; t++)
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) {
          const sx = (((x - dx * t) % size) + size) % size
          const sy = (((y - dy * t) % size) + size) % size
          const c0 = (Math.floor(sy / cell) * cells + Math.floor(sx / cell)) * 3
          const base = (((b * frames + t) * size + y) * size + x) * 3
          for (let c = 0; c < 3; c++) data[base + c] = texture[c0 + c]!
        }
  }
  return tf.tensor5d(data, [batch, frames, size, size, 3])
}
