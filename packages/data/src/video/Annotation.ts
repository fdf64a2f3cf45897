/**
 * The JSON annotation beside each video of a video folder (`clip.mp4` + `clip.json`): task, instruction and
 * step boundaries in seconds — what a Video-CraftBench-style dataset provides. MiniCraft exports add the exact
 * per-frame labels and the appearance, so an export → import round trip loses nothing.
 */
import { Schema } from "effect"
import type { FrameLabel } from "../dataset/Manifest.ts"
import { FrameLabel as FrameLabelSchema } from "../dataset/Manifest.ts"

export const VIDEO_ANNOTATION_FORMAT = "vw2-video-annotation/1"

export const StepSegment = Schema.Struct({
  /** 1-based step number within the task */
  step: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  /** seconds from the start of the video; the step is under way in [start, end) */
  start: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)),
  end: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)),
  description: Schema.optional(Schema.String)
})
export type StepSegment = typeof StepSegment.Type

export const VideoAnnotation = Schema.Struct({
  format: Schema.optional(Schema.Literal(VIDEO_ANNOTATION_FORMAT)),
  task: Schema.String,
  instruction: Schema.String,
  /** "train" / "test"; the importer's default split applies when absent */
  split: Schema.optional(Schema.String),
  domain: Schema.optional(Schema.String),
  steps: Schema.Array(StepSegment),
  /** exact labels, one per frame at `fps` (MiniCraft exports) */
  fps: Schema.optional(Schema.Finite.check(Schema.isGreaterThan(0))),
  frames: Schema.optional(Schema.Array(FrameLabelSchema)),
  appearance: Schema.optional(Schema.Record(Schema.String, Schema.Unknown))
})
export type VideoAnnotation = typeof VideoAnnotation.Type

export const decodeVideoAnnotation = (value: unknown, file: string): VideoAnnotation => {
  let annotation: VideoAnnotation
  try {
    annotation = Schema.decodeUnknownSync(VideoAnnotation)(value)
  } catch (e) {
    throw new Error(`${file}: not a video annotation (${VIDEO_ANNOTATION_FORMAT}): ${(e as Error).message}`)
  }
  annotation.steps.forEach((s, i) => {
    if (s.end <= s.start) throw new Error(`${file}: steps[${i}]: end ${s.end} must be after start ${s.start}`)
    const previous = annotation.steps[i - 1]
    if (previous !== undefined && s.start < previous.end) throw new Error(`${file}: steps[${i}] starts at ${s.start}, before steps[${i - 1}] ends (${previous.end})`)
  })
  return annotation
}

/** Step segments from per-frame labels: step k spans the frames labelled with step k outside idle phases. */
export const segmentsFromLabels = (labels: ReadonlyArray<FrameLabel>, fps: number): StepSegment[] => {
  const spans = new Map<number, { first: number; last: number }>()
  labels.forEach((label, i) => {
    if (label.step < 1 || label.phase === "idle") return
    const span = spans.get(label.step)
    if (span === undefined) spans.set(label.step, { first: i, last: i })
    else span.last = i
  })
  return [...spans.entries()].map(([step, { first, last }]) => ({ step, start: first / fps, end: (last + 1) / fps }))
}

/**
 * The label of frame `index` from step segments (for videos without exact labels): a frame at time t is in
 * the step whose segment holds t (phase "act"), otherwise idle; `completed` counts the segments ended by t.
 */
export const labelAt = (segments: ReadonlyArray<StepSegment>, index: number, fps: number): FrameLabel => {
  const t = (index + 0.5) / fps // the frame's centre time
  const done = segments.filter((s) => s.end <= t)
  const active = segments.find((s) => s.start <= t && t < s.end)
  const completed = done.length
  const state = { completed, done: done.map((s) => s.step) }
  return active === undefined
    ? { step: done.at(-1)?.step ?? 0, phase: "idle", state: { ...state, progress: 0 } }
    : { step: active.step, phase: "act", state: { ...state, progress: (t - active.start) / (active.end - active.start) } }
}

export const labelsFromSegments = (segments: ReadonlyArray<StepSegment>, frameCount: number, fps: number): FrameLabel[] =>
  Array.from({ length: frameCount }, (_, i) => labelAt(segments, i, fps))
