/**
 * `tokenize` for robot demonstrations. The dLDM's tokenize stage reads any dataset in the shared layout, but
 * declares its input as "video-dataset"; MiniCALVIN's demos are a "robot-dataset" (frames + actions), so the
 * typed wiring needs this twin with the robot kind. Same name, version, config and code as `tokenize`.
 */
import { defineStage } from "@vw2/core"
import { Effect } from "effect"
import { runTokenize, tokenizeStage } from "./internal/stages.ts"
import { StageError } from "@vw2/core"

export const tokenizeRobotStage = defineStage({
  name: tokenizeStage.name,
  version: tokenizeStage.version,
  config: tokenizeStage.config,
  inputs: { dataset: "robot-dataset", checkpoint: "dldm-checkpoint" },
  outputs: { codes: "code-dataset" },
  seeded: false,
  run: (ctx, config, inputs) =>
    Effect.tryPromise({
      try: () => runTokenize(ctx, config, inputs.dataset.dir, inputs.checkpoint.dir),
      catch: (e) => new StageError({ stage: "tokenize", message: e instanceof Error ? e.message : String(e), cause: e })
    })
})
