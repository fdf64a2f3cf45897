/**
 * What the scheduler reports so that runs compare (the MLflow side is in packages/tracking/test/Comparable.test.ts):
 * names, params, rolled-up trial metrics, the experiment run's roll-up, cache hits with the producer's metrics,
 * system metrics, and a failed stage's log.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { parseOverride } from "../src/Config.ts"
import { defineExperiment } from "../src/Experiment.ts"
import { makeInlineExecutor } from "../src/InlineExecutor.ts"
import { makeArtifactStore } from "../src/ArtifactStore.ts"
import { baseConfig, pipeline } from "./fixtures/experiment.ts"
import { recordingTracker, runInProcess, tempDir } from "./helpers.ts"
import type { RecordedRun } from "./helpers.ts"

const sweep = defineExperiment({ name: "records-test", pipeline, config: baseConfig, sweep: { grid: { "a.scale": [1, 2] } }, seeds: [0, 1] })

const metricsOf = (run: RecordedRun, prefix = ""): Record<string, number> =>
  Object.fromEntries(run.metrics.filter((m) => m.key.startsWith(prefix) && !m.key.startsWith("system/")).map((m) => [m.key, m.value]))

describe("scheduler records", () => {
  it("names runs by trial label, rolls final metrics up to trials and groups, and copies the producer's metrics into cache hits", async () => {
    const home = tempDir("records")
    const first = recordingTracker()
    const summary = await Effect.runPromise(runInProcess({ experiment: sweep, home, executor: makeInlineExecutor(), tracker: first.shape }))
    expect(summary.status).toBe("succeeded")
    const runs = [...first.runs.values()]
    const trials = runs.filter((r) => r.kind === "trial")
    expect(trials.map((t) => t.info.runName).sort()).toEqual(["scale=1 seed=0", "scale=1 seed=1", "scale=2 seed=0", "scale=2 seed=1"])
    // source sums 1..5 = 15: a = 15·scale + 5·seed, b = 15·3 + 5·seed, join = a + b
    for (const trial of trials) {
      const scale = Number(/scale=(\d)/.exec(trial.info.runName as string)![1])
      const seed = Number(/seed=(\d)/.exec(trial.info.runName as string)![1])
      expect(metricsOf(trial)).toEqual({ "a/sum": 15 * scale + 5 * seed, "b/sum": 45 + 5 * seed, "join/total": 15 * scale + 45 + 10 * seed })
    }
    const stages = runs.filter((r) => r.kind === "stage")
    expect(new Set(stages.map((s) => s.info.runName)).size).toBe(stages.length)
    expect(stages.map((s) => s.info.runName)).toContain("join · scale=2 seed=1")
    const join = stages.find((s) => s.info.runName === "join · scale=1 seed=0")!
    expect(join.info.params).toMatchObject({ seed: "0", "input.a": expect.stringMatching(/^a\.scaled@[0-9a-f]{12}$/), "input.b": expect.stringMatching(/^b\.scaled@/) })
    // stages that ran have system metrics, sampled at least once
    const ranA = stages.find((s) => s.info.step === "a" && (s.info.tags as Record<string, string>)["vw2.cache"] === "miss")!
    expect(ranA.metrics.map((m) => m.key)).toEqual(expect.arrayContaining(["system/cpu_utilization_percentage", "system/process_rss_megabytes"]))

    const parent = runs.find((r) => r.kind === "experiment")!
    expect(parent.artifacts).toContain("rollup.json")
    const rolled = metricsOf(parent)
    expect(rolled["a/sum/p0/mean"]).toBe(17.5)
    expect(rolled["a/sum/p0/std"]).toBeCloseTo(5 / Math.SQRT2, 12)
    expect([rolled["a/sum/p0/ci95_low"], rolled["a/sum/p0/ci95_high"]]).toEqual([15, 20])
    expect(rolled["a/sum/p1/mean"]).toBe(32.5)
    expect(rolled["join/total/p1/n"]).toBe(2)

    // the manifest keeps the final metrics, so a later run's cache hits carry them
    const store = makeArtifactStore(home)
    const aHash = summary.results.find((r) => r.step === "a")!.hash
    expect(store.readManifest(aHash)!.metrics).toEqual({ sum: 15 })
    const again = recordingTracker()
    const rerun = await Effect.runPromise(runInProcess({ experiment: sweep, home, executor: makeInlineExecutor(), tracker: again.shape }))
    expect(rerun.results.every((r) => r.status === "cached")).toBe(true)
    expect(rerun.results.find((r) => r.hash === aHash)!.metrics).toEqual({ sum: 15 })
    const hits = [...again.runs.values()].filter((r) => r.kind === "stage")
    const producers = new Map(summary.results.map((r) => [r.hash, r.producedBy]))
    for (const hit of hits) {
      const tags = hit.info.tags as Record<string, string>
      expect(tags["vw2.metrics_copied_from"] ?? "(none)").toBe(hit.info.step === "source" ? "(none)" : producers.get(tags["vw2.stage_hash"]!))
    }
    const hitA = hits.find((s) => s.info.runName === "a · scale=1 seed=0")!
    expect(metricsOf(hitA)).toEqual({ sum: 15 })
    expect(metricsOf([...again.runs.values()].find((r) => r.kind === "experiment")!)).toEqual(rolled)
  })

  it("uploads a failed stage's log as stage.log", async () => {
    const home = tempDir("records-fail")
    const tracker = recordingTracker()
    const experiment = defineExperiment({ name: "records-fail", pipeline, config: baseConfig })
    await Effect.runPromise(runInProcess({ experiment, home, executor: makeInlineExecutor(), overrides: [parseOverride("b.fail=true")], tracker: tracker.shape }))
    const stages = [...tracker.runs.values()].filter((r) => r.kind === "stage")
    expect(stages.map((s) => s.info.runName).sort()).toEqual(["a", "b", "join", "source"])
    const b = stages.find((s) => s.info.step === "b")!
    expect(b.status).toBe("FAILED")
    expect(b.artifacts).toEqual(["stage.log"])
    expect(stages.find((s) => s.info.step === "a")!.artifacts).not.toContain("stage.log")
  })
})
