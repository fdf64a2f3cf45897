/**
 * Stage `import-calvin`: imports a CALVIN dataset (a root with training/ and validation/, or one split
 * directory) from `path` into the shared layout ("robot-dataset"): one episode per language-annotated
 * segment (or per play episode), frames from `camera` resized to `height`×`width`, rel_actions, robot_obs
 * and scene_obs. training → train, validation → test.
 */
import { ConfigField, defineStage } from "@vw2/core"
import { Schema } from "effect"
import { importCalvin } from "../formats/calvin.ts"
import { runRobotImport } from "./robotImport.ts"

const { intBetween, withDefault } = ConfigField


export const ImportCalvinConfig = Schema.Struct({
  /** the CALVIN root or split directory (absolute, or relative to the working directory) */
  path: Schema.String.check(Schema.isMinLength(1)),
  name: withDefault(Schema.String, "calvin"),
  height: intBetween(8, 1024, 32),
  width: intBetween(8, 1024, 32),
  fps: withDefault(Schema.Finite.check(Schema.isGreaterThan(0)), 30),
  camera: withDefault(Schema.Literals(["rgb_static", "rgb_gripper"]), "rgb_static"),
  /** "language": annotated segments; "episodes": whole play episodes; "auto": language when annotated */
  unit: withDefault(Schema.Literals(["auto", "language", "episodes"]), "auto"),
  /** stop after this many episodes per split (0: all) */
  maxEpisodesPerSplit: intBetween(0, 2 ** 31 - 1, 0)
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
    runRobotImport(ctx, "import-calvin", "CALVIN", config.path, (input, output) =>
      importCalvin({
        input,
        output,
        name: config.name,
        height: config.height,
        width: config.width,
        fps: config.fps,
        camera: config.camera,
        ...(config.unit !== "auto" ? { unit: config.unit } : {}),
        ...(config.maxEpisodesPerSplit > 0 ? { maxEpisodesPerSplit: config.maxEpisodesPerSplit } : {}),
        onEpisode: (done) => ctx.progress(done, done)
      })
    )
})
