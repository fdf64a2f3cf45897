import * as tf from "@tensorflow/tfjs"
import { AdamW, Init, trainStep } from "@vw2/nn"
import { describe, expect, it } from "vitest"
import { actionLoss, CalvinHead } from "../src/calvin/CalvinHead.ts"

await tf.setBackend("cpu")

describe("CALVIN action head", () => {
  it("fits a fixed batch of code → action pairs", () => {
    const arch = { codeEmbedDim: 8, hidden: 64, layers: 2, useProprio: true, codeVocab: 20, codesPerTransition: 4, actionsPerTransition: 2 }
    const head = new CalvinHead(Init.seeded(0), arch)
    const b = 8
    const codes = tf.tensor2d(Int32Array.from({ length: b * 4 }, (_, i) => (i * 7) % 20), [b, 4], "int32")
    const proprio = tf.tensor2d(Float32Array.from({ length: b * 15 }, (_, i) => Math.sin(i)), [b, 15])
    const actions = tf.tensor3d(Float32Array.from({ length: b * 2 * 7 }, (_, i) => Math.cos(i * 1.3)), [b, 2, 7])
    expect(head.call(codes, proprio).shape).toEqual([b, 2, 7])
    const optimizer = new AdamW({ lr: 3e-3, weightDecay: 0 })
    const losses: Array<number> = []
    for (let i = 0; i < 150; i++) losses.push(trainStep({ variables: head.trainableVariables(), optimizer, lossFn: () => actionLoss(head, codes, proprio, actions) }).loss)
    expect(losses[0]!).toBeGreaterThan(0.3)
    expect(losses[losses.length - 1]!).toBeLessThan(0.01)
    optimizer.dispose()
    head.dispose()
    tf.dispose([codes, proprio, actions])
  })
})
