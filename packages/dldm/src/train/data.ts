/** Training clips for the dLDM stages, through @vw2/data's dataset API (shared `vw2-episodes/1` layout). */
import * as tf from "@tensorflow/tfjs"
import { Dataset, DatasetClips, mixtureBatches, shuffledBatches, type Batch } from "@vw2/data"
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
export function endlessBatches(clips: DatasetClips, batchSize: number, seed: number): Generator<Batch> {
  return shuffledBatches(clips, { batchSize: Math.min(batchSize, clips.count), seed, epochs: Number.MAX_SAFE_INTEGER, dropLast: true })
}

/** Endless weighted mixture batches (Craft + Open-X co-training). */
export function mixedBatches(
  parts: ReadonlyArray<{ clips: DatasetClips; weight: number }>,
  batchSize: number,
  seed: number
): Generator<Batch> {
  return mixtureBatches(
    parts.map((p) => ({ source: p.clips, weight: p.weight })),
    { batchSize, seed }
  )
}

/** A batch's frames as a [B, T, H, W, 3] tensor in [0, 1]. */
export function batchTensor(batch: Batch): tf.Tensor5D {
  return tf.tensor5d(batch.frames, [...batch.shape])
}
