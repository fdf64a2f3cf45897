/**
 * The server dies mid-run and comes back on the same port and backend: nothing is lost, statuses are
 * right, and a driver killed while the server was down has its spool replayed (and its open run marked
 * KILLED) by the next tracker.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, inject, it } from "vitest"

import { freeTestPort, killServer, startServer, type TestServer } from "./support/mlflowServer.ts"
import { testClient, openTracker } from "./support/promised.ts"

const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-outage-"))
const sharedDir = inject("mlflowDir")
let ownDir: string | undefined
const experiment = `outage-${Date.now()}`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The suite's server when we own it; otherwise one of our own (we must be allowed to kill it). */
const server = async (): Promise<TestServer> => {
  if (sharedDir !== "") return { url: inject("mlflowUri"), port: inject("mlflowPort"), dir: sharedDir }
  ownDir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-outage-server-"))
  return startServer(ownDir, await freeTestPort())
}

afterAll(async () => {
  if (ownDir !== undefined) {
    await killServer(ownDir)
    fs.rmSync(ownDir, { recursive: true, force: true })
  }
  fs.rmSync(home, { recursive: true, force: true })
})

describe("tracking through a server outage", () => {
  it("spools while the server is down, replays in order when it is back, and a second tracker replays a dead driver's spool", async () => {
    const srv = await server()
    const warnings: Array<string> = []
    const tracker = await openTracker({ trackingUri: srv.url, home, warn: (m) => warnings.push(m), probeMs: { min: 200, max: 1000 } })
    const parent = await tracker.startExperimentRun({ experiment, configHash: "f".repeat(64), params: { a: "1" }, tags: {} })
    const trial = await tracker.startTrialRun(parent, { trialId: "t0", seed: 0, params: {}, tags: {} })
    const stage = await tracker.startStageRun(trial, { step: "train", stage: "fit", stageHash: "h1", cache: { _tag: "miss" }, params: { lr: "0.1" }, tags: {} })
    expect(stage).not.toMatch(/^pending-/) // server up: real ids right away

    // a stage streams 40 slices of 500 points; the server is killed after the 10th
    let step = 0
    const emit = () => {
      tracker.logMetrics(stage, Array.from({ length: 500 }, () => ({ key: "loss", value: 1 / (step + 1), step: step++, timestamp: 1_700_000_000_000 + step })))
    }
    for (let i = 0; i < 10; i++) {
      emit()
      await sleep(20)
    }
    await killServer(srv.dir)
    for (let i = 10; i < 40; i++) {
      emit()
      await sleep(10)
    }
    await tracker.flush()
    expect(tracker.degraded()).toBe(true)
    expect(warnings.join("\n")).toMatch(/tracking degraded/)

    // runs started during the outage get provisional ids; a cache hit may point at one of them
    const late = await tracker.startStageRun(trial, { step: "eval", stage: "evaluate", stageHash: "h2", cache: { _tag: "miss" }, params: {}, tags: {} })
    expect(late).toMatch(/^pending-/)
    tracker.logMetrics(late, [{ key: "acc", value: Number.NaN, step: 0, timestamp: 1 }, { key: "acc", value: 0.75, step: 1, timestamp: 2 }])
    tracker.endRun(late, "FINISHED")
    const hit = await tracker.startStageRun(trial, { step: "eval2", stage: "evaluate", stageHash: "h2", cache: { _tag: "hit", producedBy: late }, params: {}, tags: {} })
    tracker.endRun(hit, "FINISHED")
    tracker.endRun(stage, "FINISHED")
    tracker.endRun(trial, "FINISHED")
    tracker.endRun(parent, "FINISHED")

    // meanwhile another vw2 process runs against the dead server and is killed (kill -9)
    const killed = spawnSync(process.execPath, [path.join(import.meta.dirname, "support", "killedDriver.ts"), srv.url, home, experiment, "3000"], { encoding: "utf8" })
    expect(killed.signal).toBe("SIGKILL")
    const driver = JSON.parse(killed.stdout) as { parent: string; stage: string; degraded: boolean }
    expect(driver.degraded).toBe(true)
    expect(fs.readdirSync(path.join(home, "tracking", "spool")).filter((f) => f.endsWith(".jsonl")).length).toBe(2)

    // the server comes back on the same port and backend
    await startServer(srv.dir, srv.port)
    await tracker.flush()
    expect(tracker.degraded()).toBe(false)
    const client = testClient({ trackingUri: srv.url, auth: undefined })
    const history = await client.getMetricHistory(stage, "loss")
    expect(history).toHaveLength(20_000) // every point emitted, before and during the outage
    expect(new Set(history.map((p) => p.step)).size).toBe(20_000)
    expect(history.find((p) => p.step === 12_345)?.value).toBeCloseTo(1 / 12_346, 12)
    expect(warnings.filter((w) => !/degraded|recovered/.test(w))).toEqual([])
    const lateId = tracker.resolveRunId(late)!
    const hitId = tracker.resolveRunId(hit)!
    const [p, t, s, l, h] = await Promise.all([parent, trial, stage, lateId, hitId].map((id) => client.getRun(id)))
    expect([p, t, s, l, h].map((r) => r!.info.status)).toEqual(["FINISHED", "FINISHED", "FINISHED", "FINISHED", "FINISHED"])
    expect(l!.tags["mlflow.parentRunId"]).toBe(trial)
    expect(h!.tags["vw2.cache"]).toBe(`hit:${lateId}`) // the provisional id was translated
    expect((await client.getMetricHistory(lateId, "acc")).map((m) => m.value).sort()).toEqual([0.75, Number.NaN])
    await tracker.close()

    // the next vw2 process: claims the dead driver's spool, replays it, closes its open run as KILLED
    const next = await openTracker({ trackingUri: srv.url, home, warn: (m) => warnings.push(m) })
    const deadParent = next.resolveRunId(driver.parent)!
    const deadStage = next.resolveRunId(driver.stage)!
    expect(deadParent).toMatch(/^[0-9a-f]{32}$/)
    expect((await client.getRun(deadParent)).info.status).toBe("KILLED")
    expect((await client.getRun(deadStage)).info.status).toBe("FINISHED")
    expect((await client.getRun(deadStage)).tags["mlflow.parentRunId"]).toBe(deadParent)
    expect(await client.getMetricHistory(deadStage, "x")).toHaveLength(3000)
    expect(fs.readdirSync(path.join(home, "tracking", "spool")).filter((f) => f.endsWith(".jsonl"))).toEqual([])
    expect(fs.readdirSync(path.join(home, "tracking", "open-runs"))).toEqual([])
    await next.close()
    await client.close()
  })
})
