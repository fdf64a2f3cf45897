/**
 * Early stopping across a sweep (docs/engine.md, "Early stopping"): the pure rung decisions, the planner's checks
 * of `sweep.scheduler` and `steps`, and synchronous ASHA run for real on the local executor: 8 trials over a
 * shared upstream stage, η = 2, rungs at steps 4, 8 and 12 of 16, on a metric whose ordering is known.
 */
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import * as ArtifactStore from "../src/ArtifactStore.ts"
import { decideRung, rungsOf, scheduleOf, valueAtRung } from "../src/EarlyStopping.ts"
import { Executor } from "../src/Executor.ts"
import { defineExperiment } from "../src/Experiment.ts"
import { makeLocalExecutor } from "../src/LocalExecutor.ts"
import { planExperiment } from "../src/Planner.ts"
import { runSweepWithEarlyStopping } from "../src/SweepScheduler.ts"
import { layerNoop } from "../src/Tracker.ts"
import { baseConfig, lossOf, pipeline } from "./fixtures/checkpointing.ts"
import { configErrorOf, tempDir } from "./helpers.ts"

const fixture = fileURLToPath(new URL("./fixtures/checkpointing.ts", import.meta.url))
const sweepFixture = fileURLToPath(new URL("./fixtures/checkpointingSweep.ts", import.meta.url))
const driver = fileURLToPath(new URL("./fixtures/checkpointDriver.ts", import.meta.url))

describe("rung decisions", () => {
  it("asha keeps the best ⌊n/η⌋; missing values rank last and equal values by trial id", () => {
    const decision = decideRung({ kind: "asha", mode: "min", reductionFactor: 2 }, [
      { hash: "a", trial: "p0", value: 3 },
      { hash: "b", trial: "p1", value: 1 },
      { hash: "c", trial: "p2" },
      { hash: "d", trial: "p3", value: 1 },
      { hash: "e", trial: "p4", value: 2 }
    ])
    expect(decision).toEqual({ promoted: ["b", "d"], stopped: ["e", "a", "c"] })
    expect(decideRung({ kind: "asha", mode: "max", reductionFactor: 3 }, [
      { hash: "a", trial: "p0", value: 3 },
      { hash: "b", trial: "p1", value: 1 },
      { hash: "c", trial: "p2", value: 5 }
    ]).promoted).toEqual(["c"])
  })

  it("the median rule stops a trial worse than the median of the others", () => {
    const decision = decideRung({ kind: "median", mode: "min", reductionFactor: 2 }, [
      { hash: "a", trial: "p0", value: 1 },
      { hash: "b", trial: "p1", value: 2 },
      { hash: "c", trial: "p2", value: 3 },
      { hash: "d", trial: "p3", value: 10 }
    ])
    // a: others' median 3 → keep; b: median 3 → keep; c: median 2 → stop; d: median 2 → stop
    expect(decision).toEqual({ promoted: ["a", "b"], stopped: ["c", "d"] })
  })

  it("rungs from grace and maxSteps, the asha schedule, and the value at a rung", () => {
    expect(rungsOf({ kind: "asha", metric: "x/y", mode: "min", grace: 100, maxSteps: 1000, reductionFactor: 3 })).toEqual({ rungs: [100, 300, 900] })
    expect(rungsOf({ kind: "asha", metric: "x/y", mode: "min", rungs: [4, 4] })).toMatchObject({ path: "rungs[1]" })
    expect(scheduleOf("asha", [4, 8, 12], 8, 2)).toEqual([{ rung: 4, trials: 8, keep: 4 }, { rung: 8, trials: 4, keep: 2 }, { rung: 12, trials: 2, keep: 1 }])
    expect(valueAtRung([{ step: 3, value: 1 }, { step: 4, value: 2 }, { step: 5, value: 9 }], 4)).toBe(2)
  })
})

const lrs = [0.02, 0.06, 0.12, 0.2, 0.27, 0.31, 0.42, 0.55]
const sweepExperiment = (scheduler: Record<string, unknown> = { kind: "asha", metric: "train/loss", mode: "min", rungs: [4, 8, 12], reductionFactor: 2 }) =>
  defineExperiment({
    name: "asha-test",
    pipeline,
    config: { ...baseConfig, train: { ...baseConfig.train, total: 16, every: 4, sleepMs: 30 } },
    sweep: { grid: { "train.lr": lrs }, scheduler: scheduler as never }
  })

