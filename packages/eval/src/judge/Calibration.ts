/**
 * The craft judge's calibration table (docs/paper.md "What the paper leaves open": no check that the step
 * classifier is fair): the judge on held-out test episodes of a dataset — ground truth, each degradation a
 * learned renderer may add, and negatives it must reject. One row per video kind:
 * - positives (ground truth and its degradations): % of the ground truth's steps found (targets 100 / ≥ 95);
 * - negatives (frame 0 repeated, frozen hand, another task's video, uniform noise, blurred mush): % of steps
 *   found that are not there (target 0);
 * - steps `i` and `i + 1` swapped (0-based): only the `i` steps before the swap may count; the row reports %
 *   of the steps after the swap found (target 0) and, as `exact`, the episodes judged exactly `i`.
 */
import { MiniCraft } from "@vw2/data"
import { Rng } from "@vw2/nn"
import { blur, brightness, downUp, gain, gaussianNoise, mush, onVideo, shift, toBytes, uniformNoise } from "./Degradations.ts"
import { swappedOrder } from "./JudgeData.ts"

export interface CalibrationEpisode {
  readonly id: string
  readonly task: string
  readonly steps: number
  readonly appearance: MiniCraft.Appearance
  /** uint8 [T, H, W, 3] ground truth */
  readonly frames: Uint8Array
  readonly length: number
}

export interface CalibrationSettings {
  readonly height: number
  readonly width: number
  readonly supersample: number
  readonly framesPerStep: number
  readonly idleFrames: number
  readonly seed: number
}

export type RowKind = "positive" | "negative" | "swapped"

export interface CalibrationRow {
  readonly row: string
  readonly kind: RowKind
  readonly description: string
  /** positives: % of steps found; negatives: % of absent steps found; swapped: % of steps after the swap found */
  readonly pct: number
  /** % of episodes judged exactly the expected number of steps */
  readonly exactPct: number
  readonly target: string
  readonly pass: boolean
  readonly perEpisode: ReadonlyArray<{ readonly id: string; readonly expected: number; readonly judged: number }>
}

interface RowSpec {
  readonly row: string
  readonly kind: RowKind
  readonly description: string
  /** the video to judge for episode `e` (index `i`), and the steps it truly completes */
  readonly video: (e: CalibrationEpisode, i: number) => { frames: Uint8Array; length: number; expected: number }
}

/** Judges a video of a task: completed prefix (the classifier judge, or the exact judge as a diagnostic). */
export type JudgeFn = (e: CalibrationEpisode, frames: Uint8Array, length: number) => number

const pct = (num: number, den: number) => (den === 0 ? 0 : (100 * num) / den)

export const calibrationRows = (episodes: ReadonlyArray<CalibrationEpisode>, s: CalibrationSettings): RowSpec[] => {
  const size = { height: s.height, width: s.width }
  const render = (e: CalibrationEpisode, variant: MiniCraft.EpisodeVariant) =>
    MiniCraft.renderEpisodeArray(MiniCraft.getTask(e.task), e.appearance, { width: s.width, height: s.height, supersample: s.supersample, framesPerStep: s.framesPerStep, idleFrames: s.idleFrames }, variant)
  const degraded = (row: string, description: string, f: (frame: Float32Array, e: CalibrationEpisode, i: number, t: number) => Float32Array): RowSpec => ({
    row,
    kind: "positive",
    description,
    video: (e, i) => ({ frames: onVideo(e.frames, e.length, size, (frame, t) => f(frame, e, i, t)), length: e.length, expected: e.steps })
  })
  // noise streams keyed by episode and frame, so every run judges the same videos
  const noiseRng = (i: number, t: number) => new Rng((s.seed * 1_000_003 + i * 10_007 + t) >>> 0)
  const rows: RowSpec[] = [
    { row: "ground_truth", kind: "positive", description: "ground truth", video: (e) => ({ frames: e.frames, length: e.length, expected: e.steps }) },
    degraded("noise_8", "Gaussian noise σ = 8/255", (f, _e, i, t) => {
      const r = noiseRng(i, t)
      return gaussianNoise(f, 8 / 255, () => r.next())
    }),
    degraded("blur", "3×3 binomial blur, one pass", (f) => blur(f, size, 1)),
    degraded("down_up_2", "×2 average down-sample, bilinear up-sample", (f) => downUp(f, size, 2)),
    degraded("brightness_15", "brightness +15/255", (f) => brightness(f, 15 / 255)),
    degraded("gain_0.85", "gain ×0.85", (f) => gain(f, 0.85)),
    degraded("shift_1", "shifted 1 px right and down", (f) => shift(f, size, 1, 1)),
    {
      row: "repeat_frame_0",
      kind: "negative",
      description: "frame 0 repeated",
      video: (e) => {
        const n = s.height * s.width * 3
        const frames = new Uint8Array(e.length * n)
        for (let t = 0; t < e.length; t++) frames.set(e.frames.subarray(0, n), t * n)
        return { frames, length: e.length, expected: 0 }
      }
    },
    {
      row: "frozen_hand",
      kind: "negative",
      description: "steps happen, the hand stays where it starts",
      video: (e) => {
        const r = render(e, { script: { order: Array.from({ length: e.steps }, (_, k) => k), freezeHand: true } })
        return { frames: r.frames, length: r.length, expected: 0 }
      }
    },
    {
      row: "other_task",
      kind: "negative",
      description: "another task's test video judged as this task",
      video: (e, i) => {
        const others = episodes.filter((o) => o.task !== e.task)
        const o = others[i % others.length]!
        return { frames: o.frames, length: o.length, expected: 0 }
      }
    },
    {
      row: "uniform_noise",
      kind: "negative",
      description: "uniform noise frames",
      video: (e, i) => {
        const n = s.height * s.width * 3
        const frames = new Uint8Array(e.length * n)
        for (let t = 0; t < e.length; t++) {
          const r = noiseRng(i, t)
          frames.set(toBytes(uniformNoise(size, () => r.next())), t * n)
        }
        return { frames, length: e.length, expected: 0 }
      }
    },
    {
      row: "mush",
      kind: "negative",
      description: "ground truth blurred to mush (4×4 cells)",
      video: (e) => ({ frames: onVideo(e.frames, e.length, size, (f) => mush(f, size)), length: e.length, expected: 0 })
    },
    {
      row: "swapped_order",
      kind: "swapped",
      description: "two adjacent steps done in swapped order (only the steps before the swap count)",
      video: (e, i) => {
        const at = 1 + (i % Math.max(1, e.steps - 2)) // swap positions 1..steps-2 across episodes: a prefix to find first
        const r = render(e, { script: { order: swappedOrder(e.steps, at) } })
        return { frames: r.frames, length: r.length, expected: at }
      }
    }
  ]
  // another task's video needs test episodes of two tasks
  return new Set(episodes.map((e) => e.task)).size < 2 ? rows.filter((r) => r.row !== "other_task") : rows
}

