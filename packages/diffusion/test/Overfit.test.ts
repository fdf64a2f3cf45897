import * as tf from "@tensorflow/tfjs"
import { AdamW, Init, selectBackend, trainStep } from "@vw2/nn"
import { beforeAll, describe, expect, it } from "vitest"
import { rectifiedFlowLoss, sample } from "../src/Objective.ts"
import { VideoDiT } from "../src/VideoDiT.ts"
import { movingSquare, tinyDiT } from "./support.ts"

// the fastest backend available (native TensorFlow when built by setup step 40, else pure JS)
beforeAll(async () => {
  await selectBackend()
})

describe("overfit", () => {
  it("the sampler turns noise into frames whose error to the training clip shrinks as training proceeds", () => {
    const config = tinyDiT({ width: 48, control: { ...tinyDiT().control, enabled: false }, contextDropout: 0 })
    const dit = new VideoDiT(Init.seeded(0), config)
    const clip = movingSquare(3, 16) // [1, 3, 16, 16, 3]
    const batch = tf.tile(clip, [2, 1, 1, 1, 1])
    const optimizer = new AdamW({ lr: 3e-3, weightDecay: 0 })
    /** MSE of the generated frames 1..2 (frame 0 is the given condition) to the clip, fixed sampling noise */
    const sampleError = () =>
      tf.tidy(() => {
        const out = sample(dit, tf.slice(clip, [0, 0], [1, 1]), undefined, undefined, { frames: 3, steps: 10, cfg: 0, solver: "heun", seed: 42 })
        return tf.mean(tf.square(tf.sub(tf.slice(out, [0, 1], [-1, 2]), tf.slice(clip, [0, 1], [-1, 2])))).dataSync()[0]!
      })
    const errors = [sampleError()]
    let step = 0
    for (const until of [40, 120]) {
      for (; step < until; step++) {
        trainStep({ variables: dit.trainableVariables(), optimizer, lossFn: () => rectifiedFlowLoss(dit, batch, undefined, undefined, { seed: step }).loss })
      }
      errors.push(sampleError())
    }
    expect(errors[1]!).toBeLessThan(errors[0]!)
    expect(errors[2]!).toBeLessThan(errors[1]!)
    expect(errors[2]!).toBeLessThan(0.35 * errors[0]!)
  })
})
