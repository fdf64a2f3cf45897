/**
 * A vw2 driver that dies hard: it opens a tracker while the server is down (everything is spooled),
 * reports a parent run and a finished stage run with metrics, prints their ids and SIGKILLs itself
 * without ending the parent. Used by Outage.test.ts: the next tracker must replay its spool and mark
 * the parent KILLED.
 *   node killedDriver.ts <trackingUri> <home> <experiment> <points>
 */
import { openTracker } from "./promised.ts"

const [uri, home, experiment, points] = process.argv.slice(2) as [string, string, string, string]
const tracker = await openTracker({ trackingUri: uri, home, warn: () => undefined, probeMs: { min: 60_000, max: 60_000 } })
const parent = await tracker.startExperimentRun({ experiment, configHash: "dead".padEnd(64, "0"), params: { who: "killed driver" }, tags: {} })
const stage = await tracker.startStageRun(parent, { step: "s", stage: "s", stageHash: "h", cache: { _tag: "miss" }, params: {}, tags: {} })
const n = Number(points)
tracker.logMetrics(stage, Array.from({ length: n }, (_, i) => ({ key: "x", value: i, step: i, timestamp: 1000 + i })))
tracker.endRun(stage, "FINISHED")
await tracker.flush()
process.stdout.write(JSON.stringify({ parent, stage, degraded: tracker.degraded() }) + "\n", () => process.kill(process.pid, "SIGKILL"))
