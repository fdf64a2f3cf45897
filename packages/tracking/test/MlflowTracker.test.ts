import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { Tracker } from "@vw2/core"
import { afterAll, describe, expect, inject, it } from "vitest"
import { formatRunsTable, layer, runsTable } from "../src/index.ts"
import { testClient, openTracker } from "./support/promised.ts"

const uri = inject("mlflowUri")
const client = testClient({ trackingUri: uri, auth: undefined })
const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-tracker-"))
const experiment = `tracker-${Date.now()}`

afterAll(async () => {
  await client.close()
  fs.rmSync(home, { recursive: true, force: true })
})

/** One `vw2 run` as the engine reports it: parent → trial → two stage runs (a miss and a cache hit). */
const reportRun = (lr: string, points: number) =>
  Effect.gen(function*() {
    const tracker = yield* Tracker.Tracker
    const parent = yield* tracker.startExperimentRun({
      experiment,
      configHash: `cafe${lr}`.padEnd(64, "0"),
      params: { "train.lr": lr, "dldm.fsq.levels": "[8,5,5,5]" },
      tags: { "vw2.config_hash": `cafe${lr}`.padEnd(64, "0"), "vw2.backend": "local" }
    })
    const trial = yield* tracker.startTrialRun(parent, { trialId: "t0", seed: 3, params: { "train.lr": lr }, tags: {} })
    const train = yield* tracker.startStageRun(trial, {
      step: "train", stage: "fit", stageHash: `h-${lr}`, cache: { _tag: "miss" }, params: { "train.lr": lr, "train.epochs": "3" }, tags: {}
    })
    const metrics = Array.from({ length: points }, (_, i) => ({ key: i % 2 === 0 ? "loss" : "acc", value: i % 2 === 0 ? 1 / (1 + i) : i / points, step: Math.floor(i / 2), timestamp: 1_700_000_000_000 + i }))
    // the engine streams in slices
    for (let i = 0; i < metrics.length; i += 700) yield* tracker.logMetrics(train, metrics.slice(i, i + 700))
    const manifest = path.join(home, `manifest-${lr}.json`)
    fs.writeFileSync(manifest, JSON.stringify({ lr }))
    yield* tracker.logArtifacts(train, [{ localPath: manifest, artifactPath: "outputs/model/manifest.json" }])
    yield* tracker.setTags(train, { "vw2.note": "trained" })
    yield* tracker.endRun(train, "FINISHED")
    const reused = yield* tracker.startStageRun(trial, {
      step: "eval", stage: "evaluate", stageHash: "h-eval", cache: { _tag: "hit", producedBy: train }, params: {}, tags: {}
    })
    yield* tracker.endRun(reused, "FINISHED")
    yield* tracker.endRun(trial, "FINISHED")
    yield* tracker.endRun(parent, "FAILED")
    yield* tracker.flush
    return { parent, trial, train, reused, describe: tracker.describe(), degraded: tracker.degraded() }
  }).pipe(Effect.provide(layer({ trackingUri: uri, home })))

