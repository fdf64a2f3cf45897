/**
 * The MiniCraft judge: decides which task state each frame of a video shows and scores step-wise success
 * (step k succeeds only if states 1..k were reached in order, each by a visible hand action).
 *
 * It knows the task and the episode's appearance, so instead of a learned classifier (the paper's DINOv2
 * judge, trained partly on model outputs) it renders every candidate state under that appearance and
 * matches: a frame shows state k when, outside the hand, almost no pixel differs from the rendering of k
 * (fewer than a third of the pixels that tell k from its nearest other state). The hand is found by its
 * skin colour under the episode's lighting and left out of the comparison; sensor noise is far below the
 * pixel tolerance. A transition k → k+1 counts only if the hand touches the region that changes and moves
 * while it changes, so a video whose states change by themselves (hand frozen) fails.
 */
import type { Appearance } from "./Appearance.ts"
import { Renderer } from "./Renderer.ts"
import { sceneAt } from "./Scene.ts"
import type { Task } from "./Tasks.ts"

export interface JudgeOptions {
  /** a pixel differs when some channel differs by more than this (uint8 steps) */
  readonly pixelTolerance: number
  /** a frame matches state k when its differing pixels are at most this fraction of k's nearest-state margin */
  readonly matchFraction: number
  /** a pixel is skin when every channel is within this of the lit skin colour (uint8 steps) */
  readonly skinTolerance: number
  /** how far (pixels) the hand mask is grown to cover its anti-aliased fringe */
  readonly handDilation: number
  /** while a step is under way the hand must move at least this far (fraction of the image width) */
  readonly minHandTravel: number
}

export const defaultJudgeOptions: JudgeOptions = { pixelTolerance: 32, matchFraction: 0.34, skinTolerance: 20, handDilation: 1, minHandTravel: 0.05 }

export interface FrameVerdict {
  /** the state shown (number of steps done), or null when the frame matches no state (mid-action, or wrong) */
  readonly state: number | null
  /** per candidate state: pixels differing outside the hand */
  readonly differing: ReadonlyArray<number>
  /** centroid of the visible hand in pixels, null when no hand is visible */
  readonly hand: { readonly x: number; readonly y: number; readonly pixels: number } | null
}

export interface EpisodeVerdict {
  readonly frames: ReadonlyArray<FrameVerdict>
  /** states reached in order, with the first frame showing each */
  readonly reached: ReadonlyArray<{ readonly state: number; readonly frame: number }>
  /** steps completed in order from the start (0..steps) */
  readonly completed: number
  /** stepSuccess[k - 1]: step k succeeded (all of 1..k reached in order with a hand action) */
  readonly stepSuccess: ReadonlyArray<boolean>
  /** why the chain stopped before the last step, if it did */
  readonly failure?: string
}

export interface JudgeScene {
  readonly task: Task
  readonly appearance: Appearance
  readonly width: number
  readonly height: number
  /** must match the generator's (dataset.json stats.minicraft.supersample); default 3 */
  readonly supersample?: number
}

type Mask = Uint8Array

/** Below this size some consecutive states differ in only a pixel or two: the judge is not trustworthy. */
export const MIN_JUDGE_RESOLUTION = 24

export class MiniCraftJudge {
  readonly scene: JudgeScene
  readonly options: JudgeOptions
  readonly steps: number
  private readonly references: ReadonlyArray<Uint8Array>
  private readonly skin: Uint8Array
  /** pixels that look like skin in some reference (a tan table): never counted as hand */
  private readonly staticSkin: Mask
  /** changeRegions[k]: pixels that differ between states k and k+1, grown by 2 */
  private readonly changeRegions: ReadonlyArray<Mask>
  /** matchLimit[k]: most differing pixels a frame may have and still show state k */
  readonly matchLimit: ReadonlyArray<number>

