/**
 * The judge for episodes of a MiniCraft dataset on disk: builds the judge's scene (task, appearance from
 * meta.json, resolution and anti-aliasing from dataset.json) so an evaluation can score a generated video
 * of episode `id` — or the episode's own frames — without knowing how the dataset was made.
 */
import * as path from "node:path"
import { episodeDir, readEpisodeMeta, readManifest } from "../dataset/Manifest.ts"
import { readNpy } from "../formats/npy.ts"
import { decodeAppearance } from "./Appearance.ts"
import type { EpisodeVerdict, JudgeOptions, JudgeScene } from "./Judge.ts"
import { MiniCraftJudge } from "./Judge.ts"
import { getTask } from "./Tasks.ts"

export const judgeSceneForEpisode = (datasetDir: string, id: string): JudgeScene => {
  const manifest = readManifest(datasetDir)
  const meta = readEpisodeMeta(datasetDir, id)
  const where = path.join(episodeDir(datasetDir, id), "meta.json")
  const minicraft = manifest.stats["minicraft"] as { supersample?: unknown } | undefined
  if (minicraft === undefined) throw new Error(`${path.join(datasetDir, "dataset.json")}: not a MiniCraft dataset (no stats.minicraft)`)
  const supersample = typeof minicraft.supersample === "number" ? minicraft.supersample : 3
  return { task: getTask(meta.task), appearance: decodeAppearance(meta.appearance, where), width: manifest.width, height: manifest.height, supersample }
}

/** Judges `frames` (uint8 [T, H, W, 3]; default: the episode's own frames.npy) as a video of episode `id`. */
export const judgeDatasetEpisode = (datasetDir: string, id: string, frames?: Uint8Array, options: Partial<JudgeOptions> = {}): EpisodeVerdict => {
  const judge = new MiniCraftJudge(judgeSceneForEpisode(datasetDir, id), options)
  const video = frames ?? (readNpy(path.join(episodeDir(datasetDir, id), "frames.npy")).data as Uint8Array)
  return judge.judge(video)
}
