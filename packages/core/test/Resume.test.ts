/**
 * Mid-stage checkpoints, resume, retries and time limits on the real local executor (docs/engine.md,
 * "Mid-stage checkpoints", "Retries and time limits"): kill -9 of a worker or of the driver at a random step,
 * then a rerun resumes from the last checkpoint and ends with the same output as an uninterrupted run.
 */
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import * as ArtifactStore from "../src/ArtifactStore.ts"
import type { Override } from "../src/Config.ts"
import { parseOverride } from "../src/Config.ts"
import { Executor } from "../src/Executor.ts"
import type { StepSettings } from "../src/Experiment.ts"
import { defineExperiment } from "../src/Experiment.ts"
import { makeLocalExecutor } from "../src/LocalExecutor.ts"
import { planExperiment } from "../src/Planner.ts"
import type { RunEvent } from "../src/RunEvent.ts"
import type { RunSummary } from "../src/Scheduler.ts"
import { runPlan } from "../src/Scheduler.ts"
import { layerNoop } from "../src/Tracker.ts"
import experiment, { baseConfig, pipeline } from "./fixtures/checkpointing.ts"
import { tempDir } from "./helpers.ts"

const fixture = fileURLToPath(new URL("./fixtures/checkpointing.ts", import.meta.url))
const driver = fileURLToPath(new URL("./fixtures/checkpointDriver.ts", import.meta.url))

interface StartLine {
  readonly step: string
  readonly hash: string
  readonly phase: string
  readonly from?: number
  readonly pid: number
}
const starts = (log: string): Array<StartLine> =>
  fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as StartLine) : []

/** A fresh store, log file and pid dir; the env vars reach the workers this test's executor starts. */
const setup = (name: string) => {
  const home = tempDir(name)
  const log = path.join(home, "test.log")
  const pids = path.join(home, "pids")
  fs.mkdirSync(pids)
  process.env.VW2_TEST_LOG = log
  process.env.VW2_TEST_PIDS = pids
  return { home, log, pids }
}

const run = (home: string, overrides: ReadonlyArray<Override> = [], steps?: { readonly train?: StepSettings }, observe?: (e: RunEvent) => void): Promise<RunSummary> => {
  const exp = steps === undefined ? experiment : defineExperiment({ name: "checkpoint-test", pipeline, config: baseConfig, steps })
  const plan = planExperiment(exp, overrides)
  const executor = makeLocalExecutor({ cpus: 1, killGraceMs: 500 })
  return Effect.runPromise(
    runPlan({ plan, experimentFile: fixture, ...(observe === undefined ? {} : { observers: [{ onEvent: (e) => Effect.sync(() => observe(e)) }] }) }).pipe(
      Effect.provide(Layer.mergeAll(ArtifactStore.layer(home), Layer.succeed(Executor, executor), layerNoop))
    )
  ).finally(() => executor.close())
}

const trainHash = (overrides: ReadonlyArray<Override> = []) => planExperiment(experiment, overrides).trials[0]!.invocations.train!
const finalOf = (home: string, hash: string) => fs.readFileSync(path.join(home, "store", hash, "model", "final.json"), "utf8")
const checkpointStep = (home: string, hash: string): number => {
  try {
    return (JSON.parse(fs.readFileSync(path.join(home, "resume", hash, "state.json"), "utf8")) as { step: number }).step
  } catch {
    return 0
  }
}

