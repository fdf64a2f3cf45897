/**
 * Stage craft-eval end to end on real components: a MiniCraft test episode, an (untrained) dLDM and DiT
 * saved as checkpoints, an AR trained for a few steps on codes of that dLDM's layout. Checks what the stage
 * promises regardless of model quality: rollouts as long as the ground truth, the judge at 100 % on the ground
 * truth, the paper-layout table, GIFs, plot, metrics, and LPIPS through a test-built ONNX network.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as tf from "@tensorflow/tfjs"
import { ar } from "@vw2/ar"
import { Dataset, npyArray, writeNpy } from "@vw2/data"
import { defaultFlowObjective, miniDiT, saveVdmCheckpoint, VideoDiT } from "@vw2/diffusion"
import { Dldm, dldmPresets, saveDldm } from "@vw2/dldm"
import { Init } from "@vw2/nn"
import { PNG } from "pngjs"
import { beforeAll, describe, expect, it } from "vitest"
import { Schema } from "effect"
import { CraftEvalConfig, craftEvalLowFiNoCalvin, craftEvalLowFiNoCalvinJudged, craftEvalNoCalvin } from "../src/craft/CraftEvalStage.ts"
import { craftJudge } from "../src/judge/CraftJudgeStage.ts"
import { defaultMiniCraftConfig, generateMiniCraft } from "../src/internal/minicraft.ts"
import { writeLpipsLikeModel } from "./support/onnxNetworks.ts"
import { runStageDirect as runStage } from "@vw2/core"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-crafteval-"))
const dirs = { data: path.join(root, "data"), dldm: path.join(root, "dldm"), vdm: path.join(root, "vdm"), codes: path.join(root, "codes"), ar: "" }
const dldmConfig = { ...dldmPresets.mini, encoder: { ...dldmPresets.mini.encoder, width: 16, depth: 1 }, decoder: { ...dldmPresets.mini.decoder, width: 16, depth: 1 } }

beforeAll(async () => {
  await tf.setBackend("cpu")
  generateMiniCraft(dirs.data, { ...defaultMiniCraftConfig, tasks: ["fold-plane"], episodesPerTask: { train: 0, test: 1 } })
  const dldm = new Dldm(Init.seeded(0), dldmConfig)
  await saveDldm(dirs.dldm, dldm)
  const dit = new VideoDiT(Init.seeded(0), { ...miniDiT, depth: 1 })
  await saveVdmCheckpoint(dirs.vdm, dit, { objective: defaultFlowObjective, clip: { length: 9, frameStep: 1, height: 32, width: 32 }, pixelRange: [-1, 1] })
  dit.dispose()
  // codes in the dLDM's layout for the test episode, from the dLDM itself
  const dataset = Dataset.open(dirs.data)
  const ref = dataset.episodes({ split: "test" })[0]!
  const starts = Array.from({ length: Math.floor((ref.length - 1) / 8) }, (_, k) => k * 8)
  const frames = dataset.readFrames(ref.id, starts.flatMap((s) => Array.from({ length: 9 }, (_, t) => s + t)))
  const codes = tf.tidy(() => dldm.encode(tf.div(tf.tensor5d(Float32Array.from(frames), [starts.length, 9, 32, 32, 3]), 255)))
  const where = path.join(dirs.codes, "episodes", ref.id)
  fs.mkdirSync(where, { recursive: true })
  writeNpy(path.join(where, "codes.npy"), npyArray("int32", [starts.length, 4, 4], codes.dataSync() as Int32Array))
  writeNpy(path.join(where, "start_frames.npy"), npyArray("uint8", [starts.length, 32, 32, 3], dataset.readFrames(ref.id, starts)))
  codes.dispose()
  dldm.dispose()
  const episode = { id: ref.id, split: "train", task: ref.task, instruction: dataset.meta(ref.id).instruction, clips: starts.length }
  fs.writeFileSync(path.join(dirs.codes, "codes.json"), JSON.stringify({ format: "vw2-codes/1", codeVocab: 1000, queries: 4, transitionsPerClip: 4, clipLength: 9, clipStride: 8, height: 32, width: 32, episodes: [episode] }))
  const arRun = await runStage(ar, { model: { dim: 16, depth: 1, heads: 2, mlpRatio: 2, patchSize: 8, historyClips: 1 }, train: { steps: 3, batchSize: 2 } }, { codes: dirs.codes })
  dirs.ar = path.join(arRun.outputRoot, "checkpoint")
}, 300_000)

describe("stage craft-eval", () => {
  it("evaluates low-fi rollouts: table, judge sanity, GIF, plot, metrics, LPIPS from an ONNX file", async () => {
    const lpipsFile = path.join(root, "lpips.onnx")
    writeLpipsLikeModel(lpipsFile, 32, 32)
    const run = await runStage(
      craftEvalLowFiNoCalvin,
      { method: "test", training: "Craft", lpipsModel: lpipsFile, gifs: 1 },
      { dataset: dirs.data, dldm: dirs.dldm, ar: dirs.ar }
    )
    const report = path.join(run.outputRoot, "report")
    const table = JSON.parse(fs.readFileSync(path.join(report, "table.json"), "utf8"))
    expect(table.format).toBe("vw2-eval-table/1")
    expect(table.columns).toEqual(["1", "2", "3", "4", "5", "6", "7", "SSIM", "LPIPS"])
    expect(table.groundTruthJudge[0].stepSuccessPct).toEqual(Array(7).fill(100))
    const episode = table.episodes[0]
    const groundTruthFrames = Dataset.open(dirs.data).episodes({ split: "test" })[0]!.length
    expect(episode.generatedFrames).toBeGreaterThanOrEqual(groundTruthFrames) // horizon "reference"
    expect(episode.ssim).toBeGreaterThan(-1)
    expect(episode.ssim).toBeLessThan(1)
    expect(typeof episode.lpips).toBe("number")
    expect(fs.readFileSync(path.join(report, "table.md"), "utf8")).toContain("| test | Craft |")
    expect(PNG.sync.read(fs.readFileSync(path.join(report, "stepwise-success.png"))).width).toBeGreaterThan(400)
    expect(fs.readFileSync(path.join(report, "rollouts", `${episode.id}.gif`)).subarray(0, 6).toString()).toBe("GIF89a")
    expect(run.uploads.sort()).toEqual(["report/rollouts/" + episode.id + ".gif", "report/stepwise-success.png", "report/table.json", "report/table.md"].sort())
    const metrics = run.metrics[0]!.values
    expect(Object.keys(metrics)).toEqual(expect.arrayContaining(["craft/fold-plane/step_1", "craft/fold-plane/step_7", "craft/ssim", "craft/lpips", "craft/judge_on_ground_truth"]))
    expect(metrics["craft/judge_on_ground_truth"]).toBe(100)
  })

  it("decodes with the VDM sampler when a vdm checkpoint is given, and reports LPIPS unavailable without a model", async () => {
    const run = await runStage(
      craftEvalNoCalvin,
      { decoder: { steps: 1, cfg: 0 }, horizon: "eos", maxClipsFactor: 1, gifs: 0 },
      { dataset: dirs.data, dldm: dirs.dldm, vdm: dirs.vdm, ar: dirs.ar }
    )
    const table = JSON.parse(fs.readFileSync(path.join(run.outputRoot, "report", "table.json"), "utf8"))
    expect(table.rows[0].values[table.columns.indexOf("LPIPS")]).toBeNull()
    expect(table.notes[0]).toMatch(/LPIPS unavailable — no model file given \(set craft-eval\.lpipsModel\)/)
    expect(run.logs.some((l) => l.includes("decoder vdm"))).toBe(true)
    expect(run.metrics[0]!.values["craft/lpips"]).toBeUndefined()
    expect(typeof run.metrics[0]!.values["craft/ssim"]).toBe("number")
    // the low-fi comparison row: same AR draws, decoded without the VDM
    expect(table.rows.map((r: { method: string }) => r.method)).toEqual(["VideoWorld 2", "VideoWorld 2, low-fi decoder only"])
    expect(typeof run.metrics[0]!.values["lowfi/ssim"]).toBe("number")
    expect(table.lowFiEpisodes).toHaveLength(1)
  })

  it("samples the AR with temperature 1 and top-k 20 by default (greedy collapses onto a few codes)", () => {
    expect(Schema.decodeUnknownSync(CraftEvalConfig)({})).toMatchObject({ temperature: 1, topK: 20 })
  })

  it("judges with a craft-judge checkpoint when one is wired, the exact judge reporting beside it as craft_exact/", async () => {
    const judgeRun = await runStage(craftJudge, { data: { appearancesPerTask: 2, framesPerAppearance: 8 }, train: { steps: 2, batchSize: 8 } }, { dataset: dirs.data })
    const run = await runStage(craftEvalLowFiNoCalvinJudged, { gifs: 0 }, { dataset: dirs.data, dldm: dirs.dldm, ar: dirs.ar, judge: path.join(judgeRun.outputRoot, "judge") })
    const table = JSON.parse(fs.readFileSync(path.join(run.outputRoot, "report", "table.json"), "utf8"))
    expect(table.judge).toBe("craft-judge")
    expect(table.exactJudge.groundTruthTasks[0].stepSuccessPct).toEqual(Array(7).fill(100))
    const metrics = run.metrics[0]!.values
    expect(Object.keys(metrics)).toEqual(expect.arrayContaining(["craft/fold-plane/step_1", "craft_exact/fold-plane/step_1", "craft/judge_on_ground_truth"]))
    expect(metrics["craft_exact/judge_on_ground_truth"]).toBe(100)
    expect(fs.readFileSync(path.join(run.outputRoot, "report", "table.md"), "utf8")).toContain("exact pixel judge (diagnostic)")
    expect(run.logs.some((l) => l.includes("craft-judge classifier"))).toBe(true)
  })
})
