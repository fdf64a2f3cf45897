import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { colourAugment } from "../src/index.ts"
import { maxAbsDiff, randomMovingSquares } from "./fixtures.ts"

describe("colourAugment (warm-up appearance augmentation)", () => {
  it("changes colours per clip but not where or when pixels change: static pixels stay static, strength 0 is the identity", () => {
    const video = randomMovingSquares(4, 9, 21)
    expect(maxAbsDiff(colourAugment(video, 0, 1), video)).toBe(0)
    const aug = colourAugment(video, 0.8, 1)
    expect(aug.shape).toEqual(video.shape)
    expect(maxAbsDiff(aug, video)).toBeGreaterThan(0.05)
    // a pixel that does not change between frames 0 and 1 does not change after the transform either
    tf.tidy(() => {
      const still = tf.lessEqual(tf.max(tf.abs(tf.sub(video.slice([0, 1], [-1, 1]), video.slice([0, 0], [-1, 1]))), -1), 0)
      const moved = tf.max(tf.abs(tf.sub(aug.slice([0, 1], [-1, 1]), aug.slice([0, 0], [-1, 1]))), -1)
      expect(tf.max(tf.where(still, moved, tf.zerosLike(moved))).dataSync()[0]).toBe(0)
    })
    // deterministic in the seed
    expect(maxAbsDiff(colourAugment(video, 0.8, 1), aug)).toBe(0)
  })
})
