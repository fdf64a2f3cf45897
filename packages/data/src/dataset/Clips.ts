/**
 * Clip sampling: a clip is `length` frames taken every `frameStep` frames from one episode, starting at
 * multiples of `stride`. `ClipIndex` enumerates every clip of a set of episodes without materialising them
 * (cumulative counts + binary search), `DatasetClips` reads clip i as Float32 RGB in [0, 1].
 */
import { LruCache } from "./ClipCache.ts"
import { Dataset, type EpisodeFilter, type EpisodeRef } from "./Dataset.ts"

export interface ClipSpec {
  /** frames per clip (T) */
  readonly length: number
  /** frames between the starts of consecutive clips of an episode (default: the clip's span, no overlap) */
  readonly stride?: number
  /** take every k-th frame (default 1); exclusive with `fps` */
  readonly frameStep?: number
  /** target frame rate; must divide the dataset's fps (frameStep = dataset fps / fps) */
  readonly fps?: number
}

export interface ClipRef {
  readonly episodeId: string
  readonly start: number
  readonly frameStep: number
  readonly length: number
}

/** The frame indices a clip covers. */
export const clipFrameIndices = (clip: ClipRef): number[] => Array.from({ length: clip.length }, (_, i) => clip.start + i * clip.frameStep)

export interface Clip {
  readonly ref: ClipRef
  /** [T, H, W, 3] float32 in [0, 1], C order */
  readonly frames: Float32Array
  /** [T, 7] rel_actions at the clip's frames, when the episode has actions */
  readonly actions: Float32Array | undefined
  readonly byteLength: number
}

/** Anything batches can be drawn from: a dataset's clips, or a mixture component. */
export interface ClipSource {
  readonly name: string
  readonly height: number
  readonly width: number
  readonly clipLength: number
  readonly count: number
  ref(index: number): ClipRef
  read(index: number): Clip
}

/** Resolves `frameStep` from a spec and the dataset's fps, with a clear error on a bad combination. */
export const resolveFrameStep = (spec: ClipSpec, datasetFps: number): number => {
  if (spec.fps !== undefined && spec.frameStep !== undefined) throw new RangeError("clip spec: give frameStep or fps, not both")
  if (spec.fps !== undefined) {
    const step = datasetFps / spec.fps
    if (!(spec.fps > 0) || Math.abs(step - Math.round(step)) > 1e-6 || Math.round(step) < 1) {
      throw new RangeError(`clip spec: fps ${spec.fps} must divide the dataset's fps ${datasetFps} (frame step = dataset fps / fps must be a positive integer)`)
    }
    return Math.round(step)
  }
  const step = spec.frameStep ?? 1
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`clip spec: frameStep must be a positive integer, got ${step}`)
  return step
}

export class ClipIndex {
  readonly episodes: ReadonlyArray<EpisodeRef>
  readonly length: number
  readonly stride: number
  readonly frameStep: number
  /** cumulative clip counts: clips of episode e are [offsets[e], offsets[e+1]) */
  private readonly offsets: Float64Array

  constructor(episodes: ReadonlyArray<EpisodeRef>, spec: ClipSpec, datasetFps: number) {
    if (!Number.isInteger(spec.length) || spec.length < 1) throw new RangeError(`clip spec: length must be a positive integer, got ${spec.length}`)
    this.episodes = episodes
    this.length = spec.length
    this.frameStep = resolveFrameStep(spec, datasetFps)
    const span = (this.length - 1) * this.frameStep + 1
    this.stride = spec.stride ?? span
    if (!Number.isInteger(this.stride) || this.stride < 1) throw new RangeError(`clip spec: stride must be a positive integer, got ${this.stride}`)
    this.offsets = new Float64Array(episodes.length + 1)
    for (let e = 0; e < episodes.length; e++) {
      const n = episodes[e]!.length >= span ? Math.floor((episodes[e]!.length - span) / this.stride) + 1 : 0
      this.offsets[e + 1] = this.offsets[e]! + n
    }
  }

  get count(): number {
    return this.offsets[this.episodes.length]!
  }

  at(index: number): ClipRef {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) throw new RangeError(`clip index ${index} out of range [0, ${this.count})`)
    let lo = 0
    let hi = this.episodes.length - 1
    while (lo < hi) {
      // first episode whose end offset is beyond index
      const mid = (lo + hi) >> 1
      if (this.offsets[mid + 1]! <= index) lo = mid + 1
      else hi = mid
    }
    const k = index - this.offsets[lo]!
    return { episodeId: this.episodes[lo]!.id, start: k * this.stride, frameStep: this.frameStep, length: this.length }
  }
}

export interface DatasetClipsOptions {
  readonly filter?: EpisodeFilter
  /** byte budget of the decoded-clip LRU cache (default 64 MiB; 0 disables caching) */
  readonly cacheBytes?: number
  /** label used in batches to tell mixture components apart (default: the dataset's name) */
  readonly name?: string
}

/** The clips of (a filtered part of) one dataset, read on demand through an LRU cache. */
export class DatasetClips implements ClipSource {
  readonly dataset: Dataset
  readonly index: ClipIndex
  readonly cache: LruCache<Clip>
  readonly name: string

  constructor(dataset: Dataset, spec: ClipSpec, options: DatasetClipsOptions = {}) {
    this.dataset = dataset
    this.index = new ClipIndex(dataset.episodes(options.filter), spec, dataset.fps)
    this.cache = new LruCache<Clip>(options.cacheBytes ?? 64 * 1024 * 1024)
    this.name = options.name ?? dataset.manifest.name
  }

  get height(): number {
    return this.dataset.height
  }

  get width(): number {
    return this.dataset.width
  }

  get clipLength(): number {
    return this.index.length
  }

  get count(): number {
    return this.index.count
  }

  ref(index: number): ClipRef {
    return this.index.at(index)
  }

  read(index: number): Clip {
    const ref = this.index.at(index)
    const key = `${ref.episodeId}:${ref.start}:${ref.frameStep}:${ref.length}`
    return this.cache.getOrCompute(key, () => this.decode(ref))
  }

  private decode(ref: ClipRef): Clip {
    const rows = clipFrameIndices(ref)
    const bytes = this.dataset.readFrames(ref.episodeId, rows)
    const frames = new Float32Array(bytes.length)
    for (let i = 0; i < bytes.length; i++) frames[i] = bytes[i]! / 255
    const episode = this.dataset.episode(ref.episodeId)
    const actions = episode.hasActions ? this.dataset.readActions(ref.episodeId, rows) : undefined
    return { ref, frames, actions, byteLength: frames.byteLength + (actions?.byteLength ?? 0) }
  }
}

