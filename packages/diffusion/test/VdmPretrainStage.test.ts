import * as tf from "@tensorflow/tfjs"
import { runStageDirect as runStage, type DirectStageRun as StageRun } from "@vw2/core"
import { readSafetensors } from "@vw2/nn"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { prepareVdm, readVdmCheckpointConfig } from "../src/VdmCheckpoint.ts"
import { vdmPretrain } from "../src/VdmPretrainStage.ts"
import { miniDiT } from "../src/VideoDiTConfig.ts"
import { maxAbsDiff } from "./support.ts"
import { writeSquaresDataset } from "./stageSupport.ts"

const data = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-squares-"))
const model = { patchSpatial: 4, width: 32, depth: 2, heads: 2, contextDim: 16, mlpRatio: 2 }
let run: StageRun

beforeAll(async () => {
  writeSquaresDataset(data, { train: 1, test: 1 }, 6)
  run = await runStage(vdmPretrain, {
    model,
    clip: { length: 3, frameStep: 1, stride: 3 },
    train: { steps: 60, batchSize: 4, lr: 5e-3, warmupSteps: 2, weightDecay: 0, logEvery: 1 },
    sample: { count: 2, steps: 6, solver: "euler" }
  }, { videos: data })
})

describe("stage vdm-pretrain", () => {
  it("trains on a video dataset with a falling loss, streams metrics, writes a checkpoint and a sample GIF", async () => {
    const losses = run.metrics.filter((m) => m.values["vdm/loss"] !== undefined).map((m) => m.values["vdm/loss"]!)
    expect(losses.length).toBe(60)
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    expect(mean(losses.slice(-10))).toBeLessThan(0.7 * mean(losses.slice(0, 5)))
    expect(run.logs.some((l) => /tfjs backend (tensorflow|wasm|cpu)/.test(l))).toBe(true)
    const sampleMse = run.metrics.find((m) => m.values["vdm/sample_mse"] !== undefined)!.values["vdm/sample_mse"]!
    expect(Number.isFinite(sampleMse)).toBe(true)

    const dir = path.join(run.outputRoot, "checkpoint")
    for (const f of ["model.safetensors", "config.json", "optimizer.safetensors", "train_state.json"]) expect(fs.existsSync(path.join(dir, f))).toBe(true)
    const saved = await readVdmCheckpointConfig(dir)
    expect(saved.dit.width).toBe(32)
    expect(saved.clip).toEqual({ length: 3, frameStep: 1, height: 16, width: 16 })
    expect(run.uploads).toEqual(["checkpoint/samples/vdm-samples.gif"])
    const gif = fs.readFileSync(path.join(run.outputRoot, run.uploads[0]!))
    expect(gif.subarray(0, 6).toString("ascii")).toBe("GIF89a")
  })

  it("prepareVdm builds a consumer's DiT on the checkpoint: architecture from it, control branch copied, 'random' ignores weights", async () => {
    const dir = path.join(run.outputRoot, "checkpoint")
    const { tensors } = await readSafetensors(path.join(dir, "model.safetensors"))
    const savedQ = tensors.get("blocks.0.self_attn.q_proj.weight")!
    const wanted = { ...miniDiT, control: { ...miniDiT.control, blocks: 1 } } // width 64 asked, the checkpoint says 32
    const { dit, overridden, report } = await prepareVdm(wanted, dir, 1)
    expect(overridden).toContain("width")
    expect(dit.config.width).toBe(32)
    expect(report!.loaded).toContain("blocks.0.self_attn.q_proj.weight")
    const q = dit.blocks[0]!.self_attn.q_proj.weight.v
    expect(maxAbsDiff(q, tf.tensor(savedQ.data, [...savedQ.shape]))).toBe(0)
    expect(maxAbsDiff(dit.control!.blocks[0]!.self_attn.q_proj.weight.v, q)).toBe(0)

    const fresh = await prepareVdm({ ...wanted, training: { ...wanted.training, mode: "random" } }, dir, 1)
    expect(fresh.report).toBeUndefined()
    expect(maxAbsDiff(fresh.dit.blocks[0]!.self_attn.q_proj.weight.v, q)).toBeGreaterThan(0)
  })

  it("rejects a control branch in pretraining and unknown keys, naming the config path", async () => {
    await expect(runStage(vdmPretrain, { model: { ...model, control: { enabled: true } } }, { videos: data })).rejects.toThrow(/vdm-pretrain\.model\.control\.enabled/)
    await expect(runStage(vdmPretrain, { train: { stepz: 3 } }, { videos: data })).rejects.toThrow(/stepz/)
  })
})
