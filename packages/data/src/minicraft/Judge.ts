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
import { binomialBlurInto } from "./Filters.ts"

export interface JudgeOptions {
  /** per-pixel differences up to this (largest channel, uint8 steps) are noise and cost nothing */
  readonly pixelTolerance: number
  /** a frame matches state k when its cost is at most this fraction of the cost between k and its nearest other state */
  readonly matchFraction: number
  /** a pixel is skin when every channel is within this of the lit skin colour (uint8 steps) */
  readonly skinTolerance: number
  /** how far (pixels) the hand mask is grown to cover its anti-aliased fringe */
  readonly handDilation: number
  /** the hand touches a step's changed region when it comes this close (fraction of the image width) */
  readonly touchRadius: number
  /** while a step is under way the hand must move at least this far (fraction of the image width) */
  readonly minHandTravel: number
  /**
   * Frames are also matched against references blurred 1..blurLevels times (3×3 binomial), so a blurry
   * video (a generative model's output) is judged on what it shows, not on how sharp its edges are.
   */
  readonly blurLevels: number
  /** a state counts as shown only when this many consecutive frames show it */
  readonly minRun: number
}

export const defaultJudgeOptions: JudgeOptions = { pixelTolerance: 12, matchFraction: 0.34, skinTolerance: 20, handDilation: 1, touchRadius: 0.1, minHandTravel: 0.05, blurLevels: 2, minRun: 2 }

