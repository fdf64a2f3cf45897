/**
 * MiniCraft contact sheets: per task, a train-domain and a test-domain episode, each as a row of settled
 * states (0..7 steps done) and a row of mid-action frames.
 */
import * as path from "node:path"
import { episodeDir, readEpisodeMeta, readManifest } from "../dataset/Manifest.ts"
import { readNpy } from "../formats/npy.ts"
import type { Split } from "./Appearance.ts"
import { episodeAppearance } from "./Appearance.ts"
import type { Tile } from "./ContactSheet.ts"
import { contactFrames, encodeGridPng } from "./ContactSheet.ts"
import { renderEpisodeArray } from "./Episode.ts"
import type { TaskName } from "./Tasks.ts"
import { TASK_NAMES, getTask } from "./Tasks.ts"
import type { FrameLabel } from "./Timeline.ts"

export interface SheetOptions {
  readonly seed: number
  readonly width: number
  readonly height: number
  readonly framesPerStep?: number
  readonly idleFrames?: number
  readonly supersample?: number
  readonly tasks?: ReadonlyArray<TaskName>
}

export interface ContactSheet {
  readonly name: string
  readonly description: string
  readonly png: Uint8Array
}

/** The state row and the action row of one episode, given a way to fetch frame `i`. */
export const episodeRows = (labels: ReadonlyArray<FrameLabel>, frame: (index: number) => Uint8Array, width: number, height: number): { states: Tile[]; actions: Tile[] } => {
  const { states, actions } = contactFrames(labels)
  const tile = (i: number): Tile => ({ width, height, pixels: frame(i) })
  return { states: states.map(tile), actions: actions.map(tile) }
}

export const minicraftContactSheets = (options: SheetOptions): ContactSheet[] => {
  const { seed, width, height } = options
  const episode = { width, height, supersample: options.supersample ?? 3, framesPerStep: options.framesPerStep ?? 12, idleFrames: options.idleFrames ?? 4 }
  const sheets: ContactSheet[] = []
  const overview: Tile[][] = []
  for (const name of options.tasks ?? TASK_NAMES) {
    const task = getTask(name)
    const rows: (Tile | undefined)[][] = []
    for (const split of ["train", "test"] as ReadonlyArray<Split>) {
      const appearance = episodeAppearance(seed, name, split, 0)
      const { frames, labels } = renderEpisodeArray(task, appearance, episode)
      const size = width * height * 3
      const r = episodeRows(labels, (i) => frames.subarray(i * size, (i + 1) * size), width, height)
      rows.push(r.states, [undefined, ...r.actions])
      overview.push(r.states)
    }
    sheets.push({
      name: `${name}.png`,
      description: `${name}: rows = train states, train actions, test states, test actions; column k = after k steps`,
      png: encodeGridPng(rows, { scale: Math.max(1, Math.round(128 / width)), gap: 4 })
    })
  }
  sheets.push({ name: "all-tasks.png", description: "every task, train then test state rows", png: encodeGridPng(overview, { scale: Math.max(1, Math.round(96 / width)), gap: 4 }) })
  return sheets
}

/**
 * A contact sheet of a dataset in the shared layout: for each task, the first train and the first test
 * episode as rows of settled states (read from disk, one episode at a time).
 */
export const datasetContactSheet = (dir: string): Uint8Array => {
  const manifest = readManifest(dir)
  const rows: Tile[][] = []
  for (const task of manifest.tasks) {
    for (const split of Object.keys(manifest.splits).sort().reverse()) {
      const id = manifest.splits[split]!.find((candidate) => (manifest.episodes?.[candidate]?.task ?? readEpisodeMeta(dir, candidate).task) === task)
      if (id === undefined) continue
      const meta = readEpisodeMeta(dir, id)
      const frames = readNpy(path.join(episodeDir(dir, id), "frames.npy")).data as Uint8Array
      const size = manifest.width * manifest.height * 3
      rows.push(episodeRows(meta.frames as ReadonlyArray<FrameLabel>, (i) => frames.subarray(i * size, (i + 1) * size), manifest.width, manifest.height).states)
    }
  }
  return encodeGridPng(rows, { scale: Math.max(1, Math.round(96 / manifest.width)), gap: 4 })
}
