/**
 * Imports RLDS / Open-X TFRecord shards into the shared dataset layout: images decoded and resized to the
 * target resolution, actions concatenated from the configured keys into CALVIN-style 7-d rows, the
 * language instruction kept per episode. Each TFDS dataset under the input path (one per "embodiment")
 * becomes a task and a domain, so mixtures and splits can tell embodiments apart.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { DatasetWriter } from "../dataset/DatasetWriter.ts"
import { ACTION_DIM, type DatasetManifest } from "../dataset/Manifest.ts"
import { SeededRandom } from "../dataset/Random.ts"
import { formatError } from "./errors.ts"
import { decodeImage, resizeRgb } from "./image.ts"
import { DEFAULT_RLDS_KEYS, readRldsEpisodes, type RldsKeys } from "./rlds.ts"

export interface ImportRldsOptions {
  readonly input: string
  readonly output: string
  readonly name: string
  readonly height: number
  readonly width: number
  /** control frequency of the source data (Open-X datasets range 3–30 Hz) */
  readonly fps: number
  readonly keys?: Partial<RldsKeys>
  /** fraction of episodes assigned to the "test" split, by a seeded draw per episode */
  readonly testFraction?: number
  readonly seed?: number
  readonly maxEpisodes?: number
  readonly onEpisode?: (done: number) => void
}

/** The TFDS dataset name a shard belongs to: dataset_info.json's name, else the folder above the version. */
const datasetNameOf = (shard: string): string => {
  const dir = path.dirname(shard)
  const infoFile = path.join(dir, "dataset_info.json")
  if (fs.existsSync(infoFile)) {
    try {
      const info = JSON.parse(fs.readFileSync(infoFile, "utf8")) as { name?: unknown }
      if (typeof info.name === "string" && info.name.length > 0) return info.name
    } catch {
      // fall through to the folder name
    }
  }
  const base = path.basename(dir)
  return /^\d+\.\d+\.\d+$/.test(base) ? path.basename(path.dirname(dir)) : base
}

export const importRlds = (options: ImportRldsOptions): DatasetManifest => {
  const keys: RldsKeys = { ...DEFAULT_RLDS_KEYS, ...options.keys }
  const testFraction = options.testFraction ?? 0.1
  const writer = new DatasetWriter(options.output, {
    name: options.name,
    source: `rlds:${path.resolve(options.input)}`,
    height: options.height,
    width: options.width,
    fps: options.fps
  })
  let count = 0
  const names = new Map<string, string>()
  for (const episode of readRldsEpisodes(options.input, keys)) {
    if (options.maxEpisodes !== undefined && count >= options.maxEpisodes) break
    if (episode.actionDim !== ACTION_DIM) {
      throw formatError(episode.file, episode.offset,
        `RLDS action has ${episode.actionDim} values per step from keys [${keys.action.join(", ")}]; the shared layout needs ${ACTION_DIM} (xyz, euler, gripper): choose action keys that concatenate to ${ACTION_DIM}`)
    }
    let dataset = names.get(episode.file)
    if (dataset === undefined) {
      dataset = datasetNameOf(episode.file)
      names.set(episode.file, dataset)
    }
    const shardTag = path.basename(episode.file).replace(/[^A-Za-z0-9]+/g, "_")
    const id = `${dataset}-${shardTag}-${String(episode.record).padStart(6, "0")}`
    const split = SeededRandom.derive(options.seed ?? 0, id).next() < testFraction ? "test" : "train"
    const ep = writer.beginEpisode({
      id,
      split,
      task: dataset,
      instruction: episode.instructions[0] ?? "",
      domain: dataset,
      appearance: { embodiment: dataset, sourceFile: episode.file, sourceOffset: episode.offset, ...episode.metadata },
      robot: true,
      observations: false
    })
    for (let t = 0; t < episode.length; t++) {
      const image = resizeRgb(decodeImage(episode.images[t]!, `${episode.file} (record at byte ${episode.offset}, step ${t})`), options.width, options.height)
      ep.appendFrame(
        image.data,
        { step: t, phase: episode.isTerminal[t] === 1 ? "terminal" : "act", state: {} },
        { action: episode.actions.subarray(t * ACTION_DIM, (t + 1) * ACTION_DIM) }
      )
    }
    ep.close()
    count++
    options.onEpisode?.(count)
  }
  return writer.finish({ importedFrom: path.resolve(options.input), embodiments: [...new Set(names.values())].sort() })
}
