import { Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { makeArtifactStore } from "../src/ArtifactStore.ts"
import { parseOverride } from "../src/Config.ts"
import { defineExperiment } from "../src/Experiment.ts"
import { makeInlineExecutor } from "../src/InlineExecutor.ts"
import { makeLocalExecutor } from "../src/LocalExecutor.ts"
import { planExperiment } from "../src/Planner.ts"
import type { InvocationStatus } from "../src/Scheduler.ts"
import { baseConfig, pipeline } from "./fixtures/experiment.ts"
import { readLog, recordingTracker, runInProcess, statusObserver, tempDir } from "./helpers.ts"

const experiment = defineExperiment({ name: "scheduler-test", pipeline, config: baseConfig })

const withLog = async <A>(home: string, f: (log: string) => Promise<A>): Promise<A> => {
  const log = path.join(home, "exec.log")
  process.env.VW2_TEST_LOG = log
  try {
    return await f(log)
  } finally {
    delete process.env.VW2_TEST_LOG
  }
}

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("scheduler", () => {
  it("isolates failures: the failing stage's dependents are skipped, independent stages finish", async () => {
    const home = tempDir("fail")
    const tracker = recordingTracker()
    const summary = await Effect.runPromise(runInProcess({ experiment, home, executor: makeInlineExecutor(), overrides: [parseOverride("b.fail=true")], tracker: tracker.shape }))
    const byStep = Object.fromEntries(summary.results.map((r) => [r.step, r]))
    expect(summary.status).toBe("failed")
    expect(byStep.source!.status).toBe("done")
    expect(byStep.a!.status).toBe("done")
    expect(byStep.b!.status).toBe("failed")
    expect(byStep.b!.error).toContain("branchB failed on purpose")
    expect(byStep.join!.status).toBe("skipped")
    const store = makeArtifactStore(home)
    expect(store.isPublished(byStep.a!.hash)).toBe(true)
    expect(store.isPublished(byStep.b!.hash)).toBe(false)
    // every tracker run was ended, with the right status
    const runs = [...tracker.runs.values()]
    expect(runs.every((r) => r.status !== undefined)).toBe(true)
    expect(runs.find((r) => r.kind === "experiment")!.status).toBe("FAILED")
    const stageStatus = Object.fromEntries(runs.filter((r) => r.kind === "stage").map((r) => [r.info.step as string, r.status]))
    expect(stageStatus).toEqual({ source: "FINISHED", a: "FINISHED", b: "FAILED", join: "KILLED" })
    // nothing half-written is left behind
    expect(fs.readdirSync(path.join(home, "tmp"))).toEqual([])
  })

  it("records the run tree, metrics, uploads, and cache hits pointing at the producing run", async () => {
    const home = tempDir("tree")
    const first = recordingTracker()
    const sweep = defineExperiment({ name: "tree", pipeline, config: baseConfig, sweep: { grid: { "b.scale": [1, 2] } } })
    const run1 = await Effect.runPromise(runInProcess({ experiment: sweep, home, executor: makeInlineExecutor(), tracker: first.shape }))
    expect(run1.status).toBe("succeeded")
    const runs1 = [...first.runs.values()]
    const exp = runs1.filter((r) => r.kind === "experiment")
    const trials = runs1.filter((r) => r.kind === "trial")
    const stages = runs1.filter((r) => r.kind === "stage")
    expect(exp).toHaveLength(1)
    expect((exp[0]!.info.tags as Record<string, string>)["vw2.config_hash"]).toMatch(/^[0-9a-f]{64}$/)
    expect(trials).toHaveLength(2)
    expect(trials.every((t) => t.parent === exp[0]!.id)).toBe(true)
    expect(stages).toHaveLength(2 * 4) // every trial has a stage run per step
    // the shared source invocation ran once (a miss) and the other trial records a hit produced by it
    const sourceRuns = stages.filter((s) => s.info.step === "source")
    const miss = sourceRuns.filter((s) => (s.info.cache as { _tag: string })._tag === "miss")
    const hit = sourceRuns.filter((s) => (s.info.cache as { _tag: string })._tag === "hit")
    expect(miss).toHaveLength(1)
    expect(hit).toHaveLength(1)
    expect((hit[0]!.info.cache as { producedBy: string }).producedBy).toBe(miss[0]!.id)
    // metrics and uploads reached the stage run that computed them
    const bMiss = stages.filter((s) => s.info.step === "b" && (s.info.cache as { _tag: string })._tag === "miss")
    expect(bMiss).toHaveLength(2)
    for (const b of bMiss) {
      expect(b.metrics.map((m) => m.key)).toContain("sum")
      expect(b.artifacts).toEqual(expect.arrayContaining(["manifest.json", "plots/summary.txt"]))
    }
    const store = makeArtifactStore(home)
    expect(store.readManifest(miss[0]!.info.stageHash as string)!.tracking.runId).toBe(miss[0]!.id)

    // second run: everything cached; hits point at the runs recorded in the manifests
    const second = recordingTracker()
    const run2 = await Effect.runPromise(runInProcess({ experiment: sweep, home, executor: makeInlineExecutor(), tracker: second.shape }))
    expect(run2.results.every((r) => r.status === "cached")).toBe(true)
    const hits = [...second.runs.values()].filter((r) => r.kind === "stage")
    expect(hits.every((r) => (r.info.cache as { _tag: string })._tag === "hit")).toBe(true)
    const sourceHit = hits.find((r) => r.info.step === "source")!
    expect((sourceHit.info.cache as { producedBy: string }).producedBy).toBe(miss[0]!.id)
  })

  it("detects a corrupted artifact and recomputes it with identical results", async () => {
    const home = tempDir("corrupt")
    await withLog(home, async (log) => {
      const run1 = await Effect.runPromise(runInProcess({ experiment, home, executor: makeInlineExecutor() }))
      const a = run1.results.find((r) => r.step === "a")!
      const file = path.join(home, "store", a.hash, "scaled", "values.json")
      const original = fs.readFileSync(file, "utf8")
      fs.writeFileSync(file, original.replace("2", "9")) // same size, different content
      const store = makeArtifactStore(home)
      expect(store.isPublished(a.hash)).toBe(true) // the cheap check cannot see it ...
      const statuses: Array<[string, InvocationStatus]> = []
      const run2 = await Effect.runPromise(runInProcess({ experiment, home, executor: makeInlineExecutor(), observers: [statusObserver((step, s) => statuses.push([step, s]))] }))
      expect(run2.status).toBe("succeeded")
      expect(run2.results.find((r) => r.step === "a")!.status).toBe("done") // ... the full verification does
      expect(run2.results.filter((r) => r.step !== "a").every((r) => r.status === "cached")).toBe(true)
      expect(fs.readFileSync(file, "utf8")).toBe(original)
      expect(readLog(log).filter((l) => l.phase === "start" && l.step === "a")).toHaveLength(2)
      expect(fs.readdirSync(path.join(home, "trash")).some((n) => n.startsWith(a.hash))).toBe(true)
    })
  })

  it("on interruption kills running workers, discards staging and ends tracker runs KILLED; a rerun resumes", async () => {
    const home = tempDir("interrupt")
    await withLog(home, async (log) => {
      const tracker = recordingTracker()
      const overrides = [parseOverride("a.sleepMs=60000"), parseOverride("b.sleepMs=60000")]
      const fiber = Effect.runFork(runInProcess({ experiment, home, executor: makeLocalExecutor({ cpus: 4 }), overrides, tracker: tracker.shape }))
      const deadline = Date.now() + 60_000
      while (readLog(log).filter((l) => l.phase === "start" && (l.step === "a" || l.step === "b")).length < 2) {
        if (Date.now() > deadline) throw new Error("branches did not start")
        await new Promise((r) => setTimeout(r, 100))
      }
      const workers = readLog(log).filter((l) => l.step === "a" || l.step === "b").map((l) => l.pid)
      expect(workers.every(pidAlive)).toBe(true)
      await Effect.runPromise(Fiber.interrupt(fiber))
      expect(workers.some(pidAlive)).toBe(false)
      expect(fs.readdirSync(path.join(home, "tmp"))).toEqual([])
      expect(fs.readdirSync(path.join(home, "locks"))).toEqual([])
      const runs = [...tracker.runs.values()]
      expect(runs.every((r) => r.status !== undefined)).toBe(true)
      expect(runs.find((r) => r.kind === "experiment")!.status).toBe("KILLED")
      const sourceHash = planExperiment(experiment, overrides).trials[0]!.invocations.source!
      expect(makeArtifactStore(home).isPublished(sourceHash)).toBe(true)

      const resumed = await Effect.runPromise(runInProcess({ experiment, home, executor: makeInlineExecutor() }))
      expect(resumed.results.find((r) => r.step === "source")!.status).toBe("cached")
    })
  })

  it("reserves memory: two stages that together exceed the executor's memory run one after the other", async () => {
    const interval = (log: string, step: string) => {
      const lines = readLog(log).filter((l) => l.step === step)
      return [lines.find((l) => l.phase === "start")!.t, lines.find((l) => l.phase === "end")!.t] as const
    }
    const overlapMs = (log: string) => {
      const [a, b] = [interval(log, "a"), interval(log, "b")]
      return Math.min(a[1], b[1]) - Math.max(a[0], b[0])
    }
    // long sleeps: a slow worker start on a loaded machine must not hide real concurrency (the roomy case)
    const overrides = ["a.memoryMb=600", "b.memoryMb=600", "a.sleepMs=4000", "b.sleepMs=4000"].map(parseOverride)
    // 4 CPU slots: only memory can keep the two branches apart
    const tight = tempDir("memory-tight")
    await withLog(tight, async (log) => {
      const summary = await Effect.runPromise(runInProcess({ experiment, home: tight, executor: makeLocalExecutor({ cpus: 4, memoryMb: 1000 }), overrides }))
      expect(summary.status).toBe("succeeded")
      expect(overlapMs(log)).toBeLessThanOrEqual(0)
    })
    const roomy = tempDir("memory-roomy")
    await withLog(roomy, async (log) => {
      const summary = await Effect.runPromise(runInProcess({ experiment, home: roomy, executor: makeLocalExecutor({ cpus: 4, memoryMb: 1200 }), overrides }))
      expect(summary.status).toBe("succeeded")
      expect(overlapMs(log)).toBeGreaterThan(0)
    })
    const tooBig = await Effect.runPromiseExit(runInProcess({ experiment, home: tempDir("memory-big"), executor: makeLocalExecutor({ memoryMb: 1000 }), overrides: [parseOverride("a.memoryMb=4000")] }))
    expect(String(tooBig._tag === "Failure" ? tooBig.cause : "")).toMatch(/needs 4000 MB of memory but the executor has 1000 MB/)
  })

  it("refuses a plan that needs more GPUs than the executor has, before running anything", async () => {
    const home = tempDir("gpus")
    const exit = await Effect.runPromiseExit(runInProcess({ experiment, home, executor: makeLocalExecutor({ gpus: ["0"] }), overrides: [parseOverride("a.gpus=2")] }))
    expect(exit._tag).toBe("Failure")
    expect(String(exit._tag === "Failure" ? exit.cause : "")).toMatch(/needs 2 GPU\(s\) but the executor has 1/)
    expect(fs.readdirSync(path.join(home, "store"))).toEqual([])
  })
})
