import * as tf from "@tensorflow/tfjs"
import { AdamW, Init, selectBackend, trainStep } from "@vw2/nn"
import { beforeAll, describe, expect, it } from "vitest"
import { repeatFirstFrameError, x0Error } from "../src/DenoiseProbe.ts"
import { rectifiedFlowLoss } from "../src/Objective.ts"
import { miniFlowObjective } from "../src/RectifiedFlow.ts"
import { VideoDiT } from "../src/VideoDiT.ts"
import { miniSwitches, movingSquare, tinyDiT } from "./support.ts"

beforeAll(async () => {
  await selectBackend()
})

describe("the mini VDM is a denoiser", () => {
  it("starts as repeat-the-first-frame (residual + edm) and beats it at σ = 1 after a short training", () => {
    const config = tinyDiT({ ...miniSwitches, width: 48, control: { ...tinyDiT().control, enabled: false }, contextDropout: 0 })
    const dit = new VideoDiT(Init.seeded(0), config)
    const objective = miniFlowObjective
    // two clips: the square moving right, and the same clip mirrored (moving left)
    const clip = movingSquare(5, 16)
    const batch = tf.concat([clip, tf.reverse(clip, 3)], 0) // [2, 5, 16, 16, 3]
    const repeat = repeatFirstFrameError(batch)
    const at = (sigma: number) => x0Error(dit, batch, sigma, { objective, seed: 3 })
    const init = at(1)
    // untrained: the prediction is the first frame plus c_skip·x_σ (c_skip ≈ 0.01 at σ = 1)
    expect(Math.abs(init.mse / repeat.mse - 1)).toBeLessThan(0.1)
    const optimizer = new AdamW({ lr: 3e-3, weightDecay: 0 })
    for (let step = 0; step < 120; step++) {
      trainStep({ variables: dit.trainableVariables(), optimizer, clipNorm: 1, lossFn: () => rectifiedFlowLoss(dit, batch, undefined, undefined, { seed: step, objective }).loss })
    }
    const trained = at(1)
    expect(trained.mse).toBeLessThan(0.7 * repeat.mse)
    expect(trained.l1).toBeLessThan(repeat.l1)
    optimizer.dispose()
    dit.dispose()
  })
})