  constructor(scene: JudgeScene, options: Partial<JudgeOptions> = {}) {
    if (Math.min(scene.width, scene.height) < MIN_JUDGE_RESOLUTION) {
      throw new RangeError(`judge: ${scene.width}×${scene.height} is below the judge's minimum resolution ${MIN_JUDGE_RESOLUTION} (states become indistinguishable); generate at ≥ ${MIN_JUDGE_RESOLUTION} px`)
    }
    this.scene = scene
    this.options = { ...defaultJudgeOptions, ...options }
    const { task } = scene
    this.steps = task.steps.length
    const order = task.steps.map((_, i) => i)
    const renderer = new Renderer(task, scene.appearance, { width: scene.width, height: scene.height, supersample: scene.supersample ?? 3 })
    this.references = Array.from({ length: this.steps + 1 }, (_, k) => renderer.render(sceneAt(task, { order, completed: k }), undefined, undefined))
    this.skin = renderer.skinPlate()
    const n = scene.width * scene.height
    this.staticSkin = new Uint8Array(n)
    for (const ref of this.references) {
      const s = this.skinMask(ref)
      for (let p = 0; p < n; p++) this.staticSkin[p]! |= s[p]!
    }
    const tol = this.options.pixelTolerance
    const diffCount = (a: Uint8Array, b: Uint8Array): number => {
      let count = 0
      for (let p = 0; p < n; p++) if (pixelDiffers(a, b, p, tol)) count++
      return count
    }
    this.matchLimit = this.references.map((ref, k) => {
      let nearest = Infinity
      this.references.forEach((other, j) => {
        if (j !== k) nearest = Math.min(nearest, diffCount(ref, other))
      })
      if (nearest === 0) throw new RangeError(`${task.name}: at ${scene.width}×${scene.height} state ${k} looks the same as another state; use a larger resolution`)
      return Math.floor(this.options.matchFraction * nearest)
    })
    this.changeRegions = this.references.slice(0, -1).map((ref, k) => {
      const m: Mask = new Uint8Array(n)
      for (let p = 0; p < n; p++) if (pixelDiffers(ref, this.references[k + 1]!, p, tol)) m[p] = 1
      return dilate(m, scene.width, scene.height, 2)
    })
  }

  private skinMask(frame: Uint8Array): Mask {
    const n = this.scene.width * this.scene.height
    const m: Mask = new Uint8Array(n)
    const tol = this.options.skinTolerance
    for (let p = 0; p < n; p++) if (!pixelDiffers(frame, this.skin, p, tol)) m[p] = 1
    return m
  }

  /** Which state one frame (uint8 H·W·3) shows, and where the hand is. */
  classify(frame: Uint8Array): FrameVerdict {
    const { width, height } = this.scene
    const n = width * height
    if (frame.length !== n * 3) throw new RangeError(`judge: frame has ${frame.length} bytes, expected ${n * 3} (${height}×${width}×3)`)
    const skin = this.skinMask(frame)
    const hand = this.handMask(skin)
    let hx = 0
    let hy = 0
    let hn = 0
    for (let p = 0; p < n; p++) {
      if (hand[p] === 1) {
        hx += p % width
        hy += Math.floor(p / width)
        hn++
      }
    }
    const excluded = dilate(skin, width, height, this.options.handDilation)
    const tol = this.options.pixelTolerance
    const differing = this.references.map((ref) => {
      let count = 0
      for (let p = 0; p < n; p++) if (excluded[p] === 0 && pixelDiffers(frame, ref, p, tol)) count++
      return count
    })
    let state: number | null = null
    let best = Infinity
    let tie = false
    differing.forEach((d, k) => {
      if (d > this.matchLimit[k]!) return
      if (d < best) {
        best = d
        state = k
        tie = false
      } else if (d === best) tie = true
    })
    return { state: tie ? null : state, differing, hand: hn === 0 ? null : { x: hx / hn, y: hy / hn, pixels: hn } }
  }

  /**
   * The hand: skin-coloured regions connected to the image border (the arm always enters from outside the
   * view), less the pixels that look like skin in the references anyway. Skin-like patches elsewhere (a
   * shaded flap) are not the hand.
   */
  private handMask(skin: Mask): Mask {
    const { width, height } = this.scene
    const hand: Mask = new Uint8Array(skin.length)
    const stack: number[] = []
    const seed = (p: number) => {
      if (skin[p] === 1 && hand[p] === 0) {
        hand[p] = 1
        stack.push(p)
      }
    }
    for (let x = 0; x < width; x++) {
      seed(x)
      seed((height - 1) * width + x)
    }
    for (let y = 0; y < height; y++) {
      seed(y * width)
      seed(y * width + width - 1)
    }
    while (stack.length > 0) {
      const p = stack.pop()!
      const x = p % width
      const y = (p - x) / width
      if (x > 0) seed(p - 1)
      if (x < width - 1) seed(p + 1)
      if (y > 0) seed(p - width)
      if (y < height - 1) seed(p + width)
    }
    for (let p = 0; p < hand.length; p++) if (this.staticSkin[p] === 1) hand[p] = 0
    return hand
  }

  /** Whether the hand touches the region changed by step `k + 1`. */
  private touchesChange(frame: Uint8Array, k: number): boolean {
    // grown by one more pixel than for matching: at low resolution the fingertips are all fringe
    const hand = dilate(this.handMask(this.skinMask(frame)), this.scene.width, this.scene.height, this.options.handDilation + 1)
    const region = this.changeRegions[k]!
    for (let p = 0; p < hand.length; p++) if (hand[p] === 1 && region[p] === 1) return true
    return false
  }

