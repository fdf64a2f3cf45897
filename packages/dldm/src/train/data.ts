/** Training clips for the dLDM stages, through @vw2/data's dataset API (shared `vw2-episodes/1` layout). */
import * as tf from "@tensorflow/tfjs"
import { Dataset, DatasetClips, mixtureBatches, shuffledBatches, type Batch, type Clip, type ClipRef, type ClipSource } from "@vw2/data"
import { PositionedIterator, type Resumable } from "@vw2/nn"
import type { Dldm } from "../Dldm.ts"
import type { DldmConfig } from "../DldmConfig.ts"

export interface ClipOptions {
  /** episodes of this split (default "train") */
  readonly split: string
  /** frames between clip starts (default: 1 + tc, a dense sampling of overlapping clips) */
  readonly clipStride?: number | undefined
}

/** Clips of T = model.frames frames from a dataset; fails naming the dataset when sizes disagree with the model. */
export function openClips(dir: string, model: DldmConfig, o: ClipOptions, name?: string): DatasetClips {
  const dataset = Dataset.open(dir)
  if (dataset.height !== model.height || dataset.width !== model.width) {
    throw new Error(
      `${dir}: frames are ${dataset.height}×${dataset.width} but the dLDM expects ${model.height}×${model.width} (model.height/width)`
    )
  }
  const clips = new DatasetClips(
    dataset,
    { length: model.frames, stride: o.clipStride ?? 1 + model.temporalCompression },
    { filter: { split: o.split }, ...(name !== undefined ? { name } : {}) }
  )
  if (clips.count === 0) {
    throw new Error(`${dir}: no clip of ${model.frames} frames in split "${o.split}" (episodes too short or split empty)`)
  }
  return clips
}

/** Endless seeded shuffled batches (full batches only). */
export function endlessBatches(clips: ClipSource, batchSize: number, seed: number): Generator<Batch> {
  return shuffledBatches(clips, { batchSize: Math.min(batchSize, clips.count), seed, epochs: Number.MAX_SAFE_INTEGER, dropLast: true })
}

/** Endless weighted mixture batches (Craft + Open-X co-training). */
export function mixedBatches(
  parts: ReadonlyArray<{ clips: ClipSource; weight: number }>,
  batchSize: number,
  seed: number
): Generator<Batch> {
  return mixtureBatches(
    parts.map((p) => ({ source: p.clips, weight: p.weight })),
    { batchSize, seed }
  )
}

const NO_FRAMES = new Float32Array(0)

/** A clip source that reads nothing while `skipping`: the batches a resumed run fast-forwards over keep their
 * clip choices (the seeded order) without their frames being read or a frame buffer allocated. */
class SkippableClips implements ClipSource {
  skipping = false
  readonly inner: ClipSource
  constructor(inner: ClipSource) {
    this.inner = inner
  }
  get name(): string {
    return this.inner.name
  }
  get height(): number {
    return this.inner.height
  }
  get width(): number {
    return this.inner.width
  }
  get clipLength(): number {
    // 0 while skipping: a skipped batch is assembled from zero-length clips (no frame buffer to allocate)
    return this.skipping ? 0 : this.inner.clipLength
  }
  get count(): number {
    return this.inner.count
  }
  ref(index: number): ClipRef {
    return this.inner.ref(index)
  }
  read(index: number): Clip {
    return this.skipping ? { ref: this.inner.ref(index), frames: NO_FRAMES, actions: undefined, byteLength: 0 } : this.inner.read(index)
  }
}

/**
 * Seeded batches as a resumable iterator for the training harness: a checkpoint keeps the number of batches
 * taken; a resumed run rebuilds the generator over the same sources and advances it that far without reading
 * frames, so it draws the batches the uninterrupted run would have.
 */
export function resumableBatches(sources: ReadonlyArray<ClipSource>, make: (sources: ReadonlyArray<ClipSource>) => Generator<Batch>): PositionedIterator<Batch> {
  return new PositionedIterator((start) => {
    const wrapped = sources.map((s) => new SkippableClips(s))
    const batches = make(wrapped)
    for (const w of wrapped) w.skipping = true
    for (let i = 0; i < start; i++) batches.next()
    for (const w of wrapped) w.skipping = false
    return batches
  })
}

/** A batch's frames as a [B, T, H, W, 3] tensor in [0, 1]. */
export function batchTensor(batch: Batch): tf.Tensor5D {
  return tf.tensor5d(batch.frames, [...batch.shape])
}

/** The dLDM's decoder-noise counter (its training input noise is seeded per call) as resumable harness state. */
export const resumableNoise = (dldm: Dldm): Resumable => ({
  save: () => dldm.noiseCalls,
  restore: (state) => {
    if (typeof state !== "number" || !Number.isInteger(state) || state < 0) throw new Error(`decoder noise counter: bad saved state ${JSON.stringify(state)}`)
    dldm.noiseCalls = state
  }
})