/** Polls until `hash`'s checkpoint reaches `step`, then SIGKILLs the process whose pid `pidOf` gives. */
const killAt = async (home: string, hash: string, step: number, pidOf: () => number | undefined) => {
  for (let i = 0; i < 2000; i++) {
    const pid = pidOf()
    if (pid !== undefined && checkpointStep(home, hash) >= step) {
      process.kill(pid, "SIGKILL")
      return checkpointStep(home, hash)
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`checkpoint of ${hash} never reached step ${step}`)
}
const workerPid = (pids: string, hash: string) => () => {
  const file = path.join(pids, `${hash}.pid`)
  return fs.existsSync(file) ? Number(fs.readFileSync(file, "utf8")) : undefined
}

/** a random checkpoint step strictly inside the run (every = 3, total = 30) */
const randomCheckpoint = () => 3 * (1 + Math.floor(Math.random() * 8))

describe("mid-stage checkpoints and resume (local executor)", () => {
  const reference = (() => {
    let cached: Promise<string> | undefined
    return () =>
      (cached ??= (async () => {
        const { home } = setup("reference")
        const summary = await run(home)
        expect(summary.status).toBe("succeeded")
        return finalOf(home, trainHash())
      })())
  })()

  it("kill -9 of the worker at a random step: the rerun resumes from the last checkpoint and ends as an uninterrupted run", async () => {
    const expected = await reference()
    const { home, log, pids } = setup("kill-worker")
    const hash = trainHash()
    const at = randomCheckpoint()
    const [summary, killedAt] = await Promise.all([run(home), killAt(home, hash, at, workerPid(pids, hash))])
    expect(summary.status).toBe("failed")
    expect(summary.results.find((r) => r.step === "train")!.error).toMatch(/worker killed by SIGKILL/)
    expect(killedAt).toBeGreaterThanOrEqual(at)
    // the engine's note of the last checkpoint: what plan and status show as "resumable at step k/K"
    const store = ArtifactStore.makeArtifactStore(home)
    const progress = store.resumeProgress(hash)!
    const onDisk = checkpointStep(home, hash)
    expect(progress.total).toBe(30)
    // the note may lag the newest checkpoint by one: a kill between its commit and its checkpoint event
    expect(onDisk - progress.at).toBeGreaterThanOrEqual(0)
    expect(onDisk - progress.at).toBeLessThanOrEqual(3)

    const logged: Array<string> = []
    const rerun = await run(home, [], undefined, (e) => {
      if (e.type === "log" && e.invocation === hash) logged.push(e.message)
    })
    expect(rerun.status).toBe("succeeded")
    const resumed = starts(log).filter((l) => l.step === "train").at(-1)!
    expect(resumed.from).toBe(onDisk)
    expect(resumed.from).toBeGreaterThan(0)
    expect(logged).toContain(`resumed from step ${onDisk}/30`)
    expect(finalOf(home, hash)).toBe(expected)
    // published: the checkpoints are gone, and nothing is resumable any more
    expect(fs.existsSync(path.join(home, "resume", hash))).toBe(false)
    expect(store.resumeProgress(hash)).toBeUndefined()
  })

  it("kill -9 twice in a row (worker, then worker again later) still resumes and matches", async () => {
    const expected = await reference()
    const { home, log, pids } = setup("kill-twice")
    const hash = trainHash()
    const first = 3 + 3 * Math.floor(Math.random() * 3)
    const second = first + 6 + 3 * Math.floor(Math.random() * 3)
    const [s1, k1] = await Promise.all([run(home), killAt(home, hash, first, workerPid(pids, hash))])
    expect(s1.status).toBe("failed")
    fs.rmSync(path.join(pids, `${hash}.pid`))
    const [s2, k2] = await Promise.all([run(home), killAt(home, hash, second, workerPid(pids, hash))])
    expect(s2.status).toBe("failed")
    expect(k2).toBeGreaterThan(k1)
    expect((await run(home)).status).toBe("succeeded")
    const froms = starts(log).filter((l) => l.step === "train").map((l) => l.from)
    expect(froms).toEqual([0, k1, k2])
    expect(finalOf(home, hash)).toBe(expected)
  })

  it("kill -9 of the driver: its worker goes too, and the next driver resumes from the last checkpoint", async () => {
    const expected = await reference()
    const { home, log, pids } = setup("kill-driver")
    const hash = trainHash()
    const at = randomCheckpoint()
    const startDriver = () => {
      const child = spawn(process.execPath, [driver], { env: { ...process.env, VW2_HOME: home }, stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      child.stdout.on("data", (d) => (out += String(d)))
      child.stderr.on("data", (d) => (out += String(d)))
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, out })))
      return { child, exited }
    }
    const first = startDriver()
    const killedAt = await killAt(home, hash, at, () => first.child.pid)
    expect((await first.exited).signal).toBe("SIGKILL")
    // the orphaned worker notices its parent died (stdin EOF) and exits
    const orphan = Number(fs.readFileSync(path.join(pids, `${hash}.pid`), "utf8"))
    for (let i = 0; i < 500 && isAlive(orphan); i++) await new Promise((r) => setTimeout(r, 20))
    expect(isAlive(orphan)).toBe(false)
    const resumedFrom = checkpointStep(home, hash)
    expect(resumedFrom).toBeGreaterThanOrEqual(killedAt)

    const second = await startDriver().exited
    expect(second.code).toBe(0)
    expect(JSON.parse(second.out.trim().split("\n").at(-1)!).status).toBe("succeeded")
    const froms = starts(log).filter((l) => l.step === "train").map((l) => l.from)
    expect(froms).toEqual([0, resumedFrom])
    expect(finalOf(home, hash)).toBe(expected)
  })

  it("retries: a worker killed by a signal is rerun and resumes from its checkpoint; without retries it fails", async () => {
    const expected = await reference()
    const crash = [parseOverride("train.crashAtStep=11")]
    // the crash marker lives in resumeDir, so an invocation crashes once; reference output differs only by config
    const noRetry = setup("no-retry")
    const failed = await run(noRetry.home, crash)
    expect(failed.status).toBe("failed")
    expect(failed.results.find((r) => r.step === "train")!.error).toMatch(/^worker killed by SIGKILL/)

    const { home, log } = setup("retry")
    const logged: Array<string> = []
    const summary = await run(home, crash, { train: { retries: 1 } }, (e) => {
      if (e.type === "log") logged.push(e.message)
    })
    expect(summary.status).toBe("succeeded")
    const froms = starts(log).filter((l) => l.step === "train").map((l) => l.from)
    expect(froms).toEqual([0, 9]) // crashed at 11, last checkpoint at 9
    expect(logged.some((l) => /^retrying \(attempt 2 of 2\) after: worker killed by SIGKILL/.test(l))).toBe(true)
    // crashAtStep changes the hash, not the computation: same final state as the reference run
    expect(finalOf(home, trainHash(crash))).toBe(expected)
  })

  it("timeout: the invocation is stopped and fails with 'timed out after …'; its checkpoint stays for a rerun", async () => {
    const { home, pids } = setup("timeout")
    const hash = trainHash([parseOverride("train.sleepMs=200")])
    const started = Date.now()
    const summary = await run(home, [parseOverride("train.sleepMs=200")], { train: { timeout: "2s", retries: 2 } })
    const took = Date.now() - started
    expect(summary.status).toBe("failed")
    const train = summary.results.find((r) => r.step === "train")!
    expect(train.error).toMatch(/^timed out after 2s \(steps\.train\.timeout\)/)
    expect(took).toBeLessThan(15_000)
    // the worker was killed, not left running
    const pid = Number(fs.readFileSync(path.join(pids, `${hash}.pid`), "utf8"))
    for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 20))
    expect(isAlive(pid)).toBe(false)
    expect(checkpointStep(home, hash)).toBeGreaterThan(0)
  })
})

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
