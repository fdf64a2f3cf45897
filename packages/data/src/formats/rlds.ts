/**
 * RLDS episodes as stored by TFDS in Open-X Embodiment shards: one TFRecord record per episode, a
 * `tf.train.Example` whose step fields are flattened and concatenated over the episode's T steps:
 *   steps/observation/image      bytes_list[T]    encoded PNG/JPEG
 *   steps/action                 float_list[T·D]  (some datasets split it: steps/action/world_vector, ...)
 *   steps/language_instruction   bytes_list[T]
 *   steps/is_first, steps/is_last, steps/is_terminal   int64_list[T]
 *   steps/reward, steps/discount float_list[T]
 *   episode_metadata/*           context of the episode
 * Some exporters write a `tf.train.SequenceExample` with the same keys as feature lists instead; the reader
 * accepts both. Feature keys are configurable because Open-X datasets differ (image key, action parts).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { formatError } from "./errors.ts"
import {
  bytesFeature,
  decodeExample,
  decodeSequenceExample,
  encodeExample,
  type Feature,
  floatFeature,
  int64Feature
} from "./example.ts"
import { readTfRecords, TfRecordWriter } from "./tfrecord.ts"

export interface RldsKeys {
  /** encoded image per step (default "steps/observation/image") */
  readonly image: string
  /** float features concatenated per step into the action (default ["steps/action"]) */
  readonly action: ReadonlyArray<string>
  /** language instruction per step (default "steps/language_instruction") */
  readonly instruction: string
}

export const DEFAULT_RLDS_KEYS: RldsKeys = {
  image: "steps/observation/image",
  action: ["steps/action"],
  instruction: "steps/language_instruction"
}

export interface RldsEpisode {
  readonly length: number
  /** encoded image bytes per step */
  readonly images: ReadonlyArray<Uint8Array>
  /** [T, actionDim] row-major */
  readonly actions: Float32Array
  readonly actionDim: number
  readonly instructions: ReadonlyArray<string>
  readonly isFirst: Uint8Array
  readonly isLast: Uint8Array
  readonly isTerminal: Uint8Array
  /** per-episode metadata strings (episode_metadata/*, bytes features decoded as UTF-8) */
  readonly metadata: Readonly<Record<string, string>>
}

const textDecoder = new TextDecoder()

/** Collapses a SequenceExample's feature lists into the flat Example form (values concatenated over steps). */
const flattenLists = (lists: Readonly<Record<string, ReadonlyArray<Feature>>>): Record<string, Feature> => {
  const out: Record<string, Feature> = {}
  for (const [key, list] of Object.entries(lists)) {
    const kind = list[0]?.kind ?? "bytes"
    if (kind === "bytes") out[key] = { kind, value: list.flatMap((f) => (f.kind === "bytes" ? [...f.value] : [])) }
    else if (kind === "float") out[key] = { kind, value: Float32Array.from(list.flatMap((f) => (f.kind === "float" ? Array.from(f.value) : []))) }
    else out[key] = { kind, value: BigInt64Array.from(list.flatMap((f) => (f.kind === "int64" ? Array.from(f.value) : []))) }
  }
  return out
}

const flags = (feature: Feature | undefined, length: number, fallback: (i: number) => number): Uint8Array => {
  if (feature === undefined) return Uint8Array.from({ length }, (_, i) => fallback(i))
  const values = feature.kind === "int64" ? Array.from(feature.value, Number) : feature.kind === "float" ? Array.from(feature.value) : []
  return Uint8Array.from(values, (v) => (v !== 0 ? 1 : 0))
}

