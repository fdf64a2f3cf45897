/**
 * Stage `generate-minicalvin`: MiniCALVIN expert demonstrations in the shared layout ("robot-dataset"),
 * train and test split by scene variant (CALVIN's ABC → D), plus an Open-X stand-in ("robot-dataset"
 * `openx`): separate demonstrations rendered for several embodiments, written as RLDS TFRecord shards
 * (kept under `openx/rlds/`) and imported back through the RLDS reader, so co-training exercises the real
 * Open-X path. Optionally a CALVIN-layout export under `dataset/calvin/`. Statistics and a contact sheet
 * are uploaded. The data is a pure function of the config (its own `seed`): the stage is not seeded.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { ConfigField, defineStage, StageError } from "@vw2/core"
import { Effect, Schema } from "effect"
import { importRlds } from "../formats/importRlds.ts"
import { EMBODIMENTS, generateMiniCalvin } from "../minicalvin/Demos.ts"
import { robotContactSheet } from "../minicalvin/Sheet.ts"
import { LAYOUTS } from "../minicalvin/World.ts"

const { intBetween } = ConfigField

const variants = (fallback: ReadonlyArray<string>) =>
  Schema.Array(Schema.Literals(Object.keys(LAYOUTS))).check(Schema.isMinLength(1)).pipe(Schema.withDecodingDefaultKey(Effect.succeed([...fallback])))
const EMBODIMENT_NAMES = EMBODIMENTS.map((e) => e.name)

export const GenerateMiniCalvinConfig = Schema.Struct({
  /** play sequences (chains of `chainLength` subtasks; one episode per subtask) in the train split */
  trainSequences: intBetween(0, 1_000_000, 12),
  /** play sequences in the test split (unseen scene variants) */
  testSequences: intBetween(0, 1_000_000, 4),
  trainVariants: variants(["A", "B", "C"]),
  testVariants: variants(["D"]),
  chainLength: intBetween(1, 9, 5),
  /** square frame size */
  size: intBetween(16, 128, 32),
  /** the dataset's own seed */
  seed: intBetween(0, 2 ** 31 - 1, 0),
  /** the Open-X stand-in: sequences per embodiment (0: an empty dataset) and which embodiments */
  openx: Schema.Struct({
    sequences: intBetween(0, 1_000_000, 8),
    embodiments: Schema.Array(Schema.Literals(EMBODIMENT_NAMES)).check(Schema.isMinLength(1)).pipe(Schema.withDecodingDefaultKey(Effect.succeed([...EMBODIMENT_NAMES])))
  }).pipe(Schema.withDecodingDefaultKey(Effect.succeed({}))),
  /** also export the demonstrations in CALVIN's own layout (dataset/calvin/{training,validation}) */
  calvinExport: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(false)))
})
export type GenerateMiniCalvinConfig = typeof GenerateMiniCalvinConfig.Type

export const generateMiniCalvinStage = defineStage({
  name: "generate-minicalvin",
  version: "1",
  config: GenerateMiniCalvinConfig,
  inputs: {},
  outputs: { dataset: "robot-dataset", openx: "robot-dataset" },
  seeded: false,
  resources: () => ({ cpus: 1, memoryMb: 512 }),
  run: (ctx, config) =>
    Effect.try({
      try: () => {
        const started = performance.now()
        const dir = ctx.outputDir("dataset")
        const total = config.trainSequences + config.testSequences + config.openx.sequences
        const { manifest } = generateMiniCalvin({
          output: dir,
          name: "minicalvin",
          seed: config.seed,
          trainSequences: config.trainSequences,
          testSequences: config.testSequences,
          trainVariants: config.trainVariants,
          testVariants: config.testVariants,
          chainLength: config.chainLength,
          size: config.size,
          ...(config.calvinExport ? { calvinDir: path.join(dir, "calvin") } : {}),
          onSequence: (done) => ctx.progress(done, total, "minicalvin")
        })
        // Open-X stand-in: its own sequences (a derived seed, all scene variants), RLDS only, then imported
        const openxDir = ctx.outputDir("openx")
        const rldsDir = path.join(openxDir, "rlds")
        generateMiniCalvin({
          output: path.join(ctx.scratchDir, "openx-source"),
          name: "minicalvin-openx-source",
          seed: config.seed ^ 0x0be1,
          trainSequences: config.openx.sequences,
          testSequences: 0,
          trainVariants: Object.keys(LAYOUTS),
          chainLength: config.chainLength,
          size: config.size,
          rldsDir,
          embodiments: config.openx.embodiments,
          onSequence: (done) => ctx.progress(config.trainSequences + config.testSequences + done, total, "openx stand-in")
        })
        const openx = importRlds({ input: rldsDir, output: openxDir, name: "openx-standin", height: config.size, width: config.size, fps: 15, seed: config.seed })
        const seconds = (performance.now() - started) / 1000
        fs.writeFileSync(path.join(dir, "stats.json"), JSON.stringify(manifest.stats, null, 1))
        ctx.upload("dataset/stats.json")
        if (Object.values(manifest.splits).some((ids) => ids.length > 0)) {
          fs.writeFileSync(path.join(dir, "contact-sheet.png"), robotContactSheet(dir))
          ctx.upload("dataset/contact-sheet.png")
        }
        const stats = manifest.stats as { episodes: number; frames: number }
        const openxStats = openx.stats as { episodes: number; frames: number }
        ctx.metrics({ "minicalvin/episodes": stats.episodes, "minicalvin/frames": stats.frames, "minicalvin/openx_episodes": openxStats.episodes, "minicalvin/openx_frames": openxStats.frames, "minicalvin/generate_seconds": seconds }, 0)
        ctx.log(`generated ${stats.episodes} MiniCALVIN episodes (${stats.frames} frames) and an Open-X stand-in of ${openxStats.episodes} episodes in ${seconds.toFixed(2)} s`)
      },
      catch: (e) => new StageError({ stage: "generate-minicalvin", message: e instanceof Error ? e.message : String(e), cause: e })
    })
})
