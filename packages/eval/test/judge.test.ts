/**
 * The craft judge: its episode rules on hand-written readings, its degradations, its labels, and a small judge
 * trained for a short time on one block task — which must find ≥ 75 % of the steps of clean ground-truth
 * renders of unseen test-domain episodes, ≥ 75 % under degradations, and none in a frame-0 repeat or a
 * frozen-hand video, nor beyond two swapped steps.
 * A judge trained on wrong labels (or that ignores the hand) fails these.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as tf from "@tensorflow/tfjs"
import { runStageDirect } from "@vw2/core"
import { MiniCraft } from "@vw2/data"
import { Init, selectBackend } from "@vw2/nn"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FrameReading, judgeReadings, loadCraftJudge, maskFingertip } from "../src/judge/CraftJudge.ts"
import { craftJudge } from "../src/judge/CraftJudgeStage.ts"
import { blur, brightness, defaultAugment, downUp, gain, gaussianNoise, onVideo, shift } from "../src/judge/Degradations.ts"
import { poseLabel, swappedOrder } from "../src/judge/JudgeData.ts"
import { type TrainedCraftJudge, trainCraftJudge } from "../src/judge/JudgeTraining.ts"
import { classCount, StepClassifier } from "../src/judge/StepClassifier.ts"

const rules = { threshold: 0.5, minRun: 2, minHandTravel: 0.08, handProbability: 0.5, minHandCells: 3, armProbability: 0.2 }
const reading = (state: number | null, x = 0.8): FrameReading => ({ state, confidence: 0.9, hand: { x, y: 0.8, pixels: 10 } })

describe("judgeReadings (the exact judge's rules on classifier readings)", () => {
  // 0 0 | the hand goes to work | 1 1 | and again | 2 2
  const good = [reading(0), reading(0), reading(null, 0.5), reading(null, 0.3), reading(1), reading(1), reading(null, 0.5), reading(null, 0.3), reading(2), reading(2)]
  it("counts states reached in order with a hand at work between them", () => {
    expect(judgeReadings(good, 2, rules).completed).toBe(2)
    expect(judgeReadings(good, 2, rules).failure).toBeUndefined()
  })
  it("stops at a jump (a state skipped) and needs state 0 first", () => {
    const jump = [...good.slice(0, 4), reading(2), reading(2)]
    expect(judgeReadings(jump, 2, rules).completed).toBe(0)
    expect(judgeReadings(good.slice(2), 2, rules).completed).toBe(0)
  })
  it("needs the hand to move between states (a frozen or invisible hand completes nothing)", () => {
    const frozen = good.map((r) => reading(r.state, 0.8))
    expect(judgeReadings(frozen, 2, rules).completed).toBe(0)
    expect(judgeReadings(frozen, 2, rules).failure).toMatch(/hand moved/)
    const handless = good.map((r) => ({ ...r, hand: null }))
    expect(judgeReadings(handless, 2, rules).failure).toMatch(/no hand/)
  })
  it("counts the hand's travel up to the end of the new state's first run (a step reads as done while the hand is still at the grip)", () => {
    // the hand is seen only at the grip before state 1 shows, then withdraws while state 1 is shown
    const early = [reading(0, 0.5), reading(0, 0.5), reading(0, 0.5), reading(1, 0.5), reading(1, 0.3), reading(1, 0.1)]
    expect(judgeReadings(early, 1, rules).completed).toBe(1)
    // … but a hand that stays put through the whole run still fails
    const still = early.map((r) => reading(r.state, 0.5))
    expect(judgeReadings(still, 1, rules).completed).toBe(0)
  })
  it("ignores runs shorter than minRun and looks back without undoing steps", () => {
    const flicker = [reading(0), reading(0), reading(null, 0.5), reading(null, 0.3), reading(1), reading(null, 0.5), reading(null, 0.3), reading(2), reading(2)]
    expect(judgeReadings(flicker, 2, rules).completed).toBe(0) // the single frame of state 1 is no run: 2 then jumps from 0
    const back = [...good.slice(0, 6), reading(0), reading(0), ...good.slice(6)]
    expect(judgeReadings(back, 2, rules).completed).toBe(2)
  })
})

describe("maskFingertip", () => {
  // 8×8 half-resolution mask: an arm from the left border ending at (3, 3) with one faint cell, and a blob not touching it
  const mask = (cells: ReadonlyArray<[number, number, number]>) => {
    const m = new Float32Array(64)
    for (const [x, y, p] of cells) m[y * 8 + x] = p
    return m
  }
  const arm: [number, number, number][] = [[0, 3, 0.9], [1, 3, 0.3], [2, 3, 0.9], [3, 3, 0.9]]
  const blob: [number, number, number][] = [[5, 6, 0.9], [6, 6, 0.9], [5, 5, 0.9], [6, 5, 0.9]]
  it("finds the tip of an arm that enters from the border, through faint cells", () => {
    const tip = maskFingertip(mask(arm), 8, rules)
    expect(tip?.x).toBeCloseTo(3.5 / 8, 6)
    expect(tip?.y).toBeCloseTo(3.5 / 8, 6)
  })
  it("ignores a blob not connected to the border (a block put down, a flap edge)", () => {
    expect(maskFingertip(mask(blob), 8, rules)).toBeNull()
    expect(maskFingertip(mask([...arm, ...blob]), 8, rules)?.pixels).toBe(3) // the arm's three hand cells, not the blob's
  })
})

describe("degradations", () => {
  const size = { height: 8, width: 8 }
  const flat = new Float32Array(8 * 8 * 3).fill(0.5)
  it("keep a flat image flat (blur, down/up) and move content by whole pixels (shift)", () => {
    for (const out of [blur(flat, size, 2), downUp(flat, size, 2)]) for (const v of out) expect(v).toBeCloseTo(0.5, 5)
    const dot = new Float32Array(8 * 8 * 3)
    dot[(2 * 8 + 3) * 3] = 1
    const moved = shift(dot, size, 1, 2)
    expect(moved[(4 * 8 + 4) * 3]).toBe(1)
    expect(moved[(2 * 8 + 3) * 3]).toBe(0)
  })
  it("change pixel values by the stated amount", () => {
    expect(brightness(flat, 15 / 255)[0]).toBeCloseTo(0.5 + 15 / 255, 6)
    expect(gain(flat, 0.8)[0]).toBeCloseTo(0.4, 6)
    let u = 0
    const noisy = gaussianNoise(flat, 8 / 255, () => (u = (u * 9301 + 49297) % 233280) / 233280)
    const sd = Math.sqrt(noisy.reduce((s, v) => s + (v - 0.5) ** 2, 0) / noisy.length)
    expect(sd).toBeGreaterThan(5 / 255)
    expect(sd).toBeLessThan(11 / 255)
  })
})

describe("poseLabel", () => {
  const other = 8
  const never = () => false
  it("labels settled prefixes with their state, out-of-order steps and mid-action frames as other", () => {
    const order = [0, 1, 2, 3, 4, 5, 6]
    expect(poseLabel({ order, completed: 3 }, other, never)).toBe(3)
    expect(poseLabel({ order: swappedOrder(7, 2), completed: 3 }, other, never)).toBe(other) // {1, 2, 4} done
    expect(poseLabel({ order: swappedOrder(7, 2), completed: 4 }, other, never)).toBe(other) // same set as state 4, looks different
    expect(poseLabel({ order: swappedOrder(7, 2), completed: 4 }, other, () => true)).toBe(4) // … unless it renders the same
    expect(poseLabel({ order, completed: 3, active: 0.5 }, other, never)).toBe(other)
    expect(poseLabel({ order, completed: 3, active: 0.9 }, other, never)).toBe(-1) // almost done: looks like state 4, not scored
    expect(poseLabel({ order, completed: 3, active: 0.1 }, other, never)).toBe(-1) // just started: looks like state 3
  })
})

describe("StepClassifier", () => {
  it("maps frames to [B, tasks, classes] logits and a half-resolution hand mask, at 32 and 64 px", () => {
    for (const px of [32, 64]) {
      const m = new StepClassifier(Init.seeded(0), { channels: 4, maxChannels: 8, hidden: 8, height: px, width: px, tasks: ["fold-plane", "blocks-tower"], steps: [7, 7] })
      const out = m.call(tf.zeros([2, px, px, 3]) as tf.Tensor4D)
      expect(out.logits.shape).toEqual([2, 2, classCount(m.arch)])
      expect(out.hand.shape).toEqual([2, px / 2, px / 2])
      tf.dispose([out.logits, out.hand])
      m.dispose()
    }
  })
})

// one block task: a short training reads it reliably (folds need the stage's full budget; see the calibration table)
const TASKS = ["blocks-human"]
const render = { height: 32, width: 32, supersample: 3, framesPerStep: 12, idleFrames: 4 }
const episodeOptions = { width: 32, height: 32, supersample: 3, framesPerStep: 12, idleFrames: 4 }
const size = { height: 32, width: 32 }

const trainSmall = (seed: number): Promise<TrainedCraftJudge> =>
  trainCraftJudge({
    tasks: TASKS,
    steps: TASKS.map((t) => MiniCraft.getTask(t).steps.length),
    render,
    seed,
    model: { channels: 16, maxChannels: 64, hidden: 128 },
    data: { appearancesPerTask: 40, framesPerAppearance: 16, swappedShare: 0.2, shuffledShare: 0.15, freeHandShare: 0.3, testAppearanceShare: 0.75 },
    train: { steps: 700, batchSize: 48, lr: 3e-3, weightDecay: 1e-4, warmupSteps: 20, otherTaskWeight: 0.15, otherWeight: 0.5, handWeight: 4, negativeShare: 0.06, cleanShare: 0.2, foldWeight: 2, logEvery: 1000 },
    augment: defaultAugment,
    rules
  })

// ~700 steps of batch 48 take ~40 s on the native backend and tens of minutes on pure JS (CI's second pass): a
// training-quality check, so it runs where the native backend is built; the rule, label and shape tests above run on both
const pureJs = process.env["VW2_TF_BACKEND"] === "cpu"

describe.skipIf(pureJs)("a small craft judge trained on rendered states only", () => {
  let trained: TrainedCraftJudge
  // test-domain appearances of the dataset generator (seed 0): the judge never saw these draws
  const episodes = TASKS.flatMap((name) =>
    [0, 1, 2].map((i) => {
      const task = MiniCraft.getTask(name)
      const appearance = MiniCraft.episodeAppearance(0, name, "test", i)
      return { name, task, appearance, ...MiniCraft.renderEpisodeArray(task, appearance, episodeOptions) }
    })
  )
  beforeAll(async () => {
    await selectBackend()
    trained = await trainSmall(11)
  }, 300_000)
  afterAll(() => trained?.judge.dispose())

  // thresholds below the calibration targets: this judge trains ~40 s; the stage's numbers are in its calibration table
  it("finds the steps of clean ground-truth renders of unseen test-domain episodes", () => {
    const found = episodes.map((e) => trained.judge.completedPrefix(e.name, e.frames, e.length))
    expect(found.reduce((a, b) => a + b, 0) / (7 * episodes.length), `steps found per episode: ${found.join(", ")}`).toBeGreaterThanOrEqual(0.75)
  })

  it("finds most steps under noise σ 8/255, ×2 down/up-sampling, blur, brightness +15/255, gain and a 1 px shift", () => {
    let u = 7
    const uniform = () => (u = (u * 16807) % 2147483647) / 2147483647
    const degradations = [
      (f: Float32Array) => gaussianNoise(f, 8 / 255, uniform),
      (f: Float32Array) => downUp(f, size, 2),
      (f: Float32Array) => blur(f, size, 1),
      (f: Float32Array) => brightness(f, 15 / 255),
      (f: Float32Array) => gain(f, 0.85),
      (f: Float32Array) => shift(f, size, 1, 1)
    ]
    let found = 0
    let total = 0
    for (const e of episodes) {
      for (const d of degradations) {
        found += trained.judge.completedPrefix(e.name, onVideo(e.frames, e.length, size, d), e.length)
        total += 7
      }
    }
    expect(found / total).toBeGreaterThanOrEqual(0.75)
  })

  it("finds nothing in a frame-0 repeat or a frozen-hand video", () => {
    const n = 32 * 32 * 3
    for (const e of episodes) {
      const still = new Uint8Array(e.frames.length)
      for (let t = 0; t < e.length; t++) still.set(e.frames.subarray(0, n), t * n)
      expect(trained.judge.completedPrefix(e.name, still, e.length)).toBe(0)
      const frozen = MiniCraft.renderEpisodeArray(e.task, e.appearance, episodeOptions, { script: { order: [0, 1, 2, 3, 4, 5, 6], freezeHand: true } })
      expect(trained.judge.completedPrefix(e.name, frozen.frames, frozen.length)).toBe(0)
    }
  })

  it("counts no step beyond two swapped steps", () => {
    for (const e of episodes) {
      const swapped = MiniCraft.renderEpisodeArray(e.task, e.appearance, episodeOptions, { script: { order: swappedOrder(7, 3) } })
      expect(trained.judge.completedPrefix(e.name, swapped.frames, swapped.length)).toBeLessThanOrEqual(3)
    }
  })
})

describe("stage craft-judge", () => {
  it("trains on a dataset's settings, saves a loadable judge and logs the calibration table", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-judge-data-"))
    MiniCraft.generateMiniCraft(dataDir, { ...MiniCraft.defaultMiniCraftConfig, tasks: ["fold-plane", "blocks-tower"], episodesPerTask: { train: 0, test: 1 } })
    const run = await runStageDirect(craftJudge, { data: { appearancesPerTask: 2, framesPerAppearance: 8 }, train: { steps: 3, batchSize: 8 } }, { dataset: dataDir })
    const dir = path.join(run.outputRoot, "judge")
    const judge = await loadCraftJudge(dir)
    try {
      expect(judge.tasks).toEqual(["fold-plane", "blocks-tower"])
      expect([judge.height, judge.width]).toEqual([32, 32])
    } finally {
      judge.dispose()
    }
    const calibration = JSON.parse(fs.readFileSync(path.join(dir, "calibration.json"), "utf8"))
    expect(calibration.rows.map((r: { row: string }) => r.row)).toEqual(
      expect.arrayContaining(["ground_truth", "noise_8", "blur", "down_up_2", "brightness_15", "gain_0.85", "shift_1", "repeat_frame_0", "frozen_hand", "other_task", "uniform_noise", "mush", "swapped_order"])
    )
    const logged = Object.assign({}, ...run.metrics.map((m) => m.values))
    expect(Object.keys(logged)).toEqual(expect.arrayContaining(["judge/calib/ground_truth", "judge/calib/frozen_hand", "judge/calib/swapped_order", "judge/loss"]))
    expect(run.uploads.sort()).toEqual(["judge/calibration.json", "judge/calibration.md"])
  }, 300_000)
})
