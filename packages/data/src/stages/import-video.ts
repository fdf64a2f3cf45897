/**
 * Stage `import-video`: decodes a video folder (mp4/webm/mkv/mov, each with a JSON step annotation; see
 * video/Annotation.ts) with ffmpeg into the shared layout ("video-dataset") — how the real Video-CraftBench
 * enters the pipeline. The invocation hash covers the folder's path, not its contents: point it at an
 * immutable folder (or change `name` when the contents change).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { ConfigField, defineStage, StageError } from "@vw2/core"
import { Effect, Schema } from "effect"
import { importVideoFolder } from "../video/VideoFolder.ts"
import { datasetContactSheet } from "../minicraft/Sheets.ts"

const { intBetween } = ConfigField


export const ImportVideoConfig = Schema.Struct({
  /** the folder to import (absolute, or relative to the working directory) */
  path: Schema.String.check(Schema.isMinLength(1)),
  name: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("video-folder"))),
  /** frames are scaled to height × width (area filter) */
  height: intBetween(8, 4096, 32),
  width: intBetween(8, 4096, 32),
  /** resample every video to this rate; absent: the first video's rate */
  fps: Schema.optionalKey(Schema.Finite.check(Schema.isGreaterThan(0))),
  /** split of videos whose annotation names none */
  defaultSplit: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("train")))
})
export type ImportVideoConfig = typeof ImportVideoConfig.Type

export const importVideoStage = defineStage({
  name: "import-video",
  version: "1",
  config: ImportVideoConfig,
  inputs: {},
  outputs: { dataset: "video-dataset" },
  seeded: false,
  resources: () => ({ cpus: 1, memoryMb: 1024 }),
  run: (ctx, config) =>
    Effect.tryPromise({
      try: async () => {
        const folder = path.resolve(config.path)
        if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) throw new Error(`path: ${folder} is not a directory`)
        const dir = ctx.outputDir("dataset")
        const manifest = await importVideoFolder(folder, dir, {
          name: config.name,
          width: config.width,
          height: config.height,
          ...(config.fps === undefined ? {} : { fps: config.fps }),
          defaultSplit: config.defaultSplit,
          onProgress: (done, total, video) => ctx.progress(done, total, video)
        })
        fs.writeFileSync(path.join(dir, "stats.json"), JSON.stringify(manifest.stats, null, 1))
        ctx.upload("dataset/stats.json")
        fs.writeFileSync(path.join(dir, "contact-sheet.png"), datasetContactSheet(dir))
        ctx.upload("dataset/contact-sheet.png")
        const stats = manifest.stats as { episodes: number; frames: number }
        ctx.metrics({ "import-video/episodes": stats.episodes, "import-video/frames": stats.frames }, 0)
      },
      catch: (e) => new StageError({ stage: "import-video", message: e instanceof Error ? e.message : String(e), cause: e })
    })
})
