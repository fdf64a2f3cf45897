import * as tf from "@tensorflow/tfjs"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { loadArCheckpoint } from "../src/ArCheckpoint.ts"
import { ar } from "../src/ArStage.ts"
import { historyStream } from "../src/CodeStream.ts"
import { encodeInstruction } from "../src/InstructionTokenizer.ts"
import { Rng } from "../src/internal/nn.ts"
import { sampleClip } from "../src/Sampler.ts"
import { writeCodeDataset } from "./support/codeDataset.ts"
import { runStageDirect as runStage } from "@vw2/core"

await tf.setBackend("cpu")

describe("stage ar", () => {
  it("trains on a code-dataset, logs a falling loss and writes a loadable checkpoint", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-codes-"))
    const layout = { codeVocab: 12, queries: 2, transitionsPerClip: 1, clipLength: 3, height: 8, width: 8 }
    writeCodeDataset(dir, layout, [
      { id: "a", split: "train", task: "fold-plane", instruction: "Fold a plane", clips: [[1, 2], [3, 4]], shades: [10, 200] },
      { id: "b", split: "train", task: "blocks-tower", instruction: "Build a tower", clips: [[5, 6], [7, 8], [9, 10]], shades: [60, 120, 250] },
      { id: "c", split: "test", task: "fold-plane", instruction: "Fold a plane", clips: [[0, 0]], shades: [0] }
    ])
    const run = await runStage(ar, {
      model: { dim: 32, depth: 2, heads: 4, mlpRatio: 2, patchSize: 4, historyClips: 2 },
      text: { kind: "vocab", maxTokens: 4 },
      train: { steps: 80, batchSize: 5, lr: 3e-3, warmupSteps: 5, weightDecay: 0, logEvery: 5 }
    }, { codes: dir })
    const losses = run.metrics.flatMap((m) => (m.values["ar/loss"] === undefined ? [] : [m.values["ar/loss"]]))
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! * 0.2)

    const { model, config } = await loadArCheckpoint(path.join(run.outputRoot, "checkpoint"))
    expect(config.vocabulary.words).toEqual(["<pad>", "<unk>", "a", "build", "fold", "plane", "tower"])
    expect(model.arch.codesPerClip).toBe(2)
    // the trained model reproduces episode b's second clip from its start frame and history
    const frame = new Float32Array(8 * 8 * 3).fill(120 / 255)
    const sampled = sampleClip(
      model,
      { text: encodeInstruction(config.vocabulary, "Build a tower"), frame, stream: historyStream(Int32Array.from([5, 6]), 2, 1, 2, 12) },
      { temperature: 0, topK: 0, useKvCache: true },
      new Rng(0)
    )
    expect([...sampled.codes]).toEqual([7, 8])
    model.dispose()
  })

  it("rejects the paper-scale pretrained text encoder with the config path", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-codes-"))
    writeCodeDataset(dir, { codeVocab: 4, queries: 1, transitionsPerClip: 1, clipLength: 2, height: 8, width: 8 }, [
      { id: "a", split: "train", task: "t", instruction: "x", clips: [[1]], shades: [0] }
    ])
    await expect(runStage(ar, { text: { kind: "pretrained", model: "google/t5-v1_1-xxl" } }, { codes: dir })).rejects.toThrow(/ar\.text/)
  })
})
