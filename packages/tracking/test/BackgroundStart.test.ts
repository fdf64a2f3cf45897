/**
 * The embedded server starts in the background (docs/engine.md, "Observers and tracking"): the tracker is usable at once,
 * records logged while the server starts are spooled and delivered once it answers; a server that never
 * comes up leaves the run finished and everything spooled, and the next run delivers it.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { Tracker } from "@vw2/core"
import { afterAll, describe, expect, inject, it } from "vitest"
import { type MlflowTrackerShape, layerFromEnv, stopLocalServer } from "../src/index.ts"
import { openTracker, testClient } from "./support/promised.ts"

const uri = inject("mlflowUri")
const homes: Array<string> = []
const newHome = () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-background-"))
  homes.push(home)
  return home
}
const saved = { uri: process.env.MLFLOW_TRACKING_URI }
const restoreEnv = () => {
  if (saved.uri === undefined) delete process.env.MLFLOW_TRACKING_URI
  else process.env.MLFLOW_TRACKING_URI = saved.uri
}

afterAll(async () => {
  restoreEnv()
  for (const home of homes) {
    await stopLocalServer({ home })
    fs.rmSync(home, { recursive: true, force: true })
  }
})

const points = Array.from({ length: 3000 }, (_, i) => ({ key: "loss", value: 1 / (i + 1), step: i, timestamp: 1_700_000_000_000 + i }))

/** One small `vw2 run` against the tracker the CLI would get for `home`. */
const reportRun = (home: string, experiment: string, log: (line: string) => void) =>
  Effect.gen(function*() {
    const started = Date.now()
    const tracker = (yield* Tracker.Tracker) as MlflowTrackerShape
    const stateAtStart = tracker.state()
    const parent = yield* tracker.startExperimentRun({ experiment, configHash: "b".repeat(64), params: { lr: "0.1" }, tags: {} })
    const stage = yield* tracker.startStageRun(parent, { step: "train", stage: "fit", stageHash: "h", cache: { _tag: "miss" }, params: { lr: "0.1" }, tags: {} })
    const readyAfterMs = Date.now() - started
    for (let i = 0; i < points.length; i += 500) yield* tracker.logMetrics(stage, points.slice(i, i + 500))
    yield* tracker.endRun(stage, "FINISHED")
    yield* tracker.endRun(parent, "FINISHED")
    const stateBeforeFlush = tracker.state()
    yield* tracker.flush
    return { tracker, parent, stage, readyAfterMs, stateAtStart, stateBeforeFlush }
  }).pipe(Effect.provide(layerFromEnv({ home, log })))

describe("MLflow starting in the background", () => {
  it("is usable at once; records logged while the server starts are delivered once it is up", async () => {
    delete process.env.MLFLOW_TRACKING_URI
    const home = newHome()
    const lines: Array<string> = []
    const run = await Effect.runPromise(reportRun(home, `background-${Date.now()}`, (line) => lines.push(line)))
    restoreEnv()
    // the first records did not wait for the server: provisional ids, state "starting"
    expect(run.stateAtStart).toBe("starting")
    expect(run.stateBeforeFlush).toBe("starting")
    expect(run.parent).toMatch(/^pending-/)
    expect(run.readyAfterMs).toBeLessThan(5000)
    // flush waited for the server and delivered everything
    expect(run.tracker.state()).toBe("up")
    expect(run.tracker.degraded()).toBe(false)
    const server = JSON.parse(fs.readFileSync(path.join(home, "mlflow", "server.json"), "utf8")) as { url: string }
    expect(lines.join("\n")).toContain(`MLflow UI: ${server.url}`)
    const client = testClient({ trackingUri: server.url, auth: undefined })
    const parentId = run.tracker.resolveRunId(run.parent)!
    const stageId = run.tracker.resolveRunId(run.stage)!
    expect(stageId).toMatch(/^[0-9a-f]{32}$/)
    const stage = await client.getRun(stageId)
    expect(stage.info.status).toBe("FINISHED")
    expect(stage.tags["mlflow.parentRunId"]).toBe(parentId)
    expect(stage.params).toEqual({ lr: "0.1" })
    expect((await client.getRun(parentId)).info.status).toBe("FINISHED")
    const history = await client.getMetricHistory(stageId, "loss")
    expect(history).toHaveLength(points.length)
    expect(fs.readdirSync(path.join(home, "tracking", "spool")).filter((f) => f.endsWith(".jsonl"))).toEqual([])
    expect(fs.readdirSync(path.join(home, "tracking", "open-runs"))).toEqual([])
    await client.close()
  })

  it("a server that never comes up: the run finishes with everything spooled, and the next run delivers it", async () => {
    const home = newHome()
    const env: NodeJS.ProcessEnv = { ...process.env, VW2_MLFLOW_BIN: "/bin/false" } // "mlflow" exits at once: the start fails
    delete env.MLFLOW_TRACKING_URI
    const first = spawnSync(process.execPath, [path.join(import.meta.dirname, "support", "neverUpRun.ts"), home, `never-up-${Date.now()}`], { encoding: "utf8", env })
    expect(first.status, first.stderr).toBe(0)
    const run = JSON.parse(first.stdout) as { parent: string; stage: string; state: string; degraded: boolean; lines: Array<string> }
    expect(run.parent).toMatch(/^pending-/)
    expect(run.state).toBe("degraded")
    expect(run.degraded).toBe(true)
    const said = run.lines.join("\n")
    expect(said).toMatch(/no MLflow server \(MLflow server at .* did not become healthy \(it exited\)/)
    expect(said).toContain(`records are spooled under ${path.join(home, "tracking", "spool")}`)
    expect(said).toMatch(/delivered by the next vw2 run/)
    const spooled = fs.readdirSync(path.join(home, "tracking", "spool")).filter((f) => f.endsWith(".jsonl"))
    expect(spooled).toHaveLength(1)
    const records = fs.readFileSync(path.join(home, "tracking", "spool", spooled[0]!), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { t: string }).t)
    expect(records).toEqual(["create", "create", "metrics", "metrics", "metrics", "metrics", "metrics", "metrics", "end", "end"])

    // the next run reaches a server: it claims the dead run's spool and replays it in order
    const next = await openTracker({ trackingUri: uri, home, warn: () => undefined })
    const parentId = next.resolveRunId(run.parent)!
    const stageId = next.resolveRunId(run.stage)!
    expect(next.state()).toBe("up")
    expect(parentId).toMatch(/^[0-9a-f]{32}$/)
    const client = testClient({ trackingUri: uri, auth: undefined })
    const stage = await client.getRun(stageId)
    expect(stage.info.status).toBe("FINISHED")
    expect(stage.tags["mlflow.parentRunId"]).toBe(parentId)
    expect(stage.params).toEqual({ lr: "0.1" })
    expect((await client.getRun(parentId)).info.status).toBe("FINISHED")
    expect(await client.getMetricHistory(stageId, "loss")).toHaveLength(3000)
    expect(fs.readdirSync(path.join(home, "tracking", "spool")).filter((f) => f.endsWith(".jsonl"))).toEqual([])
    expect(fs.readdirSync(path.join(home, "tracking", "open-runs"))).toEqual([])
    await next.close()
    await client.close()
  })
})