describe("MLflow Tracker layer", () => {
  it("records the run tree with params, tags, metrics (steps and values), artifacts and statuses", async () => {
    const ids = await Effect.runPromise(reportRun("0.01", 4000))
    expect(ids.degraded).toBe(false)
    const [parent, trial, train, reused] = await Promise.all([ids.parent, ids.trial, ids.train, ids.reused].map((id) => client.getRun(id)))
    const exp = await client.getExperimentByName(experiment)
    expect(new Set([parent, trial, train, reused].map((r) => r!.info.experimentId))).toEqual(new Set([exp!.experimentId]))
    expect(ids.describe).toBe(`${uri}/#/experiments/${exp!.experimentId}?workflowType=machine_learning`)

    expect(parent!.tags["mlflow.parentRunId"]).toBeUndefined()
    expect(trial!.tags["mlflow.parentRunId"]).toBe(ids.parent)
    expect(train!.tags["mlflow.parentRunId"]).toBe(ids.trial)
    expect(reused!.tags["mlflow.parentRunId"]).toBe(ids.trial)

    expect(parent!.tags["vw2.config_hash"]).toMatch(/^cafe0\.01/)
    expect(parent!.tags["mlflow.user"]).toBe(os.userInfo().username)
    expect(parent!.tags["mlflow.source.git.commit"]).toMatch(/^[0-9a-f]{40}$/)
    expect(parent!.tags["vw2.command"]).toBeDefined()
    expect(parent!.tags["vw2.backend"]).toBe("local")
    expect(parent!.params).toEqual({ "train.lr": "0.01", "dldm.fsq.levels": "[8,5,5,5]" })
    expect(trial!.tags["vw2.seed"]).toBe("3")

    expect(train!.tags).toMatchObject({ "vw2.stage": "fit", "vw2.step": "train", "vw2.stage_hash": "h-0.01", "vw2.cache": "miss", "vw2.note": "trained" })
    expect(reused!.tags["vw2.cache"]).toBe(`hit:${ids.train}`)
    expect(train!.params).toEqual({ "train.lr": "0.01", "train.epochs": "3" })

    expect([parent, trial, train, reused].map((r) => r!.info.status)).toEqual(["FAILED", "FINISHED", "FINISHED", "FINISHED"])
    expect(train!.info.endTime).toBeGreaterThan(0)

    const loss = (await client.getMetricHistory(ids.train, "loss")).sort((a, b) => a.step - b.step)
    expect(loss).toHaveLength(2000)
    expect(loss.map((p) => p.step)).toEqual(Array.from({ length: 2000 }, (_, i) => i))
    expect(loss[10]!.value).toBeCloseTo(1 / 21, 12)
    expect(loss[10]!.timestamp).toBe(1_700_000_000_000 + 20)
    expect(await client.getMetricHistory(ids.train, "acc")).toHaveLength(2000)

    const files = await client.listArtifacts(train!.info.artifactUri, "outputs/model")
    expect(files.map((f) => f.path)).toEqual(["outputs/model/manifest.json"])
  })

  it("vw2 runs: compares trials by the params that differ and their stages' metrics", async () => {
    await Effect.runPromise(reportRun("0.1", 10))
    const table = await runsTable(experiment, { trackingUri: uri, metrics: ["train/loss"] })
    expect(table.rows).toHaveLength(2)
    expect(table.differingParams).toEqual(["train.lr"])
    expect(table.metricKeys).toEqual(["train/loss"])
    const lrs = table.rows.map((r) => r.params["train.lr"])
    expect(lrs).toEqual(["0.01", "0.1"]) // oldest first
    expect(table.rows[0]!.metrics["train/loss"]).toBeCloseTo(1 / 3999, 12) // latest step's value
    const text = formatRunsTable(table)
    expect(text.split("\n")[0]).toMatch(/run\s+status\s+train\.lr\s+train\/loss/)
    expect(text).toContain("0.1")
    const stages = await runsTable(experiment, { trackingUri: uri, level: "stage" })
    expect(stages.rows).toHaveLength(4)
    expect((await runsTable("no-such-experiment", { trackingUri: uri })).experimentId).toBeUndefined()
  })
})

describe("MLflow Tracker backlog", () => {
  it("moves a metric backlog larger than maxQueuedPoints to the spool and still delivers every point", async () => {
        const tracker = await openTracker({ trackingUri: uri, home, maxQueuedPoints: 3000, warn: () => undefined })
    const run = await tracker.startExperimentRun({ experiment, configHash: "b".repeat(64), params: {}, tags: {} })
    for (let slice = 0; slice < 20; slice++) {
      tracker.logMetrics(run, Array.from({ length: 1000 }, (_, i) => ({ key: "fast", value: slice * 1000 + i, step: slice * 1000 + i, timestamp: 1 })))
    }
    expect(tracker.spills()).toBeGreaterThan(0)
    expect(tracker.degraded()).toBe(false) // a backlog is not an outage
    tracker.endRun(run, "FINISHED")
    await tracker.flush()
    await tracker.close()
    const points = await client.getMetricHistory(run, "fast")
    expect(points).toHaveLength(20_000)
    expect(new Set(points.map((p) => p.step)).size).toBe(20_000)
    expect((await client.getRun(run)).info.status).toBe("FINISHED")
  })
})
