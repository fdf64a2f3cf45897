/**
 * Stage `import-calvin`: imports a CALVIN dataset (a root with training/ and validation/, or one split
 * directory) from `path` into the shared layout ("robot-dataset"): one episode per language-annotated
 * segment (or per play episode), frames from `camera` resized to `height`×`width`, rel_actions, robot_obs
 * and scene_obs. training → train, validation → test.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { defineStage, StageError } from "@vw2/core"
import { Effect, Schema } from "effect"
import { importCalvin } from "../formats/calvin.ts"

const int = (min: number, max: number, fallback: number) =>
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(min), Schema.isLessThanOrEqualTo(max)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))
const withDefault = <S extends Schema.Top>(schema: S, fallback: S["Encoded"]) => schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

export const ImportCalvinConfig = Schema.Struct({
  /** the CALVIN root or split directory (absolute, or relative to the working directory) */
  path: Schema.String.check(Schema.isMinLength(1)),
  name: withDefault(Schema.String, "calvin"),
  height: int(8, 1024, 32),
  width: int(8, 1024, 32),
  fps: withDefault(Schema.Finite.check(Schema.isGreaterThan(0)), 30),
  camera: withDefault(Schema.Literals(["rgb_static", "rgb_gripper"]), "rgb_static"),
  /** "language": annotated segments; "episodes": whole play episodes; "auto": language when annotated */
  unit: withDefault(Schema.Literals(["auto", "language", "episodes"]), "auto"),
  /** stop after this many episodes per split (0: all) */
  maxEpisodesPerSplit: int(0, 2 ** 31 - 1, 0)
})
export type ImportCalvinConfig = typeof ImportCalvinConfig.Type

export const importCalvinStage = defineStage({
  name: "import-calvin",
  version: "1",
  config: ImportCalvinConfig,
  inputs: {},
  outputs: { dataset: "robot-dataset" },
  seeded: false,
  resources: () => ({ cpus: 1, memoryMb: 1024 }),
  run: (ctx, config) =>
    Effect.try({
      try: () => {
        const input = path.resolve(config.path)
        if (!fs.existsSync(input)) throw new Error(`${ctx.step}.path: ${input} does not exist`)
        const started = performance.now()
        const manifest = importCalvin({
          input,
          output: ctx.outputDir("dataset"),
          name: config.name,
          height: config.height,
          width: config.width,
          fps: config.fps,
          camera: config.camera,
          ...(config.unit !== "auto" ? { unit: config.unit } : {}),
          ...(config.maxEpisodesPerSplit > 0 ? { maxEpisodesPerSplit: config.maxEpisodesPerSplit } : {}),
          onEpisode: (done) => ctx.progress(done, done)
        })
        const stats = manifest.stats as { episodes: number; frames: number }
        ctx.metrics({ episodes: stats.episodes, frames: stats.frames, import_seconds: (performance.now() - started) / 1000 }, 0)
        ctx.log(`imported ${stats.episodes} CALVIN episodes (${stats.frames} frames) from ${input}`)
      },
      catch: (e) => new StageError({ stage: "import-calvin", message: e instanceof Error ? e.message : String(e), cause: e })
    })
})
