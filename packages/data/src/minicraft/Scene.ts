/**
 * The physical state of a task at one instant, independent of appearance: the folded sheet as a stack of
 * layers, or where each block is. `order` lists the task's step indices in the order they are performed
 * (the ground truth is 0, 1, 2, ...; perturbed videos skip or swap some), `completed` how many of them are
 * done and `active` the progress of the next one.
 */
import type { Affine, Polygon, Vec } from "./Geometry.ts"
import { apply, clipHalfPlane, compose, foldMap, identity, lineThrough, signedDistance, transformPolygon, lerpVec, smoothstep, vec } from "./Geometry.ts"
import type { BlockStep, FoldStep, Task } from "./Tasks.ts"

/** One piece of the sheet: where it lies (world), how sheet coordinates map onto it, which face is up. */
export interface SheetLayer {
  readonly polygon: Polygon
  readonly sheetToWorld: Affine
  readonly frontUp: boolean
  /** brightness factor (a flap in mid-air is shaded) */
  readonly shade: number
}

export interface PlacedBlock {
  readonly step: number
  readonly center: Vec
  /** true while carried by the hand */
  readonly lifted: boolean
}

export type SceneState =
  | { readonly family: "fold"; readonly layers: ReadonlyArray<SheetLayer> }
  | { readonly family: "blocks"; readonly blocks: ReadonlyArray<PlacedBlock> }

export interface Pose {
  readonly order: ReadonlyArray<number>
  readonly completed: number
  /** progress in (0, 1) of step `order[completed]`, when one is under way */
  readonly active?: number
}

const foldLine = (step: FoldStep) => lineThrough(step.from, step.to, step.flap)

/** Turns the flap of `step` by `angle` (π = folded flat). Layers stay bottom-to-top ordered. */
const applyFold = (layers: ReadonlyArray<SheetLayer>, step: FoldStep, angle: number): SheetLayer[] => {
  const line = foldLine(step)
  const map = foldMap(line, angle)
  const turnedOver = Math.cos(angle) < 0
  const shade = 1 - 0.3 * Math.sin(angle)
  const kept: SheetLayer[] = []
  const flaps: SheetLayer[] = []
  for (const layer of layers) {
    const stay = clipHalfPlane(layer.polygon, line, -1)
    if (stay.length > 0) kept.push({ ...layer, polygon: stay })
    const flap = clipHalfPlane(layer.polygon, line, 1)
    if (flap.length > 0) {
      flaps.push({
        polygon: transformPolygon(map, flap),
        sheetToWorld: compose(map, layer.sheetToWorld),
        frontUp: turnedOver ? !layer.frontUp : layer.frontUp,
        shade: layer.shade * shade
      })
    }
  }
  // once past vertical the flap's stack is upside down: its top layer ends at the bottom of the flap
  return [...kept, ...(turnedOver ? flaps.reverse() : flaps)]
}

const foldAngle = (progress: number): number => Math.PI * smoothstep(progress)

export const sceneAt = (task: Task, pose: Pose): SceneState => {
  if (task.family === "fold") {
    let layers: SheetLayer[] = [{ polygon: task.sheet, sheetToWorld: identity, frontUp: true, shade: 1 }]
    for (let i = 0; i < pose.completed; i++) layers = applyFold(layers, task.steps[pose.order[i]!]!, Math.PI)
    if (pose.active !== undefined) layers = applyFold(layers, task.steps[pose.order[pose.completed]!]!, foldAngle(pose.active))
    return { family: "fold", layers }
  }
  const done = new Set(pose.order.slice(0, pose.completed))
  const activeStep = pose.active === undefined ? undefined : pose.order[pose.completed]
  const blocks = task.steps.map((step, i): PlacedBlock => {
    if (done.has(i)) return { step: i, center: step.target, lifted: false }
    if (i === activeStep) return { step: i, center: carryPath(step, pose.active!), lifted: true }
    return { step: i, center: step.slot, lifted: false }
  })
  return { family: "blocks", blocks }
}

/**
 * The carried block's centre: lifted off the slot, over to the target, set down. The path is nearly straight
 * so that the arm, which comes in along it, slides along itself instead of sweeping across the view.
 */
const carryPath = (step: BlockStep, progress: number): Vec => {
  const t = smoothstep(progress)
  const straight = lerpVec(step.slot, step.target, t)
  return vec(straight.x, straight.y - 0.03 * Math.sin(Math.PI * t))
}

/**
 * Where the fingertip is while step `stepIndex` is under way at `progress` in [0, 1], given the state before
 * it: for a fold, the flap's point farthest from the fold line (the middle of the
 * farthest edge when an edge is parallel to the line); for a block, the middle of its right edge
 * (the arm comes in from the tray's side, the right, so the hand pinches the block without hiding it).
 */
export const gripPoint = (task: Task, before: SceneState, stepIndex: number, progress: number): Vec => {
  if (task.family === "blocks") {
    const step = task.steps[stepIndex]!
    const centre = carryPath(step, progress)
    return vec(centre.x + step.width / 2 - 0.03, centre.y)
  }
  if (before.family !== "fold") throw new Error("gripPoint: scene family does not match the task")
  const step = task.steps[stepIndex]!
  const line = foldLine(step)
  // the farthest point of the flap; when a whole edge is farthest (a sheet folded in half), its middle
  let bestDistance = -Infinity
  let far: Vec[] = []
  for (const layer of before.layers) {
    for (const p of clipHalfPlane(layer.polygon, line, 1)) {
      const d = signedDistance(line, p)
      if (d > bestDistance + 1e-6) {
        bestDistance = d
        far = [p]
      } else if (d > bestDistance - 1e-6) far.push(p)
    }
  }
  const best = far.length === 0 ? step.flap : vec(far.reduce((a, p) => a + p.x, 0) / far.length, far.reduce((a, p) => a + p.y, 0) / far.length)
  return apply(foldMap(line, foldAngle(progress)), best)
}
