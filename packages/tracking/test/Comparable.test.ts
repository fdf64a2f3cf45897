/**
 * A 3-point × 2-seed sweep of tiny stages (fixtures/comparable.ts) through the scheduler, the local executor
 * and a real MLflow server, read back through the REST API: trial runs carry their params and rolled-up
 * final metrics, the experiment run per-group mean/std/CI metrics and rollup.json, stage runs distinct
 * names, params (also with an empty config) and system metrics; a rerun under another experiment gets
 * cache-hit runs with the producer's metrics; a failing stage leaves its error tag and stage.log.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Layer } from "effect"
import { ArtifactStore, defineExperiment, Executor, LocalExecutor, parseOverride, planExperiment, runPlan, Tracker } from "@vw2/core"
import type { Override, RunSummary } from "@vw2/core"
import { afterAll, describe, expect, inject, it } from "vitest"
import { type Run } from "../src/index.ts"
import { invalidKeyReason } from "../src/Validation.ts"
import { accuracyOf, config, lossAt, pipeline } from "./fixtures/comparable.ts"
import { testClient, openTracker } from "./support/promised.ts"

const fixture = fileURLToPath(new URL("./fixtures/comparable.ts", import.meta.url))
const uri = inject("mlflowUri")
const client = testClient({ trackingUri: uri, auth: undefined })
const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-comparable-"))
const stamp = Date.now()

afterAll(async () => {
  await client.close()
  fs.rmSync(home, { recursive: true, force: true })
})

const sweep = (name: string) => defineExperiment({ name, pipeline, config, sweep: { grid: { "train.lr": [0.1, 0.2, 0.4] }, objective: { metric: "score/accuracy", mode: "max" } }, seeds: [1, 2] })

/** Runs the plan; returns its summary with the experiment run's real MLflow id (a slow server may have made it provisional). */
const run = async (experiment: ReturnType<typeof sweep>, overrides: ReadonlyArray<Override> = []): Promise<RunSummary> => {
  const executor = LocalExecutor.makeLocalExecutor({ cpus: 2 })
  const tracker = await openTracker({ trackingUri: uri, home: path.join(home, "vw2"), probeMs: { min: 200, max: 1000 } })
  try {
    const summary = await Effect.runPromise(
      runPlan({ plan: planExperiment(experiment, overrides), experimentFile: fixture, systemMetricsMs: 250 }).pipe(
        Effect.provide(Layer.mergeAll(
          ArtifactStore.layer(path.join(home, "vw2")),
          Layer.succeed(Executor, executor),
          Layer.succeed(Tracker.Tracker, tracker.shape)
        ))
      )
    )
    // on a loaded machine the server may miss a health probe: wait for the spool to be replayed
    for (let i = 0; i < 60 && tracker.degraded(); i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      await tracker.flush()
    }
    expect(tracker.degraded()).toBe(false)
    return { ...summary, experimentRunId: tracker.resolveRunId(summary.experimentRunId)! }
  } finally {
    await tracker.close()
    executor.close()
  }
}

const children = (run: Run): Promise<Array<Run>> =>
  client.searchRuns({ experimentIds: [run.info.experimentId], filter: `tags.\`mlflow.parentRunId\` = '${run.info.runId}'` })

const readArtifact = async (r: Run, name: string): Promise<string> => {
  const file = path.join(home, "downloads", r.info.runId, name)
  await client.downloadArtifact(r.info.artifactUri, name, file)
  return fs.readFileSync(file, "utf8")
}

const value = (r: Run, key: string): number | undefined => r.metrics[key]?.value

/** the run tree of one `runPlan`: parent, trials by label, stage runs by `<step> · <label>` */
const readTree = async (summary: RunSummary) => {
  const parent = await client.getRun(summary.experimentRunId)
  const trials = await children(parent)
  const stages = (await Promise.all(trials.map(children))).flat()
  return { parent, trials: new Map(trials.map((t) => [t.info.runName, t])), stages: new Map(stages.map((s) => [s.info.runName, s])), stageCount: stages.length }
}

const lrs = [0.1, 0.2, 0.4]
const seeds = [1, 2]
const finalLoss = (lr: number, seed: number) => lossAt(lr, seed, config.train.steps - 1)

