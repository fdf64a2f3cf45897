/**
 * Writes a dataset in the shared `vw2-episodes/1` layout, one frame at a time (generators and importers
 * never hold an episode, let alone a dataset, in memory). `dataset.json` is written last by `finish`, so a
 * directory without it is an unfinished dataset and readers refuse it.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { NpyRowWriter } from "../formats/npy.ts"
import {
  ACTION_DIM,
  DATASET_FORMAT,
  type DatasetManifest,
  episodeDir,
  type EpisodeIndexEntry,
  type EpisodeMeta,
  type FrameLabel,
  isValidEpisodeId,
  manifestPath,
  ROBOT_OBS_DIM,
  SCENE_OBS_DIM
} from "./Manifest.ts"

export interface DatasetWriterOptions {
  readonly name: string
  readonly source: string
  readonly height: number
  readonly width: number
  readonly fps: number
}

export interface EpisodeInfo {
  readonly id: string
  readonly split: string
  readonly task: string
  readonly instruction: string
  readonly domain: string
  readonly appearance?: Readonly<Record<string, unknown>>
  /** robot episodes carry actions (and, unless `observations` is false, robot_obs and scene_obs) for every frame */
  readonly robot?: boolean
  /** robot episodes only: write robot_obs.npy / scene_obs.npy (default true; false for sources without
   * CALVIN's proprioceptive/scene state, such as Open-X) */
  readonly observations?: boolean
}

/** One frame's robot data (CALVIN conventions: 7-d rel_actions, 15-d robot_obs, 24-d scene_obs). */
export interface RobotStep {
  readonly action: ArrayLike<number>
  readonly robotObs?: ArrayLike<number>
  readonly sceneObs?: ArrayLike<number>
}

/** Running sums for mean/std without keeping the values. */
class Moments {
  readonly count: number[]
  readonly sum: number[]
  readonly sumSq: number[]
  constructor(dim: number) {
    this.count = new Array<number>(dim).fill(0)
    this.sum = new Array<number>(dim).fill(0)
    this.sumSq = new Array<number>(dim).fill(0)
  }
  add(index: number, value: number): void {
    this.count[index]! += 1
    this.sum[index]! += value
    this.sumSq[index]! += value * value
  }
  mean(): number[] {
    return this.sum.map((s, i) => (this.count[i]! > 0 ? s / this.count[i]! : 0))
  }
  std(): number[] {
    const mean = this.mean()
    return this.sumSq.map((s, i) => (this.count[i]! > 0 ? Math.sqrt(Math.max(0, s / this.count[i]! - mean[i]! ** 2)) : 0))
  }
}

const round6 = (values: number[]): number[] => values.map((v) => Math.round(v * 1e6) / 1e6)

export class EpisodeWriter {
  readonly info: EpisodeInfo
  private readonly owner: DatasetWriter
  private readonly dir: string
  private readonly frames: NpyRowWriter<"uint8">
  private readonly actions: NpyRowWriter<"float32"> | undefined
  private readonly robotObs: NpyRowWriter<"float32"> | undefined
  private readonly sceneObs: NpyRowWriter<"float32"> | undefined
  private readonly labels: FrameLabel[] = []
  private closed = false

  constructor(owner: DatasetWriter, dir: string, info: EpisodeInfo, height: number, width: number) {
    this.owner = owner
    this.dir = dir
    this.info = info
    this.frames = new NpyRowWriter(path.join(dir, "frames.npy"), "uint8", [height, width, 3])
    if (info.robot === true) {
      this.actions = new NpyRowWriter(path.join(dir, "actions.npy"), "float32", [ACTION_DIM])
      if (info.observations !== false) {
        this.robotObs = new NpyRowWriter(path.join(dir, "robot_obs.npy"), "float32", [ROBOT_OBS_DIM])
        this.sceneObs = new NpyRowWriter(path.join(dir, "scene_obs.npy"), "float32", [SCENE_OBS_DIM])
      }
    }
  }

  get length(): number {
    return this.labels.length
  }

  /** Appends one RGB frame (uint8, H·W·3, row-major) with its label (and robot data for robot episodes). */
  appendFrame(rgb: Uint8Array, label: FrameLabel, robot?: RobotStep): void {
    if (this.closed) throw new Error(`episode ${this.info.id}: appendFrame after close`)
    const expected = this.owner.options.height * this.owner.options.width * 3
    if (rgb.length !== expected) {
      throw new RangeError(`episode ${this.info.id}: frame has ${rgb.length} bytes, expected ${expected} (H×W×3 = ${this.owner.options.height}×${this.owner.options.width}×3)`)
    }
    if ((robot !== undefined) !== (this.info.robot === true)) {
      throw new Error(`episode ${this.info.id}: robot data must be given for every frame of a robot episode and never otherwise`)
    }
    this.frames.append(rgb)
    this.owner.recordPixels(rgb)
    if (robot !== undefined) {
      const checkDim = (name: string, values: ArrayLike<number> | undefined, dim: number): Float32Array => {
        if (values === undefined) throw new Error(`episode ${this.info.id}: ${name} missing (the episode was begun with observations)`)
        if (values.length !== dim) throw new RangeError(`episode ${this.info.id}: ${name} has ${values.length} values, expected ${dim}`)
        return Float32Array.from(values)
      }
      const action = checkDim("action", robot.action, ACTION_DIM)
      this.actions!.append(action)
      if (this.robotObs !== undefined && this.sceneObs !== undefined) {
        this.robotObs.append(checkDim("robot_obs", robot.robotObs, ROBOT_OBS_DIM))
        this.sceneObs.append(checkDim("scene_obs", robot.sceneObs, SCENE_OBS_DIM))
      }
      this.owner.recordAction(action)
    }
    this.labels.push(label)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.frames.close()
    this.actions?.close()
    this.robotObs?.close()
    this.sceneObs?.close()
    const meta: EpisodeMeta = {
      id: this.info.id,
      split: this.info.split,
      task: this.info.task,
      instruction: this.info.instruction,
      domain: this.info.domain,
      appearance: { ...(this.info.appearance ?? {}) },
      frames: this.labels
    }
    fs.writeFileSync(path.join(this.dir, "meta.json"), JSON.stringify(meta))
    this.owner.episodeClosed(this.info, this.labels.length)
  }
}

