/**
 * The motion budget of a MiniCraft episode: per step, how many pixels the task object changes (blocks moved,
 * paper folded) against how many the hand and arm change. A latent action model spends its few codes per
 * transition on whatever changes most (docs/paper.md, "dLDM": codes carry "task-relevant dynamics"), so in a
 * learnable dataset the object's change must dominate the hand's.
 *
 * Measured on noise-free renders: a pixel counts as changed when its largest channel moves by more than
 * `tolerance` uint8 steps (the exact judge's pixel tolerance by default).
 */
import type { Appearance } from "./Appearance.ts"
import type { EpisodeOptions } from "./Episode.ts"
import { Renderer } from "./Renderer.ts"
import { sceneAt } from "./Scene.ts"
import type { Task } from "./Tasks.ts"
import { groundTruthScript, timeline } from "./Timeline.ts"

export interface StepBudget {
  /** 1-based step */
  readonly step: number
  /** pixels that differ between the hand-free renders of the states before and after the step */
  readonly object: number
  /** the hand's footprint (pixels where a frame differs from the same scene without the hand): largest and mean over the step's frames */
  readonly handMax: number
  readonly handMean: number
  /** action frames: mean per-frame change of the hand-free scene (the object moving) */
  readonly objectPerFrame: number
  /** action frames: mean per-frame change of the rendered video at pixels the hand covers in either frame */
  readonly handPerFrame: number
}

const changed = (a: Uint8Array, b: Uint8Array, tolerance: number, p: number): boolean => {
  const i = p * 3
  return Math.abs(a[i]! - b[i]!) > tolerance || Math.abs(a[i + 1]! - b[i + 1]!) > tolerance || Math.abs(a[i + 2]! - b[i + 2]!) > tolerance
}

const countChanged = (a: Uint8Array, b: Uint8Array, tolerance: number): number => {
  let n = 0
  for (let p = 0; p < a.length / 3; p++) if (changed(a, b, tolerance, p)) n++
  return n
}

/** The motion budget of every step of `task`'s ground-truth episode under `appearance`. */
export const motionBudget = (task: Task, appearance: Appearance, options: EpisodeOptions, tolerance = 12): StepBudget[] => {
  const specs = timeline(task, groundTruthScript(task), options)
  const renderer = new Renderer(task, appearance, options)
  const order = task.steps.map((_, i) => i)
  const bare = specs.map((s) => renderer.render(sceneAt(task, s.pose), undefined, undefined))
  const full = specs.map((s) => renderer.render(sceneAt(task, s.pose), { tip: s.hand, anchor: s.anchor }, undefined))
  const pixels = options.width * options.height
  const handMask = full.map((f, t) => Uint8Array.from({ length: pixels }, (_, p) => (changed(f, bare[t]!, tolerance, p) ? 1 : 0)))
  const state = (k: number) => renderer.render(sceneAt(task, { order, completed: k }), undefined, undefined)
  return task.steps.map((_, j) => {
    const frames = specs.flatMap((s, t) => (s.label.step === j + 1 && s.label.phase !== "idle" ? [t] : []))
    const acting = frames.filter((t) => specs[t]!.label.phase === "fold" || specs[t]!.label.phase === "carry")
    // the frame after the last action frame is where the object settles: count that change too
    const moves = [...acting, acting.at(-1)! + 1].filter((t) => t > 0 && t < specs.length)
    const footprint = frames.map((t) => handMask[t]!.reduce((a, v) => a + v, 0))
    let objectMoved = 0
    let handMoved = 0
    for (const t of moves) {
      objectMoved += countChanged(bare[t]!, bare[t - 1]!, tolerance)
      for (let p = 0; p < pixels; p++) if ((handMask[t]![p]! | handMask[t - 1]![p]!) === 1 && changed(full[t]!, full[t - 1]!, tolerance, p)) handMoved++
    }
    return {
      step: j + 1,
      object: countChanged(state(j), state(j + 1), tolerance),
      handMax: Math.max(...footprint),
      handMean: footprint.reduce((a, v) => a + v, 0) / footprint.length,
      objectPerFrame: objectMoved / moves.length,
      handPerFrame: handMoved / moves.length
    }
  })
}