describe("comparable runs in MLflow", () => {
  let first: Awaited<ReturnType<typeof readTree>>

  it("a sweep's trial runs carry params and rolled-up metrics; the experiment run per-group statistics and rollup.json", async () => {
    const summary = await run(sweep(`comparable-${stamp}`))
    expect(summary.status).toBe("succeeded")
    first = await readTree(summary)
    const { parent, trials, stages } = first

    // trial runs: named by their label, swept params, final metrics of their stages as <step>/<metric>
    expect([...trials.keys()].sort()).toEqual(lrs.flatMap((lr) => seeds.map((seed) => `lr=${lr} seed=${seed}`)).sort())
    for (const lr of lrs) {
      for (const seed of seeds) {
        const trial = trials.get(`lr=${lr} seed=${seed}`)!
        expect(trial.params["train.lr"]).toBe(String(lr))
        expect(value(trial, "train/loss")).toBeCloseTo(finalLoss(lr, seed), 12)
        expect(value(trial, "score/accuracy")).toBeCloseTo(accuracyOf(lr, seed), 12)
        expect(value(trial, "data/rows")).toBe(8)
        expect(trial.metrics["score/score/accuracy"]).toBeUndefined()
      }
    }

    // the experiment run: per trial group (same lr, both seeds) n, mean, std and the bootstrap CI
    const groups = { p0: 0.1, p1: 0.2, p2: 0.4 }
    for (const [group, lr] of Object.entries(groups)) {
      const [a, b] = seeds.map((seed) => finalLoss(lr, seed)) as [number, number]
      expect(parent.tags[`vw2.group.${group}`]).toBe(`lr=${lr}`)
      expect(value(parent, `train/loss/${group}/n`)).toBe(2)
      expect(value(parent, `train/loss/${group}/mean`)).toBeCloseTo((a + b) / 2, 12)
      expect(value(parent, `train/loss/${group}/std`)).toBeCloseTo(Math.abs(a - b) / Math.SQRT2, 12)
      // with two values the resampled means are a, (a+b)/2 and b: the 95 % interval spans both values
      expect(value(parent, `train/loss/${group}/ci95_low`)).toBeCloseTo(Math.min(a, b), 12)
      expect(value(parent, `train/loss/${group}/ci95_high`)).toBeCloseTo(Math.max(a, b), 12)
      expect(value(parent, `score/accuracy/${group}/mean`)).toBeCloseTo((accuracyOf(lr, 1) + accuracyOf(lr, 2)) / 2, 12)
    }
    expect(Object.keys(parent.metrics).filter((k) => invalidKeyReason(k) !== undefined)).toEqual([])
    // sweep.objective: the highest mean score/accuracy is lr 0.4's group
    expect(parent.tags["vw2.best_group"]).toBe("p2 lr=0.4")

    const rollup = JSON.parse(await readArtifact(parent, "rollup.json")) as {
      groups: Array<{ id: string; label: string; trials: Array<{ id: string; seed: number; runId: string }>; metrics: Record<string, { n: number; mean: number; std: number; ci95: [number, number] }> }>
    }
    expect(rollup.groups.map((g) => [g.id, g.label])).toEqual([["p0", "lr=0.1"], ["p1", "lr=0.2"], ["p2", "lr=0.4"]])
    for (const group of rollup.groups) {
      expect(group.trials.map((t) => t.runId).sort()).toEqual(seeds.map((seed) => trials.get(`${group.label} seed=${seed}`)!.info.runId).sort())
      expect(group.metrics["train/loss"]!.mean).toBe(value(parent, `train/loss/${group.id}/mean`))
      expect(group.metrics["train/loss"]!.ci95).toEqual([value(parent, `train/loss/${group.id}/ci95_low`), value(parent, `train/loss/${group.id}/ci95_high`)])
    }

    // stage runs: one per trial × step, each with its own name
    expect(first.stageCount).toBe(18)
    expect(stages.size).toBe(18)
    const score = stages.get("score · lr=0.2 seed=1")!
    // an empty config still records what the stage ran on
    expect(score.params["input.model"]).toMatch(/^train\.model@[0-9a-f]{12}$/)
    expect(value(score, "score/accuracy")).toBeCloseTo(accuracyOf(0.2, 1), 12)
    const train = stages.get("train · lr=0.4 seed=2")!
    expect(train.params).toMatchObject({ lr: "0.4", steps: "5", seed: "2", "input.table": expect.stringMatching(/^data\.table@/) })
    // system metrics under MLflow's names, sampled during the stage and at its end
    for (const key of ["system/cpu_utilization_percentage", "system/system_memory_usage_megabytes", "system/system_memory_usage_percentage"]) {
      expect(value(train, key), key).toBeGreaterThanOrEqual(0)
    }
    expect((await client.getMetricHistory(train.info.runId, "system/system_memory_usage_megabytes")).length).toBeGreaterThanOrEqual(2)
    // a stage that succeeded keeps its log too
    expect(await readArtifact(train, "stage.log")).toContain("trained with lr=0.4")

    // the dataset is shared by all six trials: one run computed it, the other five copy its metrics
    const dataRuns = lrs.flatMap((lr) => seeds.map((seed) => stages.get(`data · lr=${lr} seed=${seed}`)!))
    const producers = dataRuns.filter((r) => r.tags["vw2.cache"] === "miss")
    expect(producers).toHaveLength(1)
    for (const copy of dataRuns.filter((r) => r !== producers[0])) {
      expect(copy.tags["vw2.metrics_copied_from"]).toBe(producers[0]!.info.runId)
      expect(value(copy, "rows")).toBe(8)
    }
  })

  it("a rerun under another experiment: cache-hit stage runs carry the producer's final metrics and point at it", async () => {
    const summary = await run(sweep(`comparable-again-${stamp}`))
    expect(summary.results.every((r) => r.status === "cached")).toBe(true)
    const again = await readTree(summary)
    expect(again.parent.info.experimentId).not.toBe(first.parent.info.experimentId)
    expect(again.stageCount).toBe(18)
    for (const [name, hit] of again.stages) {
      const producerId = /^hit:([0-9a-f]{32})$/.exec(hit.tags["vw2.cache"] ?? "")?.[1]
      expect(producerId, name).toBeDefined()
      expect(hit.tags["vw2.metrics_copied_from"]).toBe(producerId)
      const producer = await client.getRun(producerId!)
      expect(producer.info.experimentId).toBe(first.parent.info.experimentId)
      const stageMetrics = (r: Run) => Object.fromEntries(Object.entries(r.metrics).filter(([k]) => !k.startsWith("system/")).map(([k, m]) => [k, m.value]))
      expect(stageMetrics(hit), name).toEqual(stageMetrics(producer))
      expect(Object.keys(stageMetrics(hit)).length).toBeGreaterThan(0)
    }
    // the trial runs and the roll-up read the same from cached stages, CI bounds included
    for (const [label, trial] of again.trials) expect(value(trial, "train/loss")).toBe(value(first.trials.get(label)!, "train/loss"))
    const rolled = (r: Run) => Object.fromEntries(Object.entries(r.metrics).filter(([k]) => /\/p\d\//.test(k)).map(([k, m]) => [k, m.value]))
    expect(Object.keys(rolled(again.parent)).length).toBe(3 * 3 * 5)
    expect(rolled(again.parent)).toEqual(rolled(first.parent))
  })

  it("a failing stage leaves its error as a tag (cut to MLflow's limit) and its log as stage.log", async () => {
    const failing = defineExperiment({ name: `comparable-fail-${stamp}`, pipeline, config })
    const summary = await run(failing, [parseOverride("train.fail=true")])
    expect(summary.status).toBe("failed")
    const tree = await readTree(summary)
    // a single trial: stage runs are named by their step alone
    expect([...tree.stages.keys()].sort()).toEqual(["data", "score", "train"])
    const train = tree.stages.get("train")!
    expect(train.info.status).toBe("FAILED")
    const error = train.tags["vw2.error"]!
    expect(error).toContain("train failed on purpose")
    expect(Array.from(error).length).toBeLessThanOrEqual(8000)
    expect(error).toMatch(/more characters cut; see stage\.log\]$/)
    expect((await client.listArtifacts(train.info.artifactUri)).map((f) => f.path)).toContain("stage.log")
    const log = await readArtifact(train, "stage.log")
    expect(log).toContain("trained with lr=0.1") // ctx.log
    expect(log).toContain("train: diverged at lr=0.1") // the worker's stderr
    expect(log).toContain("x".repeat(9000)) // the whole error, uncut
    expect(tree.stages.get("score")!.tags["vw2.status"]).toBe("skipped")
  })
})
