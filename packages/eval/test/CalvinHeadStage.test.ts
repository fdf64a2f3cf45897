import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as tf from "@tensorflow/tfjs"
import { ar, ArTransformer, loadArCheckpoint } from "@vw2/ar"
import { Dataset, npyArray, writeNpy } from "@vw2/data"
import { Init, Rng } from "@vw2/nn"
import { describe, expect, it } from "vitest"
import { generateMiniCalvin } from "../src/internal/minicalvin.ts"
import { CalvinHead } from "../src/calvin/CalvinHead.ts"
import { type CalvinReport, calvinHead, loadCalvinHead } from "../src/calvin/CalvinHeadStage.ts"
import { CodePolicy } from "../src/calvin/CodePolicy.ts"
import { runStageDirect as runStage } from "@vw2/core"

const SIZE = 16
const layout = { codeVocab: 12, queries: 2, transitionsPerClip: 2, clipLength: 5, clipStride: 4 }

/** Demos from the real MiniCALVIN expert, with codes standing in for a dLDM's (a hash of the frame motion). */
const makeData = () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-calvin-"))
  const demos = path.join(root, "demos")
  generateMiniCalvin({ output: demos, seed: 1, trainSequences: 1, testSequences: 1, size: SIZE })
  const dataset = Dataset.open(demos)
  const codesDir = path.join(root, "codes")
  const listed: Array<Record<string, unknown>> = []
  for (const ref of dataset.episodes()) {
    const starts: Array<number> = []
    for (let s = 0; s + layout.clipLength <= ref.length; s += layout.clipStride) starts.push(s)
    const codes = new Int32Array(starts.length * layout.transitionsPerClip * layout.queries)
    const actions = dataset.readActions(ref.id, Array.from({ length: ref.length }, (_, t) => t))
    codes.forEach((_, i) => {
      const frame = starts[Math.floor(i / 4)]! + 2 * (Math.floor(i / 2) % 2)
      codes[i] = Math.floor((actions[frame * 7 + (i % 2)]! + 1) * 5.5) % layout.codeVocab
    })
    const dir = path.join(codesDir, "episodes", ref.id)
    fs.mkdirSync(dir, { recursive: true })
    writeNpy(path.join(dir, "codes.npy"), npyArray("int32", [starts.length, 2, 2], codes))
    writeNpy(path.join(dir, "start_frames.npy"), npyArray("uint8", [starts.length, SIZE, SIZE, 3], dataset.readFrames(ref.id, starts)))
    listed.push({ id: ref.id, split: ref.split, task: ref.task, instruction: dataset.meta(ref.id).instruction, clips: starts.length })
  }
  fs.writeFileSync(path.join(codesDir, "codes.json"), JSON.stringify({ format: "vw2-codes/1", ...layout, height: SIZE, width: SIZE, episodes: listed }))
  return { demos, codesDir }
}

describe("CALVIN closed loop", () => {
  it("the code policy plans one AR clip per clip's worth of actions", () => {
    const arModel = new ArTransformer(Init.seeded(0), {
      dim: 16, depth: 1, heads: 2, mlpRatio: 2, patchSize: 8, historyClips: 1, codeVocab: 12, codesPerClip: 4, textVocab: 4, maxTextTokens: 2, height: SIZE, width: SIZE
    })
    const head = new CalvinHead(Init.seeded(0), { codeEmbedDim: 4, hidden: 8, layers: 1, useProprio: true, codeVocab: 12, codesPerTransition: 2, actionsPerTransition: 2 })
    const policy = new CodePolicy({
      ar: arModel, head, vocabulary: { format: "vw2-instruction-vocab/1", words: ["<pad>", "<unk>", "open", "drawer"], maxTokens: 2 },
      sampling: { temperature: 1, topK: 0, useKvCache: true }, rng: new Rng(0)
    })
    policy.reset("open the drawer")
    const observation = { rgb: new Uint8Array(SIZE * SIZE * 3), robotObs: new Float32Array(15) }
    for (let i = 0; i < 8; i++) expect(policy.act(observation)).toHaveLength(7)
    expect(policy.plans).toBe(2) // 4 codes per clip = 2 transitions × 2 actions = 4 actions per plan
    policy.reset("close the drawer")
    policy.act(observation)
    expect(policy.plans).toBe(3) // a new subtask plans afresh
    arModel.dispose()
    head.dispose()
  })

  it("stage calvin-head trains the head and reports the protocol's success rates", async () => {
    await tf.setBackend("cpu")
    const { demos, codesDir } = makeData()
    const arRun = await runStage(ar, { model: { dim: 16, depth: 1, heads: 2, mlpRatio: 2, patchSize: 8, historyClips: 1 }, train: { steps: 5, batchSize: 4 } }, { codes: codesDir })
    const arDir = path.join(arRun.outputRoot, "checkpoint")
    const run = await runStage(
      calvinHead,
      { model: { codeEmbedDim: 8, hidden: 32, layers: 2 }, train: { steps: 60, batchSize: 16, lr: 3e-3, logEvery: 10 }, protocol: { chains: 2, epLen: 12 } },
      { codes: codesDir, demos, ar: arDir }
    )
    const l2 = run.metrics.flatMap((m) => (m.values["calvin/l2"] === undefined ? [] : [m.values["calvin/l2"]]))
    expect(l2[l2.length - 1]!).toBeLessThan(l2[0]!)
    const head = await loadCalvinHead(path.join(run.outputRoot, "head"))
    expect(head.arch.actionsPerTransition).toBe(2)
    head.dispose()
    const report = JSON.parse(fs.readFileSync(path.join(run.outputRoot, "report", "calvin.json"), "utf8")) as CalvinReport
    expect(report.chains).toBe(2)
    expect(report.successRates).toHaveLength(5)
    for (let k = 1; k < 5; k++) expect(report.successRates[k]!).toBeLessThanOrEqual(report.successRates[k - 1]!)
    // Avg. Len. is the mean number of consecutive successes = Σ_k P(at least k)
    expect(report.avgLen).toBeCloseTo(report.successRates.reduce((s, r) => s + r, 0), 10)
    expect(report.plansPerChain).toBeGreaterThan(0)
    expect(run.uploads).toContain("report/calvin.json")
    const final = run.metrics[run.metrics.length - 1]!.values
    expect(Object.keys(final).sort()).toEqual(["calvin/avg_len", "calvin/success_1", "calvin/success_2", "calvin/success_3", "calvin/success_4", "calvin/success_5"])
    // held out: these codes are a function of the demonstrated actions, so a head that reads them beats the same head fed
    // another transition's codes
    const heldOut = run.metrics.find((m) => m.values["calvin/heldout_l2"] !== undefined)!.values
    expect(heldOut["calvin/heldout_l2"]!).toBeLessThan(heldOut["calvin/heldout_l2_swapped_codes"]!)
    const { model } = await loadArCheckpoint(arDir)
    model.dispose()
  })
})
