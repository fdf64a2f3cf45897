/**
 * Stage `import-openx`: imports Open-X Embodiment / RLDS TFRecord shards from `path` (a shard, a TFDS
 * dataset directory, or a folder of several) into the shared layout ("robot-dataset"): frames resized to
 * `height`×`width`, 7-d actions from `actionKeys`, the language instruction per episode; each TFDS dataset
 * becomes a task and domain (its embodiment). Corrupt shards fail with the file and byte offset.
 */
import { ConfigField, defineStage } from "@vw2/core"
import { Schema } from "effect"
import { importRlds } from "../formats/importRlds.ts"
import { DEFAULT_RLDS_KEYS } from "../formats/rlds.ts"
import { runRobotImport } from "./robotImport.ts"

const { intBetween, withDefault } = ConfigField


export const ImportOpenXConfig = Schema.Struct({
  /** where the shards are (absolute, or relative to the working directory) */
  path: Schema.String.check(Schema.isMinLength(1)),
  name: withDefault(Schema.String, "openx"),
  height: intBetween(8, 1024, 32),
  width: intBetween(8, 1024, 32),
  /** control rate of the source data */
  fps: withDefault(Schema.Finite.check(Schema.isGreaterThan(0)), 10),
  imageKey: withDefault(Schema.String, DEFAULT_RLDS_KEYS.image),
  /** float features concatenated per step into the 7-d action */
  actionKeys: withDefault(Schema.Array(Schema.String).check(Schema.isMinLength(1)), [...DEFAULT_RLDS_KEYS.action]),
  instructionKey: withDefault(Schema.String, DEFAULT_RLDS_KEYS.instruction),
  testFraction: withDefault(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1)), 0.1),
  seed: intBetween(0, 2 ** 31 - 1, 0),
  /** stop after this many episodes (0: all) */
  maxEpisodes: intBetween(0, 2 ** 31 - 1, 0)
})
export type ImportOpenXConfig = typeof ImportOpenXConfig.Type

export const importOpenXStage = defineStage({
  name: "import-openx",
  version: "1",
  config: ImportOpenXConfig,
  inputs: {},
  outputs: { dataset: "robot-dataset" },
  seeded: false,
  resources: () => ({ cpus: 1, memoryMb: 1024 }),
  run: (ctx, config) =>
    runRobotImport(ctx, "import-openx", "RLDS", config.path, (input, output) =>
      importRlds({
        input,
        output,
        name: config.name,
        height: config.height,
        width: config.width,
        fps: config.fps,
        keys: { image: config.imageKey, action: config.actionKeys, instruction: config.instructionKey },
        testFraction: config.testFraction,
        seed: config.seed,
        ...(config.maxEpisodes > 0 ? { maxEpisodes: config.maxEpisodes } : {}),
        onEpisode: (done) => ctx.progress(done, config.maxEpisodes > 0 ? config.maxEpisodes : done)
      })
    )
})
