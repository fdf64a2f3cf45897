/**
 * Batching: seeded shuffled batches from one clip source, and weighted mixtures of sources (the paper's
 * Craft + Open-X co-training). Batches are plain Float32Arrays with an explicit shape `[B, T, H, W, 3]`
 * in [0, 1] (model packages turn them into tensors), plus `[B, T, 7]` actions where clips have them.
 * Everything is a generator: nothing beyond the current batch (and the clip cache) is held in memory.
 */
import type { Clip, ClipRef, ClipSource } from "./Clips.ts"
import { ACTION_DIM } from "./Manifest.ts"
import { SeededRandom } from "./Random.ts"

export interface Batch {
  /** [B, T, H, W, 3] float32 in [0, 1] */
  readonly frames: Float32Array
  readonly shape: readonly [number, number, number, number, 3]
  /** [B, T, 7]; rows of clips without actions are zero (see `actionMask`); undefined when no clip has actions */
  readonly actions: Float32Array | undefined
  /** 1 where clip b has actions */
  readonly actionMask: Uint8Array | undefined
  readonly refs: ReadonlyArray<ClipRef>
  /** name of the source each clip came from */
  readonly sources: ReadonlyArray<string>
}

const assemble = (clips: ReadonlyArray<{ clip: Clip; source: ClipSource }>): Batch => {
  const first = clips[0]!.source
  const t = first.clipLength
  const h = first.height
  const w = first.width
  const clipSize = t * h * w * 3
  const frames = new Float32Array(clips.length * clipSize)
  const anyActions = clips.some((c) => c.clip.actions !== undefined)
  const actions = anyActions ? new Float32Array(clips.length * t * ACTION_DIM) : undefined
  const actionMask = anyActions ? new Uint8Array(clips.length) : undefined
  clips.forEach(({ clip }, b) => {
    frames.set(clip.frames, b * clipSize)
    if (clip.actions !== undefined) {
      actions!.set(clip.actions, b * t * ACTION_DIM)
      actionMask![b] = 1
    }
  })
  return {
    frames,
    shape: [clips.length, t, h, w, 3],
    actions,
    actionMask,
    refs: clips.map((c) => c.clip.ref),
    sources: clips.map((c) => c.source.name)
  }
}

export interface ShuffledBatchesOptions {
  readonly batchSize: number
  readonly seed: number
  /** passes over the clips (default 1); each pass has its own permutation */
  readonly epochs?: number
  /** drop a last, smaller batch (default false) */
  readonly dropLast?: boolean
  /** keep clip order (no shuffling), e.g. for evaluation */
  readonly shuffle?: boolean
}

/** Seeded shuffled batches over every clip of a source, epoch after epoch. */
export function* shuffledBatches(source: ClipSource, options: ShuffledBatchesOptions): Generator<Batch, void, undefined> {
  const { batchSize, seed } = options
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`)
  const epochs = options.epochs ?? 1
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = options.shuffle === false
      ? Int32Array.from({ length: source.count }, (_, i) => i)
      : SeededRandom.derive(seed, `epoch:${epoch}`).permutation(source.count)
    for (let i = 0; i < order.length; i += batchSize) {
      const end = Math.min(order.length, i + batchSize)
      if (end - i < batchSize && options.dropLast === true) break
      const clips = []
      for (let j = i; j < end; j++) clips.push({ clip: source.read(order[j]!), source })
      yield assemble(clips)
    }
  }
}

export interface MixtureComponent {
  readonly source: ClipSource
  /** relative weight: the expected fraction of clips drawn from this source is weight / Σ weights */
  readonly weight: number
}

export interface MixtureOptions {
  readonly batchSize: number
  readonly seed: number
  /** number of batches to yield (default: unbounded) */
  readonly batches?: number
}

/**
 * Weighted mixture: each clip of a batch picks a component with probability ∝ weight, then takes that
 * component's next clip in its own seeded shuffled order (reshuffled after each pass), so small sources
 * are revisited and large ones are streamed. Components must agree on clip length and frame size.
 */
export function* mixtureBatches(components: ReadonlyArray<MixtureComponent>, options: MixtureOptions): Generator<Batch, void, undefined> {
  if (components.length === 0) throw new RangeError("mixture: no components")
  const { batchSize, seed } = options
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`)
  const first = components[0]!.source
  for (const [i, c] of components.entries()) {
    if (!(c.weight >= 0) || !Number.isFinite(c.weight)) throw new RangeError(`mixture component ${i} (${c.source.name}): weight must be ≥ 0, got ${c.weight}`)
    if (c.weight > 0 && c.source.count === 0) throw new RangeError(`mixture component ${i} (${c.source.name}) has no clips (episodes shorter than the clip span?)`)
    if (c.source.clipLength !== first.clipLength || c.source.height !== first.height || c.source.width !== first.width) {
      throw new RangeError(
        `mixture component ${i} (${c.source.name}) has clips [T=${c.source.clipLength}, ${c.source.height}×${c.source.width}] ` +
          `but component 0 (${first.name}) has [T=${first.clipLength}, ${first.height}×${first.width}]: generate or import both at one resolution`
      )
    }
  }
  const total = components.reduce((a, c) => a + c.weight, 0)
  if (!(total > 0)) throw new RangeError("mixture: weights sum to 0")
  const cumulative = components.map((_, i) => components.slice(0, i + 1).reduce((a, c) => a + c.weight, 0) / total)
  const pick = SeededRandom.derive(seed, "mixture:pick")
  const cursors = components.map((c, i) => ({ pass: 0, position: 0, order: SeededRandom.derive(seed, `mixture:${i}:pass:0`).permutation(c.source.count) }))
  const nextIndex = (i: number): number => {
    const cursor = cursors[i]!
    if (cursor.position >= cursor.order.length) {
      cursor.pass++
      cursor.position = 0
      cursor.order = SeededRandom.derive(seed, `mixture:${i}:pass:${cursor.pass}`).permutation(components[i]!.source.count)
    }
    return cursor.order[cursor.position++]!
  }
  for (let b = 0; options.batches === undefined || b < options.batches; b++) {
    const clips = []
    for (let k = 0; k < batchSize; k++) {
      const u = pick.next()
      let i = cumulative.findIndex((c) => u < c)
      if (i < 0) i = components.length - 1
      while (components[i]!.weight === 0) i = (i + components.length - 1) % components.length
      const source = components[i]!.source
      clips.push({ clip: source.read(nextIndex(i)), source })
    }
    yield assemble(clips)
  }
}
