/**
 * Regression for the mini code collapse (NOTES-collapse.md): warm-up training on a fixed batch of 8 moving
 * squares, the warm-up's loss and optimiser settings. With the mini preset the codes must stay spread over
 * the FSQ grid and the clip's own codes must reconstruct it better than another clip's codes. The same run
 * with the authors' Q-Former inputs (no frame differences, 0.02-sized queries) and no latentNorm uses far
 * fewer indices.
 */
import * as tf from "@tensorflow/tfjs"
import { AdamW, Init, selectBackend, trainStep } from "@vw2/nn"
import { describe, expect, it } from "vitest"
import { Dldm, miniPreset, type DldmConfig } from "../src/index.ts"
import { randomMovingSquares } from "./fixtures.ts"

const STEPS = 50

/** Mean |a − b| over frames 1..T−1. */
const l1After0 = (a: tf.Tensor, b: tf.Tensor): number =>
  tf.tidy(() => {
    const t = a.shape[1]!
    return tf.mean(tf.abs(tf.sub(tf.slice(a, [0, 1], [-1, t - 1]), tf.slice(b, [0, 1], [-1, t - 1])))).dataSync()[0]!
  })

function trainAndProbe(config: DldmConfig, video: tf.Tensor5D) {
  const model = new Dldm(Init.seeded(0), config)
  const optimizer = new AdamW({ lr: 1e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0.1 })
  const variables = model.trainableVariables()
  for (let i = 0; i < STEPS; i++) {
    trainStep({ variables, optimizer, clipNorm: 1, lossFn: () => model.reconstructionLoss(video, model.forward(video, true).recon) })
  }
  const result = tf.tidy(() => {
    const { latents, indices } = model.codesOf(video) // inference mode: latentNorm's running statistics
    const first = tf.slice(video, [0, 0], [-1, 1])
    const n = video.shape[0]
    const partner = Array.from({ length: n }, (_, i) => (i + 1) % n)
    return {
      own: l1After0(model.decodeLowFi(first, indices), video),
      swapped: l1After0(model.decodeLowFi(first, tf.gather(indices, partner)), video),
      distinct: new Set(indices.dataSync()).size,
      // std over clips of FSQ's bounded values: a code changes when its bounded value moves by ~1
      boundStd: tf.mean(tf.sqrt(tf.moments(model.fsq.bound(latents), 0).variance)).dataSync()[0]!
    }
  })
  optimizer.dispose()
  model.dispose()
  return result
}

await selectBackend()
// 2 × 50 training steps take ~30 s on the native backend and ~9 min on pure JS: a training-dynamics check,
// run where training runs (the cpu suite still covers the model's shapes, causality and checkpoints)
const native = tf.getBackend() === "tensorflow"

describe("warm-up codes carry clip-specific motion (mini code-collapse regression)", () => {
  it.skipIf(!native)(`after ${STEPS} steps on 8 moving squares: codes spread, own codes reconstruct better than swapped ones; the authors' Q-Former inputs without latentNorm spread far fewer`, () => {
    const video = randomMovingSquares(8, miniPreset.frames, 4242)
    const fixed = trainAndProbe(miniPreset, video)
    const authorsInputs = trainAndProbe({ ...miniPreset, latentNorm: "none", frameDiff: 0, qformer: { ...miniPreset.qformer, context: "pair", queryInit: 0.02 } }, video)
    video.dispose()
    // measured (seed 0, native): mini preset own .073 vs swapped .077, 42 distinct, boundStd .62; without frame
    // differences, with 0.02 queries and no latentNorm 19 distinct, boundStd .36. (Before issue 13, with the token
    // decoder, no latentNorm collapsed to 3 indices; with the conv decoder and frame differences it no longer does:
    // 71 distinct — latentNorm stays because on MiniCraft it doubles the held-out perplexity, scripts/warmup-probe.ts.)
    expect(fixed.distinct).toBeGreaterThanOrEqual(12)
    expect(fixed.boundStd).toBeGreaterThan(0.4)
    expect(fixed.own).toBeLessThan(0.97 * fixed.swapped)
    expect(authorsInputs.distinct).toBeLessThan(0.6 * fixed.distinct)
  }, 180_000)
})
