/**
 * A `vw2 run` whose embedded MLflow server never comes up: "mlflow" is /bin/false, so its start fails.
 * Reports a parent run and a finished stage run with 3000 metric points through the CLI's tracker layer,
 * then prints the provisional ids, the tracker's state and what it said, and exits (its spool is then an
 * orphan the next vw2 process replays).
 *   VW2_MLFLOW_BIN=/bin/false node neverUpRun.ts <home> <experiment>
 */
import { Effect } from "effect"
import { Tracker } from "@vw2/core"
import { type MlflowTrackerShape, layerFromEnv } from "../../src/index.ts"

const [home, experiment] = process.argv.slice(2) as [string, string]
const lines: Array<string> = []
const report = await Effect.runPromise(
  Effect.gen(function*() {
    const tracker = (yield* Tracker.Tracker) as MlflowTrackerShape
    const parent = yield* tracker.startExperimentRun({ experiment, configHash: "e".repeat(64), params: { lr: "0.1" }, tags: {} })
    const stage = yield* tracker.startStageRun(parent, { step: "train", stage: "fit", stageHash: "h", cache: { _tag: "miss" }, params: { lr: "0.1" }, tags: {} })
    const points = Array.from({ length: 3000 }, (_, i) => ({ key: "loss", value: 1 / (i + 1), step: i, timestamp: 1_700_000_000_000 + i }))
    for (let i = 0; i < points.length; i += 500) yield* tracker.logMetrics(stage, points.slice(i, i + 500))
    yield* tracker.endRun(stage, "FINISHED")
    yield* tracker.endRun(parent, "FINISHED")
    yield* tracker.flush
    return { tracker, parent, stage }
  }).pipe(Effect.provide(layerFromEnv({ home, log: (line) => lines.push(line) })))
)
process.stdout.write(JSON.stringify({ parent: report.parent, stage: report.stage, state: report.tracker.state(), degraded: report.tracker.degraded(), lines }) + "\n")