/** Runs every row with `judge`; `only` restricts to some rows (by name). */
export const calibrate = (episodes: ReadonlyArray<CalibrationEpisode>, s: CalibrationSettings, judge: JudgeFn, only?: ReadonlyArray<string>): CalibrationRow[] =>
  calibrationRows(episodes, s)
    .filter((spec) => only === undefined || only.includes(spec.row))
    .map((spec) => {
      const perEpisode = episodes.map((e, i) => {
        const v = spec.video(e, i)
        return { id: e.id, expected: v.expected, judged: judge(e, v.frames, v.length) }
      })
      const steps = episodes.map((e) => e.steps)
      const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)
      const exactPct = pct(perEpisode.filter((p) => p.judged === p.expected).length, perEpisode.length)
      if (spec.kind === "positive") {
        const found = pct(sum(perEpisode.map((p) => Math.min(p.judged, p.expected))), sum(perEpisode.map((p) => p.expected)))
        const target = spec.row === "ground_truth" ? 100 : 95
        return { row: spec.row, kind: spec.kind, description: spec.description, pct: found, exactPct, target: spec.row === "ground_truth" ? "100 %" : "≥ 95 %", pass: found >= target, perEpisode }
      }
      if (spec.kind === "negative") {
        const falsePct = pct(sum(perEpisode.map((p) => p.judged)), sum(steps))
        return { row: spec.row, kind: spec.kind, description: spec.description, pct: falsePct, exactPct, target: "0 %", pass: falsePct === 0, perEpisode }
      }
      const beyond = pct(sum(perEpisode.map((p) => Math.max(0, p.judged - p.expected))), sum(perEpisode.map((p, i) => steps[i]! - p.expected)))
      return { row: spec.row, kind: spec.kind, description: spec.description, pct: beyond, exactPct, target: "0 % beyond the swap", pass: beyond === 0, perEpisode }
    })

export const calibrationMarkdown = (rows: ReadonlyArray<CalibrationRow>, title: string, exact?: ReadonlyArray<CalibrationRow>): string =>
  [
    `# ${title}`,
    "",
    "positives: % of the ground truth's steps found; negatives: % of absent steps found; swapped order: % of the steps after the swap found.",
    "",
    `| row | video | classifier judge | episodes exact | target | pass |${exact === undefined ? "" : " exact pixel judge (diagnostic) |"}`,
    `|---|---|---|---|---|---|${exact === undefined ? "" : "---|"}`,
    ...rows.map((r) => {
      const e = exact?.find((x) => x.row === r.row)
      return `| ${r.row} | ${r.description} | ${r.pct.toFixed(1)} % | ${r.exactPct.toFixed(0)} % | ${r.target} | ${r.pass ? "yes" : "**no**"} |${exact === undefined ? "" : ` ${e === undefined ? "n/a" : `${e.pct.toFixed(1)} %`} |`}`
    }),
    ""
  ].join("\n")
