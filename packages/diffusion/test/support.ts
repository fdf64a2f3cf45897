/** Shared fixtures: a tiny DiT config and a weight randomiser (so zero-initialised parts are not trivially inert). */
import * as tf from "@tensorflow/tfjs"
import type { Module } from "@vw2/nn"
import { miniDiT, type VideoDiTConfig } from "../src/VideoDiTConfig.ts"

/** The switches of ours the mini preset turns on (tinyDiT starts from the Cosmos-like defaults: all off). */
export const miniSwitches = { firstFrameChannels: true, codePositions: true, codeModulation: true } as const

export const tinyDiT = (over: Partial<VideoDiTConfig> = {}): VideoDiTConfig => ({
  ...miniDiT,
  firstFrameChannels: false,
  codePositions: false,
  codeModulation: false,
  patchSpatial: 4,
  width: 32,
  heads: 2,
  depth: 2,
  contextDim: 16,
  control: { ...miniDiT.control, blocks: 1 },
  ...over
})

const nameSeed = (name: string): number => {
  let h = 2166136261
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0
  return h
}

/** Overwrite every parameter (optionally filtered) with N(0, std²) drawn from a seed derived from its name. */
export const randomize = (m: Module, std = 0.3, filter: (name: string) => boolean = () => true): void => {
  for (const [name, p] of m.namedParams()) {
    if (!filter(name)) continue
    const v = tf.randomNormal([...p.shape], 0, std, "float32", nameSeed(name))
    p.assign(v, name)
    v.dispose()
  }
}

export const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!)

/** A synthetic clip [1, T, H, W, 3] in [−1, 1]: a bright square moving right over a dark gradient. */
export const movingSquare = (frames: number, size: number): tf.Tensor => {
  const data = new Float32Array(frames * size * size * 3)
  for (let t = 0; t < frames; t++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const inSquare = y >= size / 4 && y < size / 4 + size / 2.5 && x >= t * 2 && x < t * 2 + size / 2.5
        const i = ((t * size + y) * size + x) * 3
        data[i] = inSquare ? 0.9 : -0.8 + (0.4 * y) / size
        data[i + 1] = inSquare ? 0.5 : -0.6
        data[i + 2] = inSquare ? -0.7 : -0.2 + (0.3 * x) / size
      }
  return tf.tensor(data, [1, frames, size, size, 3])
}
