/**
 * The shared dataset layout (`vw2-episodes/1`, agreed in the team's data conventions):
 *
 *   dataset.json                 DatasetManifest
 *   episodes/<id>/frames.npy     uint8 [T, H, W, 3]
 *   episodes/<id>/meta.json      EpisodeMeta (per-frame labels)
 *   episodes/<id>/actions.npy    float32 [T, 7]   CALVIN-style rel_actions   (robot data only)
 *   episodes/<id>/robot_obs.npy  float32 [T, 15]                             (robot data only)
 *   episodes/<id>/scene_obs.npy  float32 [T, 24]                             (robot data only)
 *
 * `episodes` in dataset.json (id → task, length, domain) is an optional index the writer always adds so a
 * reader can plan clips without opening every episode; without it the reader falls back to meta.json and
 * the frames.npy header.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Schema } from "effect"
import { formatError } from "../formats/errors.ts"

export const DATASET_FORMAT = "vw2-episodes/1"
export const ACTION_DIM = 7
export const ROBOT_OBS_DIM = 15
export const SCENE_OBS_DIM = 24

const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))

export const EpisodeIndexEntry = Schema.Struct({
  task: Schema.String,
  length: NonNegativeInt,
  domain: Schema.optional(Schema.String),
  split: Schema.optional(Schema.String),
  hasActions: Schema.optional(Schema.Boolean)
})
export type EpisodeIndexEntry = typeof EpisodeIndexEntry.Type

export const DatasetManifest = Schema.Struct({
  format: Schema.Literal(DATASET_FORMAT),
  name: Schema.String,
  /** where the data came from: "minicraft", "minicalvin", "openx:<path>", "calvin:<path>", ... */
  source: Schema.String,
  height: PositiveInt,
  width: PositiveInt,
  fps: Schema.Number.check(Schema.isGreaterThan(0)),
  splits: Schema.Record(Schema.String, Schema.Array(Schema.String)),
  tasks: Schema.Array(Schema.String),
  stats: Schema.Record(Schema.String, Schema.Unknown),
  episodes: Schema.optional(Schema.Record(Schema.String, EpisodeIndexEntry))
})
export type DatasetManifest = typeof DatasetManifest.Type

export const FrameLabel = Schema.Struct({
  step: Schema.Number,
  phase: Schema.String,
  state: Schema.Record(Schema.String, Schema.Unknown)
})
export type FrameLabel = typeof FrameLabel.Type

export const EpisodeMeta = Schema.Struct({
  id: Schema.String,
  split: Schema.String,
  task: Schema.String,
  instruction: Schema.String,
  domain: Schema.String,
  appearance: Schema.Record(Schema.String, Schema.Unknown),
  frames: Schema.Array(FrameLabel)
})
export type EpisodeMeta = typeof EpisodeMeta.Type

/** Episode ids become directory names: keep them portable. */
export const isValidEpisodeId = (id: string): boolean => /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id) && !id.includes("..")

export const manifestPath = (dir: string): string => path.join(dir, "dataset.json")
export const episodeDir = (dir: string, id: string): string => path.join(dir, "episodes", id)

const readJson = (file: string): unknown => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (e) {
    throw formatError(file, undefined, `cannot read: ${(e as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch (e) {
    throw formatError(file, undefined, `invalid JSON: ${(e as Error).message}`)
  }
}

const decodeWith = <S extends Schema.Codec<unknown, unknown>>(schema: S, file: string, value: unknown): S["Type"] => {
  try {
    return Schema.decodeUnknownSync(schema as never)(value) as S["Type"]
  } catch (e) {
    throw formatError(file, undefined, `does not match the ${DATASET_FORMAT} layout: ${(e as Error).message}`)
  }
}

export const readManifest = (dir: string): DatasetManifest => {
  const file = manifestPath(dir)
  const manifest = decodeWith(DatasetManifest, file, readJson(file))
  for (const [split, ids] of Object.entries(manifest.splits)) {
    for (const id of ids) {
      if (!isValidEpisodeId(id)) throw formatError(file, undefined, `splits.${split}: episode id ${JSON.stringify(id)} is not a valid directory name`)
    }
  }
  return manifest
}

export const readEpisodeMeta = (dir: string, id: string): EpisodeMeta => {
  const file = path.join(episodeDir(dir, id), "meta.json")
  return decodeWith(EpisodeMeta, file, readJson(file))
}
