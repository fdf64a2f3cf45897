import * as path from "node:path"
import * as fs from "node:fs"
import * as os from "node:os"
import { afterAll, describe, expect, it } from "vitest"
import { readNpy } from "../src/formats/npy.ts"
import { readEpisodeMeta, readManifest } from "../src/dataset/Manifest.ts"
import { judgeDatasetEpisode } from "../src/minicraft/DatasetJudge.ts"
import type { Appearance } from "../src/minicraft/Appearance.ts"
import { episodeAppearance } from "../src/minicraft/Appearance.ts"
import { renderEpisodeArray } from "../src/minicraft/Episode.ts"
import type { EpisodeVariant } from "../src/minicraft/Episode.ts"
import { defaultMiniCraftConfig, generateMiniCraft } from "../src/minicraft/Generate.ts"
import { MiniCraftJudge, stepwiseSuccessRates } from "../src/minicraft/Judge.ts"
import { TASK_NAMES, getTask, type TaskName } from "../src/minicraft/Tasks.ts"

const options = { width: 32, height: 32, supersample: 3, framesPerStep: 12, idleFrames: 4 }
const cases = TASK_NAMES.flatMap((task) => (["train", "test"] as const).map((split) => ({ task, split })))

const judgeVideo = (task: TaskName, appearance: Appearance, variant: EpisodeVariant = {}, distort?: (frames: Uint8Array) => void) => {
  const judge = new MiniCraftJudge({ task: getTask(task), appearance, width: 32, height: 32 })
  const video = renderEpisodeArray(getTask(task), appearance, options, variant)
  distort?.(video.frames)
  return { verdict: judge.judge(video.frames), labels: video.labels }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "minicraft-judge-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe("MiniCraft judge", () => {
  it.each(cases)("scores ground truth 100 % and labels every settled frame exactly ($task, $split)", ({ task, split }) => {
    const { verdict, labels } = judgeVideo(task, episodeAppearance(5, task, split, 0))
    expect(verdict.failure).toBeUndefined()
    expect(verdict.completed).toBe(7)
    expect(verdict.stepSuccess.every(Boolean)).toBe(true)
    verdict.frames.forEach((f, t) => {
      const label = labels[t]!
      if (label.phase === "idle" || label.phase === "release") expect(f.state, `frame ${t}`).toBe(label.state.completed)
      // mid-action frames may show no state yet, but never a wrong one
      else if (f.state !== null) expect([label.state.completed, label.state.completed + 1]).toContain(f.state)
    })
  })

  it("is robust to extra sensor noise (±8 per channel)", () => {
    for (const task of ["fold-plane", "blocks-horse"] as const) {
      let h = 12345
      const { verdict } = judgeVideo(task, episodeAppearance(6, task, "test", 1), {}, (frames) => {
        for (let i = 0; i < frames.length; i++) {
          h = (Math.imul(h, 1103515245) + 12345) >>> 0
          frames[i] = Math.max(0, Math.min(255, frames[i]! + ((h >>> 16) % 17) - 8))
        }
      })
      expect(verdict.completed, task).toBe(7)
    }
  })

  // a generative model's frames are soft: blur (a 3×3 box filter, not the judge's own binomial kernel)
  // must not hide steps that were performed, nor make skipped or frozen-hand videos pass
  const boxBlur = (frames: Uint8Array) => {
    const size = 32
    const copy = frames.slice()
    for (let t = 0; t < frames.length / (size * size * 3); t++) {
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          for (let c = 0; c < 3; c++) {
            let sum = 0
            let n = 0
            for (let dy = -1; dy <= 1; dy++) {
              for (let dx = -1; dx <= 1; dx++) {
                const yy = y + dy
                const xx = x + dx
                if (yy < 0 || xx < 0 || yy >= size || xx >= size) continue
                sum += copy[((t * size + yy) * size + xx) * 3 + c]!
                n++
              }
            }
            frames[((t * size + y) * size + x) * 3 + c] = Math.round(sum / n)
          }
        }
      }
    }
  }
  it.each(TASK_NAMES)("judges blurred videos on what they show (%s)", (task) => {
    const appearance = episodeAppearance(8, task, "train", 1)
    expect(judgeVideo(task, appearance, {}, boxBlur).verdict.completed).toBe(7)
    expect(judgeVideo(task, appearance, { script: { order: [0, 1, 2, 4, 5, 6] } }, boxBlur).verdict.completed).toBe(3)
    expect(judgeVideo(task, appearance, { script: { order: [0, 1, 2, 3, 4, 5, 6], freezeHand: true } }, boxBlur).verdict.completed).toBe(0)
  })

  const order = [0, 1, 2, 3, 4, 5, 6]
  it.each(TASK_NAMES)("fails a video with a step skipped, steps swapped, the hand frozen, the appearance changed (%s)", (task) => {
    const appearance = episodeAppearance(7, task, "train", 0)
    const skipped = judgeVideo(task, appearance, { script: { order: order.filter((i) => i !== 2) } }).verdict
    expect(skipped.completed).toBe(2)
    expect(skipped.stepSuccess.slice(2).some(Boolean)).toBe(false)

    const swappedOrder = [0, 1, 2, 4, 3, 5, 6]
    const swapped = judgeVideo(task, appearance, { script: { order: swappedOrder } }).verdict
    expect(swapped.completed).toBe(3)
    expect(swapped.failure).toBeDefined()

    const frozen = judgeVideo(task, appearance, { script: { order, freezeHand: true } }).verdict
    expect(frozen.completed).toBe(0)
    expect(frozen.failure).toMatch(/hand/)

    // from frame 40 (during step 3) on, the scene is rendered with another episode's appearance
    const other = episodeAppearance(7, task, "test", 3)
    const changed = judgeVideo(task, appearance, { switchAppearance: { atFrame: 40, appearance: other } }).verdict
    expect(changed.completed).toBeLessThan(4)
    expect(changed.stepSuccess.at(-1)).toBe(false)
  })

  it("judges episodes read back from a generated dataset (appearance from meta.json)", () => {
    const dir = path.join(tmp, "ds")
    generateMiniCraft(dir, { ...defaultMiniCraftConfig, tasks: ["fold-plane", "blocks-human"], episodesPerTask: { train: 1, test: 1 } })
    const manifest = readManifest(dir)
    const ids = Object.values(manifest.splits).flat()
    expect(stepwiseSuccessRates(ids.map((id) => judgeDatasetEpisode(dir, id)))).toEqual([1, 1, 1, 1, 1, 1, 1])
    // a "generated" video for one episode that stops after the first fold scores step 1 only
    const id = ids[0]!
    const meta = readEpisodeMeta(dir, id)
    const frames = readNpy(path.join(dir, "episodes", id, "frames.npy")).data as Uint8Array
    const size = 32 * 32 * 3
    const afterFirstStep = meta.frames.findIndex((f) => f.state["completed"] === 1 && f.phase === "release")
    const stalled = new Uint8Array(frames.length)
    stalled.set(frames.subarray(0, (afterFirstStep + 1) * size))
    for (let t = afterFirstStep + 1; t < meta.frames.length; t++) stalled.set(frames.subarray(afterFirstStep * size, (afterFirstStep + 1) * size), t * size)
    expect(judgeDatasetEpisode(dir, id, stalled).stepSuccess).toEqual([true, false, false, false, false, false, false])
  })

  it("refuses resolutions where states cannot be told apart", () => {
    const appearance = episodeAppearance(0, "fold-plane", "train", 0)
    expect(() => new MiniCraftJudge({ task: getTask("fold-plane"), appearance, width: 16, height: 16 })).toThrow(/minimum resolution 24/)
  })
})
