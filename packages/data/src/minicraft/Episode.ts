/**
 * One MiniCraft episode as a stream of frames with labels. Frames are produced one at a time (a generator),
 * so writers never hold a whole episode. Counterfactual variants for validating the judge (steps skipped or
 * swapped, hand frozen, appearance switched mid-video) come from the same code path.
 */
import type { Appearance } from "./Appearance.ts"
import type { RenderOptions } from "./Renderer.ts"
import { Renderer } from "./Renderer.ts"
import { sceneAt } from "./Scene.ts"
import type { Task } from "./Tasks.ts"
import type { FrameLabel, Script, TimelineOptions } from "./Timeline.ts"
import { groundTruthScript, timeline } from "./Timeline.ts"

export interface EpisodeFrame {
  readonly index: number
  /** uint8 [H, W, 3]; a fresh array per frame */
  readonly pixels: Uint8Array
  readonly label: FrameLabel
}

export interface EpisodeOptions extends TimelineOptions, RenderOptions {}

export interface EpisodeVariant {
  readonly script?: Script
  /** from frame `atFrame` on, render with another appearance (a counterfactual for the judge) */
  readonly switchAppearance?: { readonly atFrame: number; readonly appearance: Appearance }
}

export function* renderEpisode(task: Task, appearance: Appearance, options: EpisodeOptions, variant: EpisodeVariant = {}): Generator<EpisodeFrame> {
  const frames = timeline(task, variant.script ?? groundTruthScript(task), options)
  const renderer = new Renderer(task, appearance, options)
  const switched = variant.switchAppearance === undefined ? undefined : new Renderer(task, variant.switchAppearance.appearance, options)
  for (let index = 0; index < frames.length; index++) {
    const spec = frames[index]!
    const active = switched !== undefined && index >= variant.switchAppearance!.atFrame ? switched : renderer
    yield { index, pixels: active.render(sceneAt(task, spec.pose), { tip: spec.hand, anchor: spec.anchor }, index), label: spec.label }
  }
}

/** Collects a whole episode into one `[T, H, W, 3]` array (tests and small tools only). */
export const renderEpisodeArray = (task: Task, appearance: Appearance, options: EpisodeOptions, variant: EpisodeVariant = {}): { frames: Uint8Array; labels: FrameLabel[]; length: number } => {
  const chunks: Uint8Array[] = []
  const labels: FrameLabel[] = []
  for (const frame of renderEpisode(task, appearance, options, variant)) {
    chunks.push(frame.pixels)
    labels.push(frame.label)
  }
  const size = options.width * options.height * 3
  const frames = new Uint8Array(chunks.length * size)
  chunks.forEach((c, i) => frames.set(c, i * size))
  return { frames, labels, length: chunks.length }
}
