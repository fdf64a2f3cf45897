/**
 * Writes a MiniCraft dataset in the shared `vw2-episodes/1` layout, one frame at a time: memory is bounded
 * by one frame whatever the number or length of episodes. Everything is a pure function of the config, so
 * the same config (seed included) produces byte-identical files.
 */
import type { DatasetManifest } from "../dataset/Manifest.ts"
import { DatasetWriter } from "../dataset/DatasetWriter.ts"
import type { Split } from "./Appearance.ts"
import { SPLITS, domainFactors, domainOf, episodeAppearance } from "./Appearance.ts"
import { renderEpisode } from "./Episode.ts"
import { validateRenderOptions } from "./Renderer.ts"
import type { TaskName } from "./Tasks.ts"
import { TASK_NAMES, getTask } from "./Tasks.ts"
import { episodeLength, phaseFrames } from "./Timeline.ts"

export interface MiniCraftConfig {
  readonly tasks: ReadonlyArray<TaskName>
  readonly episodesPerTask: { readonly train: number; readonly test: number }
  readonly height: number
  readonly width: number
  readonly framesPerStep: number
  readonly idleFrames: number
  readonly fps: number
  readonly supersample: number
  readonly seed: number
}

export const defaultMiniCraftConfig: MiniCraftConfig = {
  tasks: TASK_NAMES,
  episodesPerTask: { train: 4, test: 2 },
  height: 32,
  width: 32,
  framesPerStep: 12, // 7 steps × 12 + 2 × 4 idle = 92 frames, close to the paper's 93-frame clips
  idleFrames: 4,
  fps: 8,
  supersample: 3,
  seed: 0
}

/** The generation settings a judge or re-renderer needs, stored in dataset.json under stats.minicraft. */
export interface MiniCraftStats {
  readonly seed: number
  readonly framesPerStep: number
  readonly idleFrames: number
  readonly supersample: number
  readonly domains: Readonly<Record<Split, ReadonlyArray<string>>>
}

export const validateMiniCraftConfig = (config: MiniCraftConfig): void => {
  if (config.tasks.length === 0) throw new RangeError("tasks: at least one task is needed")
  for (const [i, name] of config.tasks.entries()) getTaskChecked(name, `tasks[${i}]`)
  if (new Set(config.tasks).size !== config.tasks.length) throw new RangeError("tasks: a task is listed twice")
  for (const split of SPLITS) {
    const n = config.episodesPerTask[split]
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`episodesPerTask.${split}: expected a non-negative integer, got ${n}`)
  }
  try {
    validateRenderOptions(config)
    phaseFrames(config.framesPerStep)
  } catch (e) {
    throw new RangeError((e as Error).message)
  }
  if (!Number.isInteger(config.idleFrames) || config.idleFrames < 1) throw new RangeError(`idleFrames: expected an integer ≥ 1, got ${config.idleFrames}`)
  if (!(config.fps > 0)) throw new RangeError(`fps: expected a positive number, got ${config.fps}`)
  if (!Number.isSafeInteger(config.seed)) throw new RangeError(`seed: expected an integer, got ${config.seed}`)
}

const getTaskChecked = (name: string, where: string) => {
  try {
    return getTask(name)
  } catch (e) {
    throw new RangeError(`${where}: ${(e as Error).message}`)
  }
}

export const episodeId = (task: string, split: Split, index: number): string => `${task}-${split}-${String(index).padStart(3, "0")}`

export interface GenerateProgress {
  readonly done: number
  readonly total: number
  readonly episode: string
}

/** Generates the dataset into `dir` (which must not hold a finished dataset) and returns its manifest. */
export const generateMiniCraft = (dir: string, config: MiniCraftConfig, onProgress?: (p: GenerateProgress) => void): DatasetManifest => {
  validateMiniCraftConfig(config)
  const writer = new DatasetWriter(dir, { name: "minicraft", source: "minicraft", height: config.height, width: config.width, fps: config.fps })
  const total = config.tasks.length * (config.episodesPerTask.train + config.episodesPerTask.test)
  const domains: Record<Split, Set<string>> = { train: new Set(), test: new Set() }
  let done = 0
  for (const name of config.tasks) {
    const task = getTask(name)
    for (const split of SPLITS) {
      for (let i = 0; i < config.episodesPerTask[split]; i++) {
        const appearance = episodeAppearance(config.seed, name, split, i)
        const domain = domainOf(appearance)
        domains[split].add(domain)
        const id = episodeId(name, split, i)
        const episode = writer.beginEpisode({ id, split, task: name, instruction: task.instruction, domain, appearance: { ...appearance, factors: domainFactors(appearance) } })
        for (const frame of renderEpisode(task, appearance, config)) episode.appendFrame(frame.pixels, frame.label)
        episode.close()
        done++
        onProgress?.({ done, total, episode: id })
      }
    }
  }
  const minicraft: MiniCraftStats = {
    seed: config.seed,
    framesPerStep: config.framesPerStep,
    idleFrames: config.idleFrames,
    supersample: config.supersample,
    domains: { train: [...domains.train].sort(), test: [...domains.test].sort() }
  }
  return writer.finish({
    minicraft,
    stepsPerTask: Object.fromEntries(config.tasks.map((t) => [t, getTask(t).steps.length])),
    framesPerEpisode: Object.fromEntries(config.tasks.map((t) => [t, episodeLength(getTask(t).steps.length, config)]))
  })
}
