/**
 * The classifier judge's episode rules (docs/paper.md "Evaluation": step k succeeds only if steps 1..k did),
 * the same as the exact MiniCraft judge's (packages/data/src/minicraft/Judge.ts), read off the step
 * classifier instead of pixel matching:
 * - a frame shows state k when the task's head gives k at least `threshold` probability (the margin); a
 *   state is shown by a run of at least `minRun` such frames;
 * - the first state shown must be 0; states are reached in order (k + 1 right after k; a jump fails; a look
 *   back changes nothing);
 * - between the first frame of state k and the end of the first run of k + 1 the hand (the tip of the
 *   classifier's hand mask) must travel at least `minHandTravel` of the image width, as in the exact judge:
 *   a frozen hand, or states that change by themselves, fail. The window runs to the end of that run, not
 *   its first frame: a fold or block that is almost done already reads as k + 1 while the hand is still
 *   at the grip, and the hand's withdrawal belongs to the same action.
 * `loadCraftJudge(dir)` reads a `craft-judge` checkpoint and judges uint8 [T, H, W, 3] videos.
 */
import * as tf from "@tensorflow/tfjs"
import { ConfigField } from "@vw2/core"
import { asFloatState, Init, loadCheckpoint } from "@vw2/nn"
import { Schema } from "effect"
import { toUnit } from "./Degradations.ts"
import { StepClassifier, type StepClassifierArchitecture } from "./StepClassifier.ts"

const { positiveInt, positiveNumber } = ConfigField

export const JudgeRules = Schema.Struct({
  /** the margin: a frame shows a state only when the classifier gives it at least this probability */
  threshold: positiveNumber(0.5),
  /** a state counts as shown only after this many consecutive frames show it */
  minRun: positiveInt(2),
  /** the hand must travel this far (fraction of the image width) between two states: one cell of the half-resolution hand mask at 32 px (the exact judge: 0.05) */
  minHandTravel: positiveNumber(0.06),
  /** a mask cell is hand at this probability; a frame shows a hand with at least minHandCells such cells */
  handProbability: positiveNumber(0.5),
  minHandCells: positiveInt(3),
  /** a faint cell (at least this probability) still links hand cells to the border: a thin or blurred arm reads weakly */
  armProbability: positiveNumber(0.2)
})
export type JudgeRules = typeof JudgeRules.Type

/** What the classifier reads in one frame for one task. */
export interface FrameReading {
  /** the state shown, or null (below the margin, or `other`) */
  readonly state: number | null
  readonly confidence: number
  /** the fingertip read off the hand mask (fractions of the width / height) and the mask's cells; null when no hand is seen */
  readonly hand: { readonly x: number; readonly y: number; readonly pixels: number } | null
}

export interface ClassifierVerdict {
  readonly frames: ReadonlyArray<FrameReading>
  readonly reached: ReadonlyArray<{ readonly state: number; readonly frame: number }>
  /** steps completed in order from the start */
  readonly completed: number
  readonly failure?: string
}

/**
 * How far the hand travels over frames [from, to]: the diagonal of the box its fingertip stays in, after a
 * median of three consecutive sightings (one stray blob in the mask moves nothing). Null: never seen.
 */
export const handTravel = (frames: ReadonlyArray<FrameReading>, from: number, to: number): number | null => {
  const seen: { x: number; y: number }[] = []
  for (let t = from; t <= to; t++) {
    const h = frames[t]!.hand
    if (h !== null) seen.push(h)
  }
  if (seen.length === 0) return null
  const med = (a: number, b: number, c: number) => Math.max(Math.min(a, b), Math.min(Math.max(a, b), c))
  const smooth = seen.length < 3 ? seen : seen.slice(1, -1).map((p, i) => ({ x: med(seen[i]!.x, p.x, seen[i + 2]!.x), y: med(seen[i]!.y, p.y, seen[i + 2]!.y) }))
  const xs = smooth.map((p) => p.x)
  const ys = smooth.map((p) => p.y)
  return Math.hypot(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys))
}

