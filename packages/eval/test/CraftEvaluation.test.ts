import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Dataset } from "@vw2/data"
import { describe, expect, it } from "vitest"
import { defaultMiniCraftConfig, generateMiniCraft } from "../src/internal/minicraft.ts"
import { unavailable } from "../src/Availability.ts"
import { evaluateCraft, type TestEpisode } from "../src/craft/CraftEvaluation.ts"
import { makeEpisodeJudge } from "../src/craft/MiniCraftJudging.ts"
import { frameAt, makeVideo, type RgbVideo } from "../src/Video.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-craft-"))
generateMiniCraft(dir, { ...defaultMiniCraftConfig, tasks: ["fold-plane", "blocks-tower"], episodesPerTask: { train: 0, test: 1 } })
const dataset = Dataset.open(dir)
const supersample = (dataset.manifest.stats as { minicraft?: { supersample?: number } }).minicraft?.supersample

const loadEpisodes = () =>
  dataset.episodes({ split: "test" }).map((ref) => {
    const meta = dataset.meta(ref.id)
    const groundTruth = makeVideo(dataset.readFrames(ref.id, Array.from({ length: ref.length }, (_, t) => t)), ref.length, dataset.height, dataset.width)
    const judge = makeEpisodeJudge({ task: ref.task, appearance: meta.appearance }, dataset.height, dataset.width, supersample)
    return { episode: { id: ref.id, task: ref.task, instruction: meta.instruction, steps: judge.steps, groundTruth } satisfies TestEpisode, judge }
  })

describe("craft evaluation on known inputs", () => {
  const loaded = loadEpisodes()
  const judges = new Map(loaded.map((l) => [l.episode.id, l.judge]))
  const episodes = loaded.map((l) => l.episode)

  it("scores the ground truth as 100 % at every step with SSIM 1", async () => {
    const result = await evaluateCraft({
      episodes,
      generate: async (e) => e.groundTruth,
      judge: (e, video) => judges.get(e.id)!.completedPrefix(video),
      lpips: unavailable("no model file given (set eval.lpipsModel)")
    })
    expect(result.tasks.map((t) => t.stepSuccessPct)).toEqual([Array(7).fill(100), Array(7).fill(100)])
    expect(result.ssim).toEqual({ _tag: "available", value: 1 })
    expect(result.lpips._tag).toBe("unavailable")
  })

  it("scores a frozen first frame as 0 %", async () => {
    const frozen = (e: TestEpisode): RgbVideo => {
      const first = frameAt(e.groundTruth, 0)
      const data = new Uint8Array(e.groundTruth.data.length)
      for (let t = 0; t < e.groundTruth.frames; t++) data.set(first, t * first.length)
      return makeVideo(data, e.groundTruth.frames, e.groundTruth.height, e.groundTruth.width)
    }
    const result = await evaluateCraft({
      episodes,
      generate: async (e) => frozen(e),
      judge: (e, video) => judges.get(e.id)!.completedPrefix(video),
      lpips: unavailable("none")
    })
    expect(result.tasks.every((t) => t.stepSuccessPct.every((p) => p === 0))).toBe(true)
    expect(result.groundTruthTasks.every((t) => t.stepSuccessPct.every((p) => p === 100))).toBe(true)
    const ssim = result.ssim._tag === "available" ? result.ssim.value : NaN
    expect(ssim).toBeLessThan(1)
  })
})
