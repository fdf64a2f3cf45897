/**
 * The time structure of an episode: idle frames, then for each step a reach phase (the hand moves to the
 * grip point), an action phase (`fold` or `carry`: the hand moves the flap or block) and a release phase
 * (the hand withdraws), then idle frames again. Gives each frame its pose, hand position and label.
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
  readonly label: FrameLabel
}

/** Where the fingertip rests between tasks: the bottom-right corner, off the work area. */
export const HAND_REST: Vec = vec(0.76, 0.84)

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
  let hand = HAND_REST
  for (let i = 0; i < options.idleFrames; i++) frames.push({ pose: { order, completed: 0 }, hand, label: label(0, "idle", 0, 0) })
  for (let j = 0; j < order.length; j++) {
    const stepIndex = order[j]!
    const before: SceneState = sceneAt(task, { order, completed: j })
    const grip = (progress: number) => gripPoint(task, before, stepIndex, progress)
    const start = hand
    const actPhase: Phase = task.family === "fold" ? "fold" : "carry"
    for (let i = 0; i < reach; i++) {
      hand = lerpVec(start, grip(0), smoothstep((i + 1) / reach))
      frames.push({ pose: { order, completed: j }, hand, label: label(j + 1, "reach", j, 0) })
    }
    for (let i = 0; i < act; i++) {
      const progress = (i + 1) / (act + 1)
      hand = grip(progress)
      frames.push({ pose: { order, completed: j, active: progress }, hand, label: label(j + 1, actPhase, j, progress) })
    }
    const end = grip(1)
    const retreat = lerpVec(end, HAND_REST, 0.5)
    for (let i = 0; i < release; i++) {
      hand = lerpVec(end, retreat, smoothstep((i + 1) / release))
      frames.push({ pose: { order, completed: j + 1 }, hand, label: label(j + 1, "release", j + 1, 1) })
    }
  }
  const last = hand
  for (let i = 0; i < options.idleFrames; i++) {
    hand = lerpVec(last, HAND_REST, smoothstep((i + 1) / options.idleFrames))
    frames.push({ pose: { order, completed: order.length }, hand, label: label(order.length, "idle", order.length, 0) })
  }
  if (script.freezeHand === true) {
    const frozen = frames[0]!.hand
    return frames.map((f) => ({ ...f, hand: frozen }))
  }
  return frames
}