describe("planning early stopping and step settings", () => {
  it("checks sweep.scheduler and shows the rung schedule", () => {
    const plan = planExperiment(sweepExperiment())
    expect(plan.earlyStopping).toMatchObject({ kind: "asha", step: "train", key: "loss", rungs: [4, 8, 12], schedule: [{ trials: 8, keep: 4 }, { trials: 4, keep: 2 }, { trials: 2, keep: 1 }] })
    const notSwept = configErrorOf(() => planExperiment(sweepExperiment({ kind: "asha", metric: "base/x", mode: "min", rungs: [4] })))
    expect(notSwept.issues[0]).toMatchObject({ path: "sweep.scheduler.metric" })
    expect(notSwept.issues[0]!.message).toMatch(/step base is not swept/)
    const badKind = configErrorOf(() => planExperiment(sweepExperiment({ kind: "hyperband", metric: "train/loss", mode: "min", rungs: [4] })))
    expect(badKind.issues[0]!.path).toBe("sweep.scheduler.kind")
    const noRungs = configErrorOf(() => planExperiment(sweepExperiment({ kind: "median", metric: "train/loss", mode: "min" })))
    expect(noRungs.issues[0]!.path).toBe("sweep.scheduler.rungs")
  })

  it("steps.<step> settings are checked with their path and are not hashed", () => {
    const withSteps = (steps: unknown) => defineExperiment({ name: "s", pipeline, config: baseConfig, steps: steps as never })
    const plain = planExperiment(withSteps(undefined))
    const set = planExperiment(withSteps({ train: { retries: 2, timeout: "1.5h" } }))
    expect(set.invocations.map((i) => i.hash)).toEqual(plain.invocations.map((i) => i.hash))
    expect(set.invocations.find((i) => i.step === "train")).toMatchObject({ retries: 2, timeoutMs: 5_400_000 })
    expect(configErrorOf(() => planExperiment(withSteps({ train: { timeout: "2 hours" } }))).issues[0]!.path).toBe("steps.train.timeout")
    expect(configErrorOf(() => planExperiment(withSteps({ train: { retries: -1 } }))).issues[0]!.path).toBe("steps.train.retries")
    expect(configErrorOf(() => planExperiment(withSteps({ trian: { retries: 1 } }))).issues[0]!.path).toBe("steps.trian")
  })
})

interface StartLine {
  readonly step: string
  readonly hash: string
  readonly from?: number
  readonly pauseAtStep?: number | null
}

describe("synchronous ASHA on the local executor", () => {
  it("8 trials, η = 2, 3 rungs: upstream once, the expected trials stopped, promoted ones resumed, a rerun replays", async () => {
    const home = tempDir("asha")
    const log = path.join(home, "test.log")
    process.env.VW2_TEST_LOG = log
    delete process.env.VW2_TEST_PIDS
    const plan = planExperiment(sweepExperiment())
    const run = () => {
      const executor = makeLocalExecutor({ cpus: 2, killGraceMs: 500 })
      return Effect.runPromise(
        runSweepWithEarlyStopping({ plan, experimentFile: fixture }).pipe(
          Effect.provide(Layer.mergeAll(ArtifactStore.layer(home), Layer.succeed(Executor, executor), layerNoop))
        )
      ).finally(() => executor.close())
    }
    const trainOf = new Map(plan.trials.map((t, i) => [t.invocations.train!, lrs[i]!]))
    const hashOfLr = (lr: number) => plan.trials[lrs.indexOf(lr)]!.invocations.train!

    const summary = await run()
    expect(summary.status).toBe("succeeded")
    const lines = fs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as StartLine)
    expect(lines.filter((l) => l.step === "base")).toHaveLength(1)

    // the known ordering: loss = |lr − 0.3| + 1/(step+1), best 0.31, 0.27, 0.2, 0.42, then 0.12, 0.06, 0.55, 0.02
    const stoppedAt = (rung: number) => summary.decisions.find((d) => d.rung === rung)!.stopped.map((h) => trainOf.get(h)).sort()
    expect(stoppedAt(4)).toEqual([0.02, 0.06, 0.12, 0.55])
    expect(stoppedAt(8)).toEqual([0.2, 0.42])
    expect(stoppedAt(12)).toEqual([0.27])
    const report = summary.decisions[0]!.reports.find((r) => r.hash === hashOfLr(0.31))!
    expect(report.value).toBeCloseTo(lossOf(0.31, 4), 12)

    // which run started from where: 8 from 0 to rung 4; the 4 promoted from their step-4 checkpoint; ...
    const train = lines.filter((l) => l.step === "train")
    const phase = (from: number, pause: number | null) => train.filter((l) => l.from === from && l.pauseAtStep === pause).map((l) => trainOf.get(l.hash)).sort()
    expect(phase(0, 4)).toEqual([...lrs].sort())
    expect(phase(4, 8)).toEqual([0.2, 0.27, 0.31, 0.42])
    expect(phase(8, 12)).toEqual([0.27, 0.31])
    expect(phase(12, null)).toEqual([0.31])
    expect(train).toHaveLength(8 + 4 + 2 + 1)

    const statusOf = (lr: number) => summary.results.find((r) => r.hash === hashOfLr(lr))!.status
    expect(statusOf(0.31)).toBe("done")
    for (const lr of lrs.filter((x) => x !== 0.31)) expect(statusOf(lr)).toBe("stopped")
    expect(summary.results.find((r) => r.hash === hashOfLr(0.02))!.error).toMatch(/^stopped by asha at rung 0 \(step 4\): train\/loss = /)
    // stopped trials are never published and keep no checkpoints; the winner published and dropped its own
    for (const lr of lrs) {
      expect(fs.existsSync(path.join(home, "store", hashOfLr(lr)))).toBe(lr === 0.31)
      expect(fs.existsSync(path.join(home, "resume", hashOfLr(lr)))).toBe(false)
    }
    expect(fs.existsSync(path.join(home, "sweeps", plan.configHash, "decisions.json"))).toBe(true)

    // rerun: the decisions are replayed, the winner is a cache hit, no stage runs
    const again = await run()
    expect(again.status).toBe("succeeded")
    expect(fs.readFileSync(log, "utf8").trim().split("\n")).toHaveLength(lines.length)
    expect(again.decisions).toEqual(summary.decisions)
    expect(again.phases).toEqual(["final: 1 trial(s) to the end"])
    expect(again.results.find((r) => r.hash === hashOfLr(0.31))!.status).toBe("cached")
    expect(again.results.filter((r) => r.status === "stopped")).toHaveLength(7)
  })
})

