/** The run body the robot-dataset importers share: resolve and check the source, import, report counts. */
import { type StageContext, StageError } from "@vw2/core"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { DatasetManifest } from "../dataset/Manifest.ts"

export const runRobotImport = (
  ctx: StageContext,
  stage: string,
  /** what the log line calls the episodes ("CALVIN", "RLDS") */
  source: string,
  /** config.path: the source, absolute or relative to the working directory */
  configPath: string,
  importInto: (input: string, output: string) => DatasetManifest
): Effect.Effect<void, StageError> =>
  Effect.try({
    try: () => {
      const input = path.resolve(configPath)
      if (!fs.existsSync(input)) throw new Error(`${ctx.step}.path: ${input} does not exist`)
      const started = performance.now()
      const manifest = importInto(input, ctx.outputDir("dataset"))
      const stats = manifest.stats as { episodes: number; frames: number }
      ctx.metrics({ [`${stage}/episodes`]: stats.episodes, [`${stage}/frames`]: stats.frames, [`${stage}/import_seconds`]: (performance.now() - started) / 1000 }, 0)
      ctx.log(`imported ${stats.episodes} ${source} episodes (${stats.frames} frames) from ${input}`)
    },
    catch: (e) => new StageError({ stage, message: e instanceof Error ? e.message : String(e), cause: e })
  })