  /** Judges a whole video: `frames` is uint8 [T, H, W, 3] (or a function returning frame t). */
  judge(frames: Uint8Array | ((t: number) => Uint8Array), length?: number): EpisodeVerdict {
    const size = this.scene.width * this.scene.height * 3
    const count = length ?? (frames instanceof Uint8Array ? frames.length / size : NaN)
    if (!Number.isInteger(count) || count <= 0) throw new RangeError(`judge: cannot tell the number of frames (got ${count})`)
    const frameAt = frames instanceof Uint8Array ? (t: number) => frames.subarray(t * size, (t + 1) * size) : frames
    const verdicts: FrameVerdict[] = []
    for (let t = 0; t < count; t++) verdicts.push(this.classify(frameAt(t)))

    const reached: { state: number; frame: number }[] = []
    let current = -1
    let firstOfCurrent = -1
    let failure: string | undefined
    for (let t = 0; t < count && failure === undefined; t++) {
      const s = verdicts[t]!.state
      if (s === null) continue
      if (current === -1) {
        if (s !== 0) failure = `frame ${t}: the first recognised state is ${s}, not the initial state 0`
        else {
          current = 0
          firstOfCurrent = t
          reached.push({ state: 0, frame: t })
        }
      } else if (s === current) continue
      else if (s === current + 1) {
        const why = this.handActionMissing(verdicts, frameAt, firstOfCurrent, t, current)
        if (why !== undefined) failure = `frame ${t}: state ${s} appeared but ${why}`
        else {
          current = s
          firstOfCurrent = t
          reached.push({ state: s, frame: t })
        }
      } else failure = `frame ${t}: state ${s} follows state ${current} (steps must be reached in order)`
    }
    const completed = Math.max(0, current)
    if (failure === undefined && current === -1) failure = "no frame shows the initial state"
    if (failure === undefined && completed < this.steps) failure = `the video ends after ${completed} of ${this.steps} steps`
    const stepSuccess = Array.from({ length: this.steps }, (_, i) => completed >= i + 1)
    return failure === undefined ? { frames: verdicts, reached, completed, stepSuccess } : { frames: verdicts, reached, completed, stepSuccess, failure }
  }

  /**
   * Why frames [from, to] (from the first frame showing state k to the first showing k + 1) do not show a
   * hand performing step k + 1, or undefined when they do: the hand must touch the changed region and move.
   */
  private handActionMissing(verdicts: ReadonlyArray<FrameVerdict>, frameAt: (t: number) => Uint8Array, from: number, to: number, k: number): string | undefined {
    let touched = false
    let minX = Infinity
    let maxX = -Infinity
    let minY = Infinity
    let maxY = -Infinity
    for (let t = from; t <= to; t++) {
      const hand = verdicts[t]!.hand
      if (hand === null) continue
      minX = Math.min(minX, hand.x)
      maxX = Math.max(maxX, hand.x)
      minY = Math.min(minY, hand.y)
      maxY = Math.max(maxY, hand.y)
      if (!touched && this.touchesChange(frameAt(t), k)) touched = true
    }
    if (minX === Infinity) return `no hand is visible during frames ${from}..${to}`
    if (!touched) return `the hand never touched the changed region during frames ${from}..${to}`
    const travel = Math.hypot(maxX - minX, maxY - minY)
    const needed = this.options.minHandTravel * this.scene.width
    if (travel < needed) return `the hand did not move during frames ${from}..${to} (${travel.toFixed(2)} px, needs ${needed.toFixed(2)})`
    return undefined
  }
}

const pixelDiffers = (a: Uint8Array, b: Uint8Array, p: number, tol: number): boolean => {
  const i = p * 3
  return Math.abs(a[i]! - b[i]!) > tol || Math.abs(a[i + 1]! - b[i + 1]!) > tol || Math.abs(a[i + 2]! - b[i + 2]!) > tol
}

/** Grows a mask by `r` pixels (square neighbourhood). */
const dilate = (mask: Mask, width: number, height: number, r: number): Mask => {
  if (r <= 0) return mask
  const out: Mask = new Uint8Array(mask.length)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x] === 0) continue
      for (let dy = -r; dy <= r; dy++) {
        const yy = y + dy
        if (yy < 0 || yy >= height) continue
        for (let dx = -r; dx <= r; dx++) {
          const xx = x + dx
          if (xx >= 0 && xx < width) out[yy * width + xx] = 1
        }
      }
    }
  }
  return out
}

/** Step-wise success rates over episodes: rate[k - 1] = fraction of episodes whose step k succeeded. */
export const stepwiseSuccessRates = (verdicts: ReadonlyArray<EpisodeVerdict>): number[] => {
  if (verdicts.length === 0) return []
  const steps = Math.max(...verdicts.map((v) => v.stepSuccess.length))
  return Array.from({ length: steps }, (_, i) => verdicts.filter((v) => v.stepSuccess[i] === true).length / verdicts.length)
}
