/**
 * A vw2 driver that is killed with -9 while it works: it opens a tracker, starts an experiment run, a
 * trial run and a stage run (step named by argv), printing each id as it gets it, then waits to be killed.
 * Used by Records.test.ts: the next vw2 process must close the runs it left RUNNING as KILLED.
 *   node orphanDriver.ts <trackingUri> <home> <experiment> <step>
 */
import { openTracker } from "./promised.ts"

const [uri, home, experiment, step] = process.argv.slice(2) as [string, string, string, string]
const say = (line: Record<string, string>) => process.stdout.write(JSON.stringify(line) + "\n")
const tracker = await openTracker({ trackingUri: uri, home, warn: () => undefined })
const parent = await tracker.startExperimentRun({ experiment, configHash: "dead".padEnd(64, "1"), params: {}, tags: {} })
say({ parent })
const trial = await tracker.startTrialRun(parent, { trialId: "t0", seed: 0, params: {}, tags: {} })
say({ trial })
// resolves once the server answered the create (never, when the answer is withheld)
const stage = await tracker.startStageRun(trial, { step, stage: step, stageHash: "h", cache: { _tag: "miss" }, params: {}, tags: {} })
say({ stage })
setInterval(() => undefined, 60_000)
