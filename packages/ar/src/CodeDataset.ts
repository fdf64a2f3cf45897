/**
 * Reads a "code-dataset" artifact (the dLDM `tokenize` stage's output) into what the AR stage and the
 * evaluations need: per episode its instruction, task, split, the FSQ codes of each clip, and each clip's
 * start frame (the frame the AR's frame slot holds and the decoder starts from).
 *
 * Layout read here (see docs/experiments.md, "code-dataset"):
 *   codes.json                    { format: "vw2-codes/1", codeVocab, queries, transitionsPerClip,
 *                                   clipLength, clipStride, height, width, episodes: [{ id, split, task,
 *                                   instruction, clips }] }
 *   episodes/<id>/codes.npy       int32 [clips, transitionsPerClip, queries]
 *   episodes/<id>/start_frames.npy uint8 [clips, H, W, 3]
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { readNpy } from "@vw2/data"
import type { CodeEpisode } from "./CodeStream.ts"

export interface CodeDatasetInfo {
  readonly codeVocab: number
  readonly queries: number
  readonly transitionsPerClip: number
  /** frames per clip T (consecutive clips share their boundary frame when clipStride = T − 1) */
  readonly clipLength: number
  readonly clipStride: number
  readonly height: number
  readonly width: number
}

export interface CodedEpisode extends CodeEpisode {
  readonly split: string
  /** uint8 [clips, H, W, 3] */
  readonly startFrames: Uint8Array
}

export interface CodeDataset {
  readonly dir: string
  readonly info: CodeDatasetInfo
  readonly episodes: ReadonlyArray<CodedEpisode>
}

const fail = (file: string, message: string): never => {
  throw new Error(`${file}: ${message}`)
}

export const readCodeDataset = (dir: string, filter: { readonly split?: string } = {}): CodeDataset => {
  const file = path.join(dir, "codes.json")
  if (!fs.existsSync(file)) fail(file, "not found (is this a code-dataset from the tokenize stage?)")
  const json = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>
  if (json.format !== "vw2-codes/1") fail(file, `format ${JSON.stringify(json.format)} is not "vw2-codes/1"`)
  const num = (key: string): number => {
    const v = json[key]
    return typeof v === "number" && Number.isInteger(v) && v > 0 ? v : fail(file, `${key} must be a positive integer`)
  }
  const info: CodeDatasetInfo = {
    codeVocab: num("codeVocab"),
    queries: num("queries"),
    transitionsPerClip: num("transitionsPerClip"),
    clipLength: num("clipLength"),
    clipStride: num("clipStride"),
    height: num("height"),
    width: num("width")
  }
  const list = Array.isArray(json.episodes) ? (json.episodes as Array<Record<string, unknown>>) : fail(file, "episodes must be an array")
  const codesPerClip = info.transitionsPerClip * info.queries
  const episodes = list
    .filter((e) => filter.split === undefined || e.split === filter.split)
    .map((e): CodedEpisode => {
      const id = String(e.id)
      const where = path.join(dir, "episodes", id)
      const codes = readNpy(path.join(where, "codes.npy"))
      const frames = readNpy(path.join(where, "start_frames.npy"))
      const clips = codes.shape[0] ?? 0
      if (codes.dtype !== "int32" || codes.shape.length !== 3 || codes.shape[1] !== info.transitionsPerClip || codes.shape[2] !== info.queries) {
        fail(path.join(where, "codes.npy"), `expected int32 [clips, ${info.transitionsPerClip}, ${info.queries}], got ${codes.dtype} [${codes.shape.join(", ")}]`)
      }
      if (frames.dtype !== "uint8" || frames.shape[0] !== clips || frames.shape[1] !== info.height || frames.shape[2] !== info.width) {
        fail(path.join(where, "start_frames.npy"), `expected uint8 [${clips}, ${info.height}, ${info.width}, 3], got ${frames.dtype} [${frames.shape.join(", ")}]`)
      }
      const data = codes.data as Int32Array
      for (const c of data) if (c < 0 || c >= info.codeVocab) fail(path.join(where, "codes.npy"), `code ${c} outside the vocabulary 0..${info.codeVocab - 1}`)
      return {
        id,
        split: String(e.split),
        task: String(e.task),
        instruction: String(e.instruction),
        clips,
        codes: Int32Array.from(data.subarray(0, clips * codesPerClip)),
        startFrames: frames.data as Uint8Array
      }
    })
  return { dir, info, episodes }
}

/** Clip k's start frame as Float32 [H, W, 3] in [0, 1]. */
export const startFrame = (episode: CodedEpisode, k: number, info: CodeDatasetInfo): Float32Array => {
  const size = info.height * info.width * 3
  const out = new Float32Array(size)
  for (let i = 0; i < size; i++) out[i] = episode.startFrames[k * size + i]! / 255
  return out
}
