/** Writes a small "code-dataset" artifact in the layout CodeDataset.ts reads (as the tokenize stage does). */
import { npyArray, writeNpy } from "@vw2/data"
import * as fs from "node:fs"
import * as path from "node:path"

export interface SyntheticEpisode {
  readonly id: string
  readonly split: "train" | "test"
  readonly task: string
  readonly instruction: string
  /** int codes [clips][transitions × queries] */
  readonly clips: ReadonlyArray<ReadonlyArray<number>>
  /** one grey level per clip start frame */
  readonly shades: ReadonlyArray<number>
}

export const writeCodeDataset = (
  dir: string,
  layout: { codeVocab: number; queries: number; transitionsPerClip: number; clipLength: number; height: number; width: number },
  episodes: ReadonlyArray<SyntheticEpisode>
): void => {
  fs.mkdirSync(path.join(dir, "episodes"), { recursive: true })
  for (const e of episodes) {
    const where = path.join(dir, "episodes", e.id)
    fs.mkdirSync(where, { recursive: true })
    writeNpy(path.join(where, "codes.npy"), npyArray("int32", [e.clips.length, layout.transitionsPerClip, layout.queries], Int32Array.from(e.clips.flat())))
    const frameSize = layout.height * layout.width * 3
    const frames = new Uint8Array(e.clips.length * frameSize)
    e.shades.forEach((s, k) => frames.fill(s, k * frameSize, (k + 1) * frameSize))
    writeNpy(path.join(where, "start_frames.npy"), npyArray("uint8", [e.clips.length, layout.height, layout.width, 3], frames))
  }
  fs.writeFileSync(
    path.join(dir, "codes.json"),
    JSON.stringify({
      format: "vw2-codes/1",
      ...layout,
      clipStride: layout.clipLength - 1,
      episodes: episodes.map((e) => ({ id: e.id, split: e.split, task: e.task, instruction: e.instruction, clips: e.clips.length }))
    })
  )
}