describe("a sweep driver killed in the middle of a rung", () => {
  const startDriver = (home: string, log: string) => {
    const child = spawn(process.execPath, [driver, "train.sleepMs=120"], {
      env: { ...process.env, VW2_HOME: home, VW2_TEST_LOG: log, VW2_TEST_EXPERIMENT: sweepFixture, VW2_TEST_CPUS: "2" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    child.stdout.on("data", (d) => (out += String(d)))
    child.stderr.on("data", (d) => (out += String(d)))
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, out })))
    return { child, exited }
  }
  const startsOf = (log: string) => fs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as StartLine).filter((l) => l.step === "train")
  const decisionsOf = (home: string) =>
    (JSON.parse(fs.readFileSync(path.join(home, "sweeps", fs.readdirSync(path.join(home, "sweeps"))[0]!, "decisions.json"), "utf8")) as { rungs: Array<{ rung: number; promoted: Array<string>; stopped: Array<string> }> })
      .rungs.map((r) => ({ rung: r.rung, promoted: r.promoted, stopped: r.stopped }))

  it("keeps the recorded rung, resumes the promoted trials from their checkpoints and ends as an uninterrupted sweep", async () => {
    delete process.env.VW2_TEST_PIDS
    const reference = tempDir("asha-ref")
    const refRun = await startDriver(reference, path.join(reference, "test.log")).exited
    expect(refRun.code).toBe(0)

    const home = tempDir("asha-kill")
    const log = path.join(home, "test.log")
    const first = startDriver(home, log)
    // rung 1 has started (a trial resumed from its step-4 checkpoint): rung 0's decision is recorded
    for (let i = 0; i < 3000 && !(fs.existsSync(log) && startsOf(log).some((l) => l.from === 4)); i++) await new Promise((r) => setTimeout(r, 10))
    await new Promise((r) => setTimeout(r, 150))
    first.child.kill("SIGKILL")
    expect((await first.exited).signal).toBe("SIGKILL")
    expect(decisionsOf(home).length).toBeGreaterThanOrEqual(1)

    const second = await startDriver(home, log).exited
    expect(second.code).toBe(0)
    expect(JSON.parse(second.out.trim().split("\n").at(-1)!).status).toBe("succeeded")
    expect(decisionsOf(home)).toEqual(decisionsOf(reference))
    const starts = startsOf(log)
    // rung 0 trained once (no trial went back to step 0), the rerun resumed from rung checkpoints only
    expect(starts.filter((l) => l.from === 0)).toHaveLength(4)
    expect(starts.filter((l) => l.from === 0 && l.pauseAtStep === 4)).toHaveLength(4)
    const winner = decisionsOf(reference).at(-1)!.promoted[0]!
    const final = (h: string) => fs.readFileSync(path.join(h, "store", winner, "model", "final.json"), "utf8")
    expect(final(home)).toBe(final(reference))
  })
})