/** Applies the judge's rules to per-frame readings of one task with `steps` steps. */
export const judgeReadings = (frames: ReadonlyArray<FrameReading>, steps: number, rules: JudgeRules): ClassifierVerdict => {
  const runs: { state: number; frame: number; last: number }[] = []
  for (let t = 0; t < frames.length; ) {
    const s = frames[t]!.state
    let end = t + 1
    while (end < frames.length && frames[end]!.state === s) end++
    if (s !== null && end - t >= rules.minRun) runs.push({ state: s, frame: t, last: end - 1 })
    t = end
  }
  const reached: { state: number; frame: number }[] = []
  let current = -1
  let since = -1
  let failure: string | undefined
  for (const { state: s, frame: t, last } of runs) {
    if (current === -1) {
      if (s !== 0) failure = `frame ${t}: the first recognised state is ${s}, not the initial state 0`
      else {
        current = 0
        since = t
        reached.push({ state: 0, frame: t })
      }
    } else if (s <= current) continue // a look back does not undo the steps already reached
    else if (s === current + 1) {
      const travel = handTravel(frames, since, last)
      if (travel === null) failure = `frame ${t}: state ${s} appeared but no hand is visible in frames ${since}..${last}`
      else if (travel < rules.minHandTravel) failure = `frame ${t}: state ${s} appeared but the hand moved ${travel.toFixed(3)} of the width in frames ${since}..${last} (needs ${rules.minHandTravel})`
      else {
        current = s
        since = t
        reached.push({ state: s, frame: t })
      }
    } else failure = `frame ${t}: state ${s} follows state ${current} (steps must be reached in order)`
    if (failure !== undefined) break
  }
  const completed = Math.max(0, current)
  if (failure === undefined && current === -1) failure = "no frame shows the initial state"
  if (failure === undefined && completed < steps) failure = `the video ends after ${completed} of ${steps} steps`
  return failure === undefined ? { frames, reached, completed } : { frames, reached, completed, failure }
}

/**
 * Where a hand-probability mask [H·W] puts the fingertip, in width / height fractions, or null when no hand is
 * seen. Only cells connected (8-neighbourhood, through cells of at least `armProbability`) to the image
 * border count, as in the exact judge: the arm always enters from outside the view, so a blob in the middle
 * (a block just put down, a flap edge) is not the hand. The fingertip is the hand cell farthest from the border (in MiniCraft v2 the arm slides along
 * itself, so only its end shows how far the hand moved).
 */
export const maskFingertip = (mask: Float32Array, width: number, rules: Pick<JudgeRules, "handProbability" | "minHandCells" | "armProbability">): FrameReading["hand"] => {
  const height = mask.length / width
  const linked = new Uint8Array(mask.length)
  const stack: number[] = []
  for (let p = 0; p < mask.length; p++) {
    const x = p % width
    const y = Math.floor(p / width)
    if ((x === 0 || y === 0 || x === width - 1 || y === height - 1) && mask[p]! >= rules.armProbability) {
      linked[p] = 1
      stack.push(p)
    }
  }
  while (stack.length > 0) {
    const p = stack.pop()!
    const x = p % width
    const y = Math.floor(p / width)
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const xx = x + dx
        const yy = y + dy
        if (xx < 0 || yy < 0 || xx >= width || yy >= height) continue
        const q = yy * width + xx
        if (linked[q] === 0 && mask[q]! >= rules.armProbability) {
          linked[q] = 1
          stack.push(q)
        }
      }
    }
  }
  let best = -1
  let bx = 0
  let by = 0
  let n = 0
  for (let p = 0; p < mask.length; p++) {
    if (linked[p] === 0 || mask[p]! < rules.handProbability) continue
    const x = (p % width) + 0.5
    const y = Math.floor(p / width) + 0.5
    const depth = Math.min(x, y, width - x, height - y)
    if (depth > best) {
      best = depth
      bx = x
      by = y
    }
    n++
  }
  return n < rules.minHandCells ? null : { x: bx / width, y: by / height, pixels: n }
}

/** The checkpoint's config.json. */
export interface CraftJudgeCheckpointConfig {
  readonly format: "vw2-craft-judge/1"
  readonly arch: StepClassifierArchitecture
  readonly rules: JudgeRules
}