export interface FrameVerdict {
  /** the state shown (number of steps done), or null when the frame matches no state (mid-action, or wrong) */
  readonly state: number | null
  /** per candidate state: the frame's cost against it outside the hand, as a fraction of the state's margin (≤ 1: a match) */
  readonly scores: ReadonlyArray<number>
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
  /** the sharp reference rendering of each state (0..steps) */
  private readonly references: ReadonlyArray<Uint8Array>
  /** per blur level (0 = sharp): each state's reference and the largest cost that still matches it */
  private readonly levels: ReadonlyArray<{ readonly references: ReadonlyArray<Uint8Array>; readonly matchLimit: ReadonlyArray<number> }>
  private readonly skin: Uint8Array
  /** pixels that look like skin in some reference (a tan table): never counted as hand */
  private readonly staticSkin: Mask
  /** changeRegions[k]: pixels that differ between states k and k+1, grown by 2 */
  private readonly changeRegions: ReadonlyArray<Mask>
  /** matchLimit[k]: the largest cost at which a sharp frame still shows state k */
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
      let cost = 0
      for (let p = 0; p < n; p++) cost += pixelCost(a, b, p, tol)
      return cost
    }
    const limits = (references: ReadonlyArray<Uint8Array>, level: number): number[] =>
      references.map((ref, k) => {
        let nearest = Infinity
        references.forEach((other, j) => {
          if (j !== k) nearest = Math.min(nearest, diffCount(ref, other))
        })
        if (nearest === 0 && level === 0) throw new RangeError(`${task.name}: at ${scene.width}×${scene.height} state ${k} looks the same as another state; use a larger resolution`)
        return this.options.matchFraction * nearest
      })
    const levels: { references: Uint8Array[]; matchLimit: number[] }[] = []
    let blurred = [...this.references]
    for (let level = 0; level <= this.options.blurLevels; level++) {
      if (level > 0) blurred = blurred.map((ref) => binomialBlur(ref, scene.width, scene.height))
      levels.push({ references: blurred, matchLimit: limits(blurred, level) })
    }
    this.levels = levels
    this.matchLimit = levels[0]!.matchLimit
    this.changeRegions = this.references.slice(0, -1).map((ref, k) => {
      const m: Mask = new Uint8Array(n)
      for (let p = 0; p < n; p++) if (pixelDiffers(ref, this.references[k + 1]!, p, 2 * tol)) m[p] = 1
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
    return this.analyse(frame).verdict
  }

  /**
   * Scores the states leaving out skin-coloured pixels (grown by the blur level); then, with the best-fitting
   * reference as background, finds the hand including its blurred or anti-aliased fringe (pixels on the way
   * from the background colour to the skin colour) connected to the image border. The fringe only serves as
   * evidence of the hand: leaving it out of the scores too would let it hide real differences.
   */
  private analyse(frame: Uint8Array): { verdict: FrameVerdict; hand: Mask } {
    const { width, height } = this.scene
    const n = width * height
    if (frame.length !== n * 3) throw new RangeError(`judge: frame has ${frame.length} bytes, expected ${n * 3} (${height}×${width}×3)`)
    const skin = this.skinMask(frame)
    const { scores, best: bestState, level } = this.score(frame, skin)
    const hand = this.handMask(or(skin, this.blendMask(frame, this.levels[level]!.references[bestState]!)))
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
    let state: number | null = null
    let best = Infinity
    let tie = false
    scores.forEach((r, k) => {
      if (r > 1) return
      if (r < best) {
        best = r
        state = k
        tie = false
      } else if (r === best) tie = true
    })
    return { verdict: { state: tie ? null : state, scores, hand: hn === 0 ? null : { x: hx / hn, y: hy / hn, pixels: hn } }, hand }
  }

  /** Per state, the blur level where the frame fits best, scored as cost / allowed cost, outside `hand`. */
  private score(frame: Uint8Array, hand: Mask): { scores: number[]; best: number; level: number } {
    const { width, height } = this.scene
    const n = width * height
    const tol = this.options.pixelTolerance
    const scores = new Array<number>(this.steps + 1).fill(Infinity)
    let best = 0
    let bestLevel = 0
    for (const [blur, level] of this.levels.entries()) {
      // a blurred hand spreads one more pixel per blur pass: leave that halo out too
      const excluded = dilate(hand, width, height, this.options.handDilation + blur)
      level.references.forEach((ref, k) => {
        let cost = 0
        for (let p = 0; p < n; p++) if (excluded[p] === 0) cost += pixelCost(frame, ref, p, tol)
        const limit = level.matchLimit[k]!
        const ratio = cost === 0 ? 0 : limit === 0 ? Infinity : cost / limit
        if (ratio < scores[k]!) {
          scores[k] = ratio
          if (ratio < scores[best]! || k === best) {
            best = k
            bestLevel = blur
          }
        }
      })
    }
    return { scores, best, level: bestLevel }
  }

  /** Pixels that look like a mix of the background and at least 30 % skin (the fringe of a soft hand). */
  private blendMask(frame: Uint8Array, background: Uint8Array): Mask {
    const n = this.scene.width * this.scene.height
    const tol = this.options.pixelTolerance
    const m: Mask = new Uint8Array(n)
    const s = this.skin
    for (let p = 0; p < n; p++) {
      const i = p * 3
      let dd = 0
      let fd = 0
      for (let c = 0; c < 3; c++) {
        const d = s[i + c]! - background[i + c]!
        dd += d * d
        fd += (frame[i + c]! - background[i + c]!) * d
      }
      if (dd < (3 * tol) ** 2) continue // skin and background look alike here: no evidence either way
      const alpha = fd / dd
      if (alpha < 0.3) continue
      const a = Math.min(alpha, 1)
      let off = 0
      for (let c = 0; c < 3; c++) off = Math.max(off, Math.abs(frame[i + c]! - (background[i + c]! + a * (s[i + c]! - background[i + c]!))))
      if (off <= 2 * tol) m[p] = 1
    }
    return m
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

  /** Whether the hand (its mask in a frame) comes within the touch radius of the region changed by step `k + 1`. */
  private touchesChange(handMask: Mask, k: number): boolean {
    // the fingertips are thin: at low resolution or in a blurry video they may not read as hand at all
    const radius = Math.max(1, Math.round(this.options.touchRadius * this.scene.width))
    const hand = dilate(handMask, this.scene.width, this.scene.height, radius)
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
    const hands: Mask[] = []
    for (let t = 0; t < count; t++) {
      const { verdict, hand } = this.analyse(frameAt(t))
      verdicts.push(verdict)
      hands.push(hand)
    }

    // a state is shown by a run of at least minRun consecutive frames: one stray frame decides nothing
    const runs: { state: number; frame: number }[] = []
    for (let t = 0; t < count; ) {
      const s = verdicts[t]!.state
      let end = t + 1
      while (end < count && verdicts[end]!.state === s) end++
      if (s !== null && end - t >= this.options.minRun) runs.push({ state: s, frame: t })
      t = end
    }
    const reached: { state: number; frame: number }[] = []
    let current = -1
    let firstOfCurrent = -1
    let failure: string | undefined
    for (const { state: s, frame: t } of runs) {
      if (current === -1) {
        if (s !== 0) failure = `frame ${t}: the first recognised state is ${s}, not the initial state 0`
        else {
          current = 0
          firstOfCurrent = t
          reached.push({ state: 0, frame: t })
        }
      } else if (s <= current) continue // a look back does not undo the steps already reached
      else if (s === current + 1) {
        const why = this.handActionMissing(verdicts, hands, firstOfCurrent, t, current)
        if (why !== undefined) failure = `frame ${t}: state ${s} appeared but ${why}`
        else {
          current = s
          firstOfCurrent = t
          reached.push({ state: s, frame: t })
        }
      } else failure = `frame ${t}: state ${s} follows state ${current} (steps must be reached in order)`
      if (failure !== undefined) break
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
  private handActionMissing(verdicts: ReadonlyArray<FrameVerdict>, hands: ReadonlyArray<Mask>, from: number, to: number, k: number): string | undefined {
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
      if (!touched && this.touchesChange(hands[t]!, k)) touched = true
    }
    if (minX === Infinity) return `no hand is visible during frames ${from}..${to}`
    if (!touched) return `the hand never touched the changed region during frames ${from}..${to}`
    const travel = Math.hypot(maxX - minX, maxY - minY)
    const needed = this.options.minHandTravel * this.scene.width
    if (travel < needed) return `the hand did not move during frames ${from}..${to} (${travel.toFixed(2)} px, needs ${needed.toFixed(2)})`
    return undefined
  }
}

/** One pass of the 3×3 binomial filter (Filters.ts), rounded to uint8 levels. */
const binomialBlur = (image: Uint8Array, width: number, height: number): Uint8Array => {
  const out = new Uint8Array(image.length)
  binomialBlurInto(image, out, width, height)
  return out
}

/** How much pixel p differs beyond the noise tolerance (largest channel). */
const pixelCost = (a: Uint8Array, b: Uint8Array, p: number, tol: number): number => {
  const i = p * 3
  const d = Math.max(Math.abs(a[i]! - b[i]!), Math.abs(a[i + 1]! - b[i + 1]!), Math.abs(a[i + 2]! - b[i + 2]!))
  return d > tol ? d - tol : 0
}

const pixelDiffers = (a: Uint8Array, b: Uint8Array, p: number, tol: number): boolean => {
  const i = p * 3
  return Math.abs(a[i]! - b[i]!) > tol || Math.abs(a[i + 1]! - b[i + 1]!) > tol || Math.abs(a[i + 2]! - b[i + 2]!) > tol
}

const or = (a: Mask, b: Mask): Mask => {
  const out: Mask = new Uint8Array(a.length)
  for (let p = 0; p < a.length; p++) out[p] = a[p]! | b[p]!
  return out
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