export class DatasetWriter {
  readonly dir: string
  readonly options: DatasetWriterOptions
  private readonly splits = new Map<string, string[]>()
  private readonly tasks = new Set<string>()
  private readonly index: Record<string, EpisodeIndexEntry> = {}
  private readonly open = new Set<string>()
  private readonly pixels = new Moments(3)
  private readonly actionMoments = new Moments(ACTION_DIM)
  private frameCount = 0
  private finished = false

  constructor(dir: string, options: DatasetWriterOptions) {
    for (const key of ["height", "width"] as const) {
      if (!Number.isInteger(options[key]) || options[key] <= 0) throw new RangeError(`DatasetWriter: ${key} must be a positive integer, got ${options[key]}`)
    }
    if (!(options.fps > 0)) throw new RangeError(`DatasetWriter: fps must be positive, got ${options.fps}`)
    if (fs.existsSync(manifestPath(dir))) throw new Error(`DatasetWriter: ${dir} already holds a finished dataset (dataset.json exists)`)
    this.dir = dir
    this.options = options
    fs.mkdirSync(path.join(dir, "episodes"), { recursive: true })
  }

  beginEpisode(info: EpisodeInfo): EpisodeWriter {
    if (this.finished) throw new Error(`DatasetWriter(${this.dir}): beginEpisode after finish`)
    if (!isValidEpisodeId(info.id)) throw new RangeError(`DatasetWriter: episode id ${JSON.stringify(info.id)} is not a valid directory name`)
    if (this.index[info.id] !== undefined || this.open.has(info.id)) throw new Error(`DatasetWriter: duplicate episode id ${info.id}`)
    const dir = episodeDir(this.dir, info.id)
    fs.mkdirSync(dir, { recursive: true })
    this.open.add(info.id)
    return new EpisodeWriter(this, dir, info, this.options.height, this.options.width)
  }

  /** @internal called by EpisodeWriter */
  recordPixels(rgb: Uint8Array): void {
    // a strided sample of pixels is enough for normalisation statistics and keeps writing fast
    for (let p = 0; p < rgb.length; p += 3 * 7) {
      this.pixels.add(0, rgb[p]! / 255)
      this.pixels.add(1, rgb[p + 1]! / 255)
      this.pixels.add(2, rgb[p + 2]! / 255)
    }
    this.frameCount++
  }

  /** @internal called by EpisodeWriter */
  recordAction(action: Float32Array): void {
    for (let i = 0; i < action.length; i++) this.actionMoments.add(i, action[i]!)
  }

  /** @internal called by EpisodeWriter */
  episodeClosed(info: EpisodeInfo, length: number): void {
    this.open.delete(info.id)
    const ids = this.splits.get(info.split) ?? []
    ids.push(info.id)
    this.splits.set(info.split, ids)
    this.tasks.add(info.task)
    this.index[info.id] = { task: info.task, length, domain: info.domain, split: info.split, hasActions: info.robot === true }
  }

  /** Writes dataset.json (last: its presence marks the dataset complete) and returns it. */
  finish(extraStats: Readonly<Record<string, unknown>> = {}): DatasetManifest {
    if (this.open.size > 0) throw new Error(`DatasetWriter(${this.dir}): episodes not closed: ${[...this.open].join(", ")}`)
    this.finished = true
    const entries = Object.values(this.index)
    const lengths = entries.map((e) => e.length)
    const perSplit: Record<string, number> = {}
    for (const [split, ids] of this.splits) perSplit[split] = ids.length
    const perTask: Record<string, number> = {}
    for (const e of entries) perTask[e.task] = (perTask[e.task] ?? 0) + 1
    const robot = entries.some((e) => e.hasActions === true)
    const stats: Record<string, unknown> = {
      episodes: entries.length,
      frames: this.frameCount,
      episodesPerSplit: perSplit,
      episodesPerTask: perTask,
      episodeLength: {
        min: lengths.length > 0 ? Math.min(...lengths) : 0,
        max: lengths.length > 0 ? Math.max(...lengths) : 0,
        mean: lengths.length > 0 ? lengths.reduce((a, b) => a + b, 0) / lengths.length : 0
      },
      pixelMean: round6(this.pixels.mean()),
      pixelStd: round6(this.pixels.std()),
      ...(robot ? { actionMean: round6(this.actionMoments.mean()), actionStd: round6(this.actionMoments.std()) } : {}),
      ...extraStats
    }
    const manifest: DatasetManifest = {
      format: DATASET_FORMAT,
      name: this.options.name,
      source: this.options.source,
      height: this.options.height,
      width: this.options.width,
      fps: this.options.fps,
      splits: Object.fromEntries(this.splits),
      tasks: [...this.tasks].sort(),
      stats,
      episodes: this.index
    }
    fs.writeFileSync(manifestPath(this.dir), JSON.stringify(manifest, null, 1))
    return manifest
  }
}