export interface CraftJudge {
  readonly tasks: ReadonlyArray<string>
  readonly height: number
  readonly width: number
  readonly rules: JudgeRules
  /** steps of `task` */
  readonly steps: (task: string) => number
  /** per-frame readings of a uint8 [T, H, W, 3] video for `task` */
  readonly read: (task: string, frames: Uint8Array, T: number) => FrameReading[]
  readonly verdict: (task: string, frames: Uint8Array, T: number) => ClassifierVerdict
  /** steps completed in order (0..steps) in a uint8 [T, H, W, 3] video of `task` */
  readonly completedPrefix: (task: string, frames: Uint8Array, T: number) => number
  readonly dispose: () => void
}

/** Frames per forward pass: bounds memory for long videos at 64 px. */
const CHUNK = 128

/** Wraps a (trained) classifier and rules as a judge; `dispose` frees the classifier. */
export const makeCraftJudge = (model: StepClassifier, rules: JudgeRules): CraftJudge => {
  const { arch } = model
  const taskIndex = (task: string): number => {
    const i = arch.tasks.indexOf(task)
    if (i < 0) throw new Error(`craft judge: task "${task}" is not one the judge was trained on (${arch.tasks.join(", ")})`)
    return i
  }
  const frameSize = arch.height * arch.width * 3
  // the hand mask is at half resolution
  const maskWidth = Math.ceil(arch.width / 2)
  const maskSize = Math.ceil(arch.height / 2) * maskWidth
  const read = (task: string, frames: Uint8Array, T: number): FrameReading[] => {
    const k = taskIndex(task)
    if (!Number.isInteger(T) || T <= 0 || frames.length !== T * frameSize) {
      throw new RangeError(`craft judge: video has ${frames.length} bytes for T = ${T}, expected T × ${arch.height} × ${arch.width} × 3 (the judge's resolution)`)
    }
    const states = arch.steps[k]! + 1 // classes 0..steps of this task's head; the rest is `other` or unused
    const readings: FrameReading[] = []
    for (let start = 0; start < T; start += CHUNK) {
      const n = Math.min(CHUNK, T - start)
      const [probs, mask] = tf.tidy(() => {
        const x = tf.tensor4d(toUnit(frames.subarray(start * frameSize, (start + n) * frameSize)), [n, arch.height, arch.width, 3])
        const out = model.call(x)
        const p = tf.squeeze(tf.slice(tf.softmax(out.logits, -1), [0, k, 0], [n, 1, -1]), [1]) // [n, classes]
        return [p.dataSync() as Float32Array, tf.sigmoid(out.hand).dataSync() as Float32Array]
      })
      const classes = probs.length / n
      for (let i = 0; i < n; i++) {
        let best = 0
        for (let c = 1; c < classes; c++) if (probs[i * classes + c]! > probs[i * classes + best]!) best = c
        const confidence = probs[i * classes + best]!
        readings.push({ state: best < states && confidence >= rules.threshold ? best : null, confidence, hand: maskFingertip(mask.subarray(i * maskSize, (i + 1) * maskSize), maskWidth, rules) })
      }
    }
    return readings
  }
  const steps = (task: string) => arch.steps[taskIndex(task)]!
  const verdict = (task: string, frames: Uint8Array, T: number) => judgeReadings(read(task, frames, T), steps(task), rules)
  return {
    tasks: arch.tasks,
    height: arch.height,
    width: arch.width,
    rules,
    steps,
    read,
    verdict,
    completedPrefix: (task, frames, T) => verdict(task, frames, T).completed,
    dispose: () => model.dispose()
  }
}

/** Loads a `craft-judge` checkpoint directory (its `judge` output). */
export const loadCraftJudge = async (dir: string): Promise<CraftJudge> => {
  const ck = await loadCheckpoint<CraftJudgeCheckpointConfig>(dir)
  if (ck.config.format !== "vw2-craft-judge/1") throw new Error(`${dir}: not a craft-judge checkpoint (config.json format ${JSON.stringify(ck.config.format)})`)
  const model = new StepClassifier(Init.seeded(0), ck.config.arch)
  model.loadStateDict(asFloatState(ck.weights, `${dir}/model.safetensors`))
  return makeCraftJudge(model, Schema.decodeUnknownSync(JudgeRules)(ck.config.rules))
}
