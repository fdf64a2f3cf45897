/**
 * Stage `generate-minicraft`: writes a MiniCraft dataset ("video-dataset") in the shared layout, plus
 * `stats.json` (the dataset statistics) and `contact-sheet.png` (settled states per step of each task, train
 * and test domain) uploaded to the tracker. The dataset is a pure function of the config (its own `seed`),
 * so the stage is not seeded by the trial: every trial shares one dataset.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { ConfigField, defineStage, StageError } from "@vw2/core"
import { Effect, Schema } from "effect"
import { generateMiniCraft } from "../minicraft/Generate.ts"
import { MAX_RESOLUTION, MIN_RESOLUTION } from "../minicraft/Renderer.ts"
import { datasetContactSheet } from "../minicraft/Sheets.ts"
import { TASK_NAMES } from "../minicraft/Tasks.ts"

const { intBetween } = ConfigField


export const GenerateMiniCraftConfig = Schema.Struct({
  /** which tasks (default: all five) */
  tasks: Schema.Array(Schema.Literals(TASK_NAMES)).pipe(Schema.withDecodingDefaultKey(Effect.succeed([...TASK_NAMES]))),
  /** episodes per task in the train split (train-domain appearances) */
  trainEpisodesPerTask: intBetween(0, 100_000, 4),
  /** episodes per task in the test split (unseen tables, papers, distractors, lighting; views inside train's ranges) */
  testEpisodesPerTask: intBetween(0, 100_000, 2),
  height: intBetween(MIN_RESOLUTION, MAX_RESOLUTION, 32),
  width: intBetween(MIN_RESOLUTION, MAX_RESOLUTION, 32),
  /** frames per step: 30 % reach, 50 % action, 20 % release; 12 → 92-frame episodes (the paper's T ≈ 93) */
  framesPerStep: intBetween(6, 1000, 12),
  /** still frames before the first and after the last step */
  idleFrames: intBetween(1, 1000, 4),
  fps: Schema.Finite.check(Schema.isGreaterThan(0)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(8))),
  /** anti-aliasing: subpixels per pixel along each axis */
  supersample: intBetween(1, 8, 3),
  /** the dataset's own seed (appearances, noise) */
  seed: intBetween(0, 2 ** 31 - 1, 0)
})
export type GenerateMiniCraftConfig = typeof GenerateMiniCraftConfig.Type

export const generateMiniCraftStage = defineStage({
  name: "generate-minicraft",
  // 2: MiniCraft v2 (large blocks and flaps, slim arm along each step's motion, test views inside train's)
  version: "2",
  config: GenerateMiniCraftConfig,
  inputs: {},
  outputs: { dataset: "video-dataset" },
  seeded: false,
  resources: () => ({ cpus: 1, memoryMb: 512 }),
  run: (ctx, config) =>
    Effect.try({
      try: () => {
        const dir = ctx.outputDir("dataset")
        const started = performance.now()
        const manifest = generateMiniCraft(
          dir,
          {
            tasks: config.tasks,
            episodesPerTask: { train: config.trainEpisodesPerTask, test: config.testEpisodesPerTask },
            height: config.height,
            width: config.width,
            framesPerStep: config.framesPerStep,
            idleFrames: config.idleFrames,
            fps: config.fps,
            supersample: config.supersample,
            seed: config.seed
          },
          (p) => ctx.progress(p.done, p.total, p.episode)
        )
        const seconds = (performance.now() - started) / 1000
        fs.writeFileSync(path.join(dir, "stats.json"), JSON.stringify(manifest.stats, null, 1))
        ctx.upload("dataset/stats.json")
        if (manifest.splits["train"]?.length || manifest.splits["test"]?.length) {
          fs.writeFileSync(path.join(dir, "contact-sheet.png"), datasetContactSheet(dir))
          ctx.upload("dataset/contact-sheet.png")
        }
        const stats = manifest.stats as { episodes: number; frames: number }
        ctx.metrics({ "minicraft/episodes": stats.episodes, "minicraft/frames": stats.frames, "minicraft/generate_seconds": seconds }, 0)
        ctx.log(`generated ${stats.episodes} MiniCraft episodes (${stats.frames} frames) in ${seconds.toFixed(2)} s`)
      },
      catch: (e) => new StageError({ stage: "generate-minicraft", message: e instanceof Error ? e.message : String(e), cause: e })
    })
})