/** Decodes one record into an episode; errors name the file and the record's byte offset. */
export const decodeRldsEpisode = (record: Uint8Array, keys: RldsKeys = DEFAULT_RLDS_KEYS, source = "<record>", offset?: number): RldsEpisode => {
  let features: Record<string, Feature> = decodeExample(record, source, offset)
  if (features[keys.image] === undefined) {
    const sequence = decodeSequenceExample(record, source, offset)
    features = { ...sequence.context, ...flattenLists(sequence.featureLists) }
  }
  const fail = (detail: string): never => {
    throw formatError(source, offset, `RLDS episode: ${detail}`)
  }
  const image = features[keys.image]
  if (image === undefined || image.kind !== "bytes") {
    return fail(`no bytes feature '${keys.image}' (keys present: ${Object.keys(features).sort().join(", ")}); set the image key`)
  }
  const length = image.value.length
  if (length === 0) return fail("episode has no steps")
  const parts: Float32Array[] = []
  for (const key of keys.action) {
    const f = features[key]
    if (f === undefined || f.kind === "bytes") return fail(`no numeric action feature '${key}'`)
    const values = f.kind === "float" ? f.value : Float32Array.from(f.value, Number)
    if (values.length % length !== 0) return fail(`action feature '${key}' has ${values.length} values, not a multiple of the ${length} steps`)
    parts.push(values)
  }
  const dims = parts.map((p) => p.length / length)
  const actionDim = dims.reduce((a, b) => a + b, 0)
  const actions = new Float32Array(length * actionDim)
  for (let t = 0; t < length; t++) {
    let o = t * actionDim
    parts.forEach((p, i) => {
      actions.set(p.subarray(t * dims[i]!, (t + 1) * dims[i]!), o)
      o += dims[i]!
    })
  }
  const instructionFeature = features[keys.instruction]
  const instructions = instructionFeature?.kind === "bytes" ? instructionFeature.value.map((b) => textDecoder.decode(b)) : []
  if (instructions.length !== 0 && instructions.length !== length) return fail(`'${keys.instruction}' has ${instructions.length} entries for ${length} steps`)
  const isFirst = flags(features["steps/is_first"], length, (i) => (i === 0 ? 1 : 0))
  const isLast = flags(features["steps/is_last"], length, (i) => (i === length - 1 ? 1 : 0))
  const isTerminal = flags(features["steps/is_terminal"], length, () => 0)
  for (const [name, f] of [["is_first", isFirst], ["is_last", isLast], ["is_terminal", isTerminal]] as const) {
    if (f.length !== length) fail(`steps/${name} has ${f.length} entries for ${length} steps`)
  }
  if (isFirst[0] !== 1 || isFirst.subarray(1).some((v) => v === 1)) fail("steps/is_first must be set on the first step only (one episode per record)")
  if (isLast[length - 1] !== 1 || isLast.subarray(0, length - 1).some((v) => v === 1)) fail("steps/is_last must be set on the last step only")
  const metadata: Record<string, string> = {}
  for (const [key, f] of Object.entries(features)) {
    if (key.startsWith("episode_metadata/") && f.kind === "bytes" && f.value.length === 1) metadata[key.slice("episode_metadata/".length)] = textDecoder.decode(f.value[0])
  }
  return { length, images: image.value, actions, actionDim, instructions, isFirst, isLast, isTerminal, metadata }
}

export interface RldsEpisodeInput {
  /** encoded PNG/JPEG per step */
  readonly images: ReadonlyArray<Uint8Array>
  /** [T, D] row-major */
  readonly actions: ArrayLike<number>
  readonly instruction: string
  /** optional per-step proprioceptive state [T, S] */
  readonly state?: ArrayLike<number>
  readonly metadata?: Readonly<Record<string, string>>
}

