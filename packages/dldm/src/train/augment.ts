/**
 * Appearance augmentation for the warm-up (ours, not the authors'): one random colour transform per clip —
 * channel permutation, per-channel gain and offset of strength s — the same on all its frames, so motion is
 * untouched while colours vary beyond the train split's palette (held-out test domains change table, paper
 * and block colours, docs/paper.md "Evaluation").
 */
import * as tf from "@tensorflow/tfjs"
import { Rng } from "@vw2/nn"

const PERMUTATIONS = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0]
] as const

/** video [B, T, H, W, 3] in [0, 1] → colour-transformed video in [0, 1]; `strength` 0 returns a copy. */
export function colourAugment(video: tf.Tensor5D, strength: number, seed: number): tf.Tensor5D {
  return tf.tidy(() => {
    if (strength <= 0) return video.clone()
    const rng = new Rng(seed)
    const clips = tf.unstack(video, 0).map((clip) => {
      const perm = PERMUTATIONS[Math.floor(rng.next() * PERMUTATIONS.length)]!
      const gain = [0, 1, 2].map(() => 1 + strength * (rng.next() * 2 - 1) * 0.5)
      const offset = [0, 1, 2].map(() => strength * (rng.next() * 2 - 1) * 0.25)
      return tf.clipByValue(tf.add(tf.mul(tf.gather(clip, [...perm], 3), tf.tensor1d(gain)), tf.tensor1d(offset)), 0, 1)
    })
    return tf.stack(clips, 0) as tf.Tensor5D
  })
}
