/**
 * The time structure of an episode: idle frames, then for each step a reach phase (the hand comes in to the
 * grip point), an action phase (`fold` or `carry`: the hand moves the flap or block) and a release phase
 * (the hand withdraws out of view), then idle frames again. Gives each frame its pose, hand position, arm
 * anchor and label.
 */
import type { Vec } from "./Geometry.ts"
import { lerpVec, smoothstep, vec } from "./Geometry.ts"
import type { Pose, SceneState } from "./Scene.ts"
import { gripPoint, sceneAt } from "./Scene.ts"
import type { Task } from "./Tasks.ts"

export type Phase = "idle" | "reach" | "fold" | "carry" | "release"

/** Per-frame annotation written to meta.json. */
export interface FrameLabel {
  /** 1-based step under way (0 before the first, the last step during the final idle frames) */
  readonly step: number
  readonly phase: Phase
  readonly state: {
    /** number of steps completed */
    readonly completed: number
    /** 1-based step numbers completed, in the order they were done */
    readonly done: ReadonlyArray<number>
    /** progress of the step under way in [0, 1] */
    readonly progress: number
  }
}

export interface TimelineOptions {
  readonly framesPerStep: number
  readonly idleFrames: number
}

/** How the hand and steps are scripted; the ground truth is every step in order with a moving hand. */
export interface Script {
  readonly order: ReadonlyArray<number>
  /** keep the hand at its first position for the whole video (a counterfactual for the judge) */
  readonly freezeHand?: boolean
}

export interface FrameSpec {
  readonly pose: Pose
  /** fingertip position in world coordinates */
  readonly hand: Vec
  /** where the arm comes from (world coordinates, far outside the view) */
  readonly anchor: Vec
  readonly label: FrameLabel
}

/** The fingertip enters and leaves the view on this circle (outside the view at zoom 1, rotation 0). */
export const HAND_ENTRY_RADIUS = 1.3
/** The shoulder: arms are drawn from this far out, beyond the view under every camera. */
const ANCHOR_RADIUS = 2.4

/** The point where the ray from `from` (inside the circle) along unit `d` leaves the circle of `radius`. */
const leaveCircle = (from: Vec, d: Vec, radius: number): Vec => {
  const b = from.x * d.x + from.y * d.y
  const c = from.x * from.x + from.y * from.y - radius * radius
  const t = -b + Math.sqrt(Math.max(0, b * b - c))
  return vec(from.x + d.x * t, from.y + d.y * t)
}

/**
 * The arm's line for one step: the hand comes in along the line of the step's own motion (from beyond the
 * grip point, away from where the object goes), does the step and goes back the same way. Every move of a
 * step then runs along the arm, so the arm slides along itself and only the hand's end changes pixels: the
 * object, not the arm, dominates each transition (scripts/motion-budget.ts).
 */
export const armLine = (start: Vec, end: Vec): { readonly entry: Vec; readonly anchor: Vec } => {
  const dx = start.x - end.x
  const dy = start.y - end.y
  const length = Math.hypot(dx, dy)
  const d = length < 1e-9 ? vec(1, 0) : vec(dx / length, dy / length)
  return { entry: leaveCircle(start, d, HAND_ENTRY_RADIUS), anchor: leaveCircle(start, d, ANCHOR_RADIUS) }
}

export const groundTruthScript = (task: Task): Script => ({ order: task.steps.map((_, i) => i) })

export const phaseFrames = (framesPerStep: number): { reach: number; act: number; release: number } => {
  if (!Number.isInteger(framesPerStep) || framesPerStep < 6) throw new RangeError(`framesPerStep must be an integer ≥ 6, got ${framesPerStep}`)
  const reach = Math.round(0.3 * framesPerStep)
  const act = Math.round(0.5 * framesPerStep)
  return { reach, act, release: framesPerStep - reach - act }
}

export const episodeLength = (steps: number, options: TimelineOptions): number => 2 * options.idleFrames + steps * options.framesPerStep

/** All frame specs of an episode (cheap: poses and points, no pixels). */
export const timeline = (task: Task, script: Script, options: TimelineOptions): FrameSpec[] => {
  const { reach, act, release } = phaseFrames(options.framesPerStep)
  if (!Number.isInteger(options.idleFrames) || options.idleFrames < 1) throw new RangeError(`idleFrames must be an integer ≥ 1, got ${options.idleFrames}`)
  for (const i of script.order) if (!Number.isInteger(i) || i < 0 || i >= task.steps.length) throw new RangeError(`${task.name}: step index ${i} out of range`)
  const order = script.order
  const frames: FrameSpec[] = []
  const label = (step: number, phase: Phase, completed: number, progress: number): FrameLabel => ({
    step,
    phase,
    state: { completed, done: order.slice(0, completed).map((i) => i + 1), progress }
  })
  const lines = order.map((stepIndex, j) => {
    const before: SceneState = sceneAt(task, { order, completed: j })
    const grip = (progress: number) => gripPoint(task, before, stepIndex, progress)
    return { grip, ...armLine(grip(0), grip(1)) }
  })
  let hand = lines[0]?.entry ?? vec(HAND_ENTRY_RADIUS, 0)
  let anchor = lines[0]?.anchor ?? vec(2 * HAND_ENTRY_RADIUS, 0)
  for (let i = 0; i < options.idleFrames; i++) frames.push({ pose: { order, completed: 0 }, hand, anchor, label: label(0, "idle", 0, 0) })
  for (let j = 0; j < order.length; j++) {
    const { grip, entry } = lines[j]!
    anchor = lines[j]!.anchor
    const actPhase: Phase = task.family === "fold" ? "fold" : "carry"
    for (let i = 0; i < reach; i++) {
      hand = lerpVec(entry, grip(0), smoothstep((i + 1) / reach))
      frames.push({ pose: { order, completed: j }, hand, anchor, label: label(j + 1, "reach", j, 0) })
    }
    for (let i = 0; i < act; i++) {
      const progress = (i + 1) / (act + 1)
      hand = grip(progress)
      frames.push({ pose: { order, completed: j, active: progress }, hand, anchor, label: label(j + 1, actPhase, j, progress) })
    }
    const end = grip(1)
    for (let i = 0; i < release; i++) {
      hand = lerpVec(end, entry, smoothstep((i + 1) / release))
      frames.push({ pose: { order, completed: j + 1 }, hand, anchor, label: label(j + 1, "release", j + 1, 1) })
    }
  }
  for (let i = 0; i < options.idleFrames; i++) frames.push({ pose: { order, completed: order.length }, hand, anchor, label: label(order.length, "idle", order.length, 0) })
  if (script.freezeHand === true) {
    const frozen = frames[0]!
    return frames.map((f) => ({ ...f, hand: frozen.hand, anchor: frozen.anchor }))
  }
  return frames
}
