/**
 * Appearance augmentation for the warm-up (ours, not the authors'): each clip gets one random colour
 * transform — a channel permutation, then a per-channel gain and offset — the same on all its frames, so
 * motion is untouched and appearance varies. Why (NOTES-collapse.md): at the mini preset even a decoder that
 * sees the future frames' features overfits the train domains' appearance and is worse than repeating frame
 * 0 on the held-out test domains (new table and paper textures).
 */
import * as tf from "@tensorflow/tfjs"

const PERMUTATIONS = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0]
] as const

/** video [B, T, H, W, 3] in [0, 1] → colour-transformed video in [0, 1]; `strength` 0 = unchanged. */
export function colourAugment(video: tf.Tensor5D, strength: number, seed: number): tf.Tensor5D {
  return tf.tidy(() => {
    if (strength <= 0) return video.clone()
    let s = (seed * 2654435761 + 97) >>> 0
    const rand = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0
      return s / 2 ** 32
    }
    const clips = tf.unstack(video, 0).map((clip) => {
      const perm = PERMUTATIONS[Math.floor(rand() * PERMUTATIONS.length)]!
      const gain = [0, 1, 2].map(() => 1 + strength * (rand() * 2 - 1) * 0.5)
      const offset = [0, 1, 2].map(() => strength * (rand() * 2 - 1) * 0.25)
      const permuted = tf.gather(clip, [...perm], 3)
      return tf.clipByValue(tf.add(tf.mul(permuted, tf.tensor1d(gain)), tf.tensor1d(offset)), 0, 1)
    })
    return tf.stack(clips, 0).reshape(video.shape) as tf.Tensor5D
  }) as tf.Tensor5D
}
