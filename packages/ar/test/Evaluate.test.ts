import * as tf from "@tensorflow/tfjs"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runStageDirect as runStage } from "@vw2/core"
import { ar } from "../src/ArStage.ts"
import { writeCodeDataset, type SyntheticEpisode } from "./support/codeDataset.ts"

await tf.setBackend("cpu")

/**
 * Codes that depend on the start frame's shade (the "scene state") and on the history: a model that reads its
 * conditioning predicts them; one that learned only code frequencies cannot beat the unigram.
 */
const episode = (id: string, split: "train" | "test", offset: number): SyntheticEpisode => {
  const clips = [0, 1, 2, 3].map((k) => [(offset + 2 * k) % 10, (offset + 2 * k + 1) % 10])
  return { id, split, task: "t", instruction: "do the task", clips, shades: clips.map((_, k) => 40 + 60 * k) }
}

describe("held-out teacher-forced evaluation of the AR", () => {
  it("logs top-1 against the unigram baseline: a trained model beats it by ≥ 2×, an untrained one does not", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-ar-eval-"))
    writeCodeDataset(dir, { codeVocab: 10, queries: 2, transitionsPerClip: 1, clipLength: 3, height: 8, width: 8 }, [
      episode("a", "train", 0),
      episode("b", "train", 0),
      episode("c", "test", 0)
    ])
    const config = (steps: number) => ({
      model: { dim: 32, depth: 2, heads: 4, mlpRatio: 2, patchSize: 4, historyClips: 1 },
      text: { kind: "vocab" as const, maxTokens: 4 },
      train: { steps, batchSize: 8, lr: 3e-3, warmupSteps: 5, weightDecay: 0, logEvery: 10 }
    })
    const heldOut = (run: Awaited<ReturnType<typeof runStage>>) => {
      const last = run.metrics.filter((m) => m.values["ar/heldout/top1"] !== undefined).at(-1)!.values
      const file = JSON.parse(fs.readFileSync(path.join(run.outputRoot, "checkpoint", "heldout.json"), "utf8")) as { top1: number; unigramTop1: number; split: string }
      expect(file.top1).toBeCloseTo(last["ar/heldout/top1"]!, 6)
      expect(file.split).toBe("test")
      return last
    }
    const untrained = heldOut(await runStage(ar, config(1), { codes: dir }))
    expect(untrained["ar/heldout/top1_over_unigram"]!).toBeLessThan(2)
    const trained = heldOut(await runStage(ar, config(150), { codes: dir }))
    // 10 distinct codes + terminators: the unigram gets at most a few positions right
    expect(trained["ar/heldout/unigram_top1"]!).toBeLessThan(0.35)
    expect(trained["ar/heldout/top1"]!).toBeGreaterThan(0.9)
    expect(trained["ar/heldout/top1_over_unigram"]!).toBeGreaterThanOrEqual(2)
  }, 120_000)
})