/** Encodes an episode as TFDS writes RLDS: a flat `tf.train.Example` keyed "steps/...". */
export const encodeRldsEpisode = (episode: RldsEpisodeInput): Uint8Array => {
  const t = episode.images.length
  if (t === 0) throw new RangeError("encodeRldsEpisode: episode has no steps")
  if (episode.actions.length % t !== 0) throw new RangeError(`encodeRldsEpisode: ${episode.actions.length} action values for ${t} steps`)
  const features: Record<string, Feature> = {
    "steps/observation/image": bytesFeature(episode.images),
    "steps/action": floatFeature(episode.actions),
    "steps/language_instruction": bytesFeature(Array.from({ length: t }, () => episode.instruction)),
    "steps/is_first": int64Feature(Array.from({ length: t }, (_, i) => (i === 0 ? 1 : 0))),
    "steps/is_last": int64Feature(Array.from({ length: t }, (_, i) => (i === t - 1 ? 1 : 0))),
    "steps/is_terminal": int64Feature(Array.from({ length: t }, (_, i) => (i === t - 1 ? 1 : 0))),
    "steps/reward": floatFeature(Array.from({ length: t }, (_, i) => (i === t - 1 ? 1 : 0))),
    "steps/discount": floatFeature(Array.from({ length: t }, () => 1))
  }
  if (episode.state !== undefined) features["steps/observation/state"] = floatFeature(episode.state)
  for (const [k, v] of Object.entries(episode.metadata ?? {})) features[`episode_metadata/${k}`] = bytesFeature([v])
  return encodeExample(features)
}

const SHARD_PATTERN = /\.tfrecord(-\d{5}-of-\d{5})?$/

/** Every TFRecord shard under `root` (a file, or a TFDS-style directory tree), sorted by path. */
export const findTfRecordShards = (root: string): string[] => {
  let stat: fs.Stats
  try {
    stat = fs.statSync(root)
  } catch (e) {
    throw formatError(root, undefined, `cannot read RLDS dataset path: ${(e as Error).message}`)
  }
  if (stat.isFile()) return [root]
  const out: string[] = []
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (SHARD_PATTERN.test(entry.name)) out.push(full)
    }
  }
  walk(root)
  return out
}

export interface RldsEpisodeWithOrigin extends RldsEpisode {
  readonly file: string
  readonly offset: number
  /** index of the record within its shard */
  readonly record: number
}

/** Streams the episodes of every shard under `root`, one at a time. */
export function* readRldsEpisodes(root: string, keys: RldsKeys = DEFAULT_RLDS_KEYS): Generator<RldsEpisodeWithOrigin> {
  const shards = findTfRecordShards(root)
  if (shards.length === 0) throw formatError(root, undefined, "no TFRecord shards (*.tfrecord or *.tfrecord-NNNNN-of-NNNNN) found")
  for (const file of shards) {
    let record = 0
    for (const { data, offset } of readTfRecords(file)) {
      yield { ...decodeRldsEpisode(data, keys, file, offset), file, offset, record }
      record++
    }
  }
}

export interface RldsDatasetInfo {
  readonly name: string
  readonly version: string
  readonly description: string
  readonly imageShape: readonly [number, number, number]
  readonly actionDim: number
  readonly episodes: number
}

/**
 * Writes a TFDS-style RLDS dataset: `<dir>/<name>/<version>/<name>-train.tfrecord-NNNNN-of-NNNNN`
 * plus a `dataset_info.json` describing it. Episodes are spread over `shards` files round-robin.
 */
export class RldsDatasetWriter {
  readonly dir: string
  private readonly writers: TfRecordWriter[]
  private readonly info: Omit<RldsDatasetInfo, "episodes">
  private count = 0

  constructor(root: string, info: Omit<RldsDatasetInfo, "episodes">, shards = 1) {
    if (!/^[A-Za-z0-9_]+$/.test(info.name)) throw new RangeError(`RLDS dataset name ${JSON.stringify(info.name)} must be [A-Za-z0-9_]+`)
    this.dir = path.join(root, info.name, info.version)
    this.info = info
    fs.mkdirSync(this.dir, { recursive: true })
    const of = String(shards).padStart(5, "0")
    this.writers = Array.from({ length: shards }, (_, i) => new TfRecordWriter(path.join(this.dir, `${info.name}-train.tfrecord-${String(i).padStart(5, "0")}-of-${of}`)))
  }

  write(episode: RldsEpisodeInput): void {
    this.writers[this.count % this.writers.length]!.write(encodeRldsEpisode(episode))
    this.count++
  }

  close(): RldsDatasetInfo {
    for (const w of this.writers) w.close()
    const info = { ...this.info, episodes: this.count }
    fs.writeFileSync(path.join(this.dir, "dataset_info.json"), JSON.stringify(info, null, 1))
    return info
  }
}
