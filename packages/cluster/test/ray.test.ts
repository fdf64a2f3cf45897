/**
 * The Ray executor against a real local Ray head (globalSetup) and real ZeroMQ sockets: results match the
 * local executor, GPUs are scheduled by Ray, lost workers are retried, a dead bridge is reported within
 * the heartbeat timeout, interruption leaves no node process behind, bad messages get error replies.
 */
import { LocalExecutor, type RunSummary } from "@vw2/core"
import { Effect, Exit, Fiber } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from "vitest"
import { Dealer } from "zeromq"
import { startBridgeProcess } from "../src/BridgeProcess.ts"
import type { BridgeProcess } from "../src/BridgeProcess.ts"
import { RayExecutor } from "../src/index.ts"
import { configFor } from "./fixtures/experiment.ts"
import { fixtureFile, observeSteps, processesMentioning, readLog, removeTempDirs, runFixture, runShort, runSourceOnly, tempDir, waitFor } from "./helpers.ts"

const rayAddress = inject("rayAddress")
const scratch = tempDir("suite")
const logFile = path.join(scratch, "stages.jsonl")
const gateDir = path.join(scratch, "gates")
fs.mkdirSync(gateDir)
// forwarded to every Ray task through runtime_env (VW2_* is forwarded by default)
process.env.VW2_TEST_LOG = logFile
process.env.VW2_TEST_GATE = gateDir

let ray: RayExecutor.RayExecutorShape

beforeAll(async () => {
  ray = await Effect.runPromise(RayExecutor.makeRayExecutor({ address: rayAddress, heartbeatMs: 500, timeoutMs: 3000, killGraceMs: 2000 }))
})

afterAll(async () => {
  await ray?.close()
  removeTempDirs()
})

/**
 * Opens the test's gates when it ends, passed or failed: the stages of a failed test that still wait on
 * their gates would hold their CPUs and GPUs of the shared head, and every later test would wait for them.
 */
const openGatesAtEnd = (tag: string, steps: ReadonlyArray<string>) =>
  onTestFinished(() => {
    for (const step of steps) fs.writeFileSync(path.join(gateDir, `${tag}-${step}`), "")
  })

const byStep = (summary: RunSummary) => Object.fromEntries(summary.results.map((r) => [r.step, r]))

const storeFiles = (home: string, hash: string) => {
  const manifest = JSON.parse(fs.readFileSync(path.join(home, "store", hash, "manifest.json"), "utf8")) as { files: Array<{ path: string; sha256: string }> }
  return manifest.files.map((f) => `${f.path}:${f.sha256}`).sort()
}

describe("ray executor", () => {
  it("runs the pipeline with the same hashes and results as the local executor", async () => {
    const config = configFor("same")
    const localHome = tempDir("local")
    const rayHome = tempDir("ray")
    const local = LocalExecutor.makeLocalExecutor({ cpus: 2, gpus: ["0", "1"] })
    const viaLocal = await Effect.runPromise(runFixture(local, localHome, config))
    local.close()
    const viaRay = await Effect.runPromise(runFixture(ray, rayHome, config))
    expect(viaLocal.status).toBe("succeeded")
    expect(viaRay.status).toBe("succeeded")
    const l = byStep(viaLocal)
    const r = byStep(viaRay)
    for (const step of ["source", "a", "b", "wide", "join"]) {
      expect(r[step]!.hash).toBe(l[step]!.hash)
      expect(r[step]!.status).toBe("done")
      expect(storeFiles(rayHome, r[step]!.hash)).toEqual(storeFiles(localHome, l[step]!.hash))
      expect(r[step]!.metrics).toEqual(l[step]!.metrics)
    }
    const total = JSON.parse(fs.readFileSync(path.join(rayHome, "store", r.join!.hash, "total", "total.json"), "utf8")) as { total: number }
    expect(total.total).toBe((2 + 3 + 5) * (1 + 2 + 3 + 4))
    // uploads travel back from the Ray task and are recorded in the manifest like under local
    const manifest = JSON.parse(fs.readFileSync(path.join(rayHome, "store", r.a!.hash, "manifest.json"), "utf8")) as { uploads?: Array<string> }
    expect(manifest.uploads).toEqual(["plots/sum.txt"])
  })

  it("gives concurrent 1-GPU invocations different devices and makes a 2-GPU stage wait for both", async () => {
    const tag = "gpus"
    openGatesAtEnd(tag, ["a", "b"])
    // a and b hold their GPU until the test opens their gates: both running at once proves concurrency
    const running = Effect.runPromise(runFixture(ray, tempDir("gpus"), configFor(tag, { a: { gate: true }, b: { gate: true } })))
    const starts = await waitFor("a and b to run at the same time", () => {
      const s = readLog(logFile, tag).filter((l) => l.phase === "start" && (l.step === "a" || l.step === "b"))
      return s.length === 2 ? s : undefined
    })
    expect(starts.map((s) => s.cuda).sort()).toEqual(["0", "1"]) // on different devices
    await new Promise((r) => setTimeout(r, 1500))
    expect(readLog(logFile, tag).some((l) => l.step === "wide")).toBe(false) // the 2-GPU stage is still waiting
    for (const step of ["a", "b"]) fs.writeFileSync(path.join(gateDir, `${tag}-${step}`), "")
    const summary = await running
    expect(summary.status).toBe("succeeded")
    const log = readLog(logFile, tag)
    const wide = log.find((l) => l.step === "wide" && l.phase === "start")!
    expect(wide.cuda!.split(",").sort()).toEqual(["0", "1"])
    for (const step of ["a", "b"]) expect(wide.t).toBeGreaterThanOrEqual(log.find((l) => l.step === step && l.phase === "end")!.t)
    expect(byStep(summary).wide!.gpus?.length).toBe(2)
  })

  it("retries an invocation whose node worker was killed mid-stage, and the run completes", async () => {
    const tag = "retry"
    openGatesAtEnd(tag, ["a"])
    const logs: Array<string> = []
    const running = Effect.runPromise(runShort(ray, tempDir("retry"), configFor(tag, { a: { gate: true } }), observeSteps((event) => void (event.type === "log" && logs.push(event.message)))))
    const first = await waitFor("stage a to start", () => readLog(logFile, tag).find((l) => l.step === "a" && l.phase === "start"))
    process.kill(first.pid, "SIGKILL")
    fs.writeFileSync(path.join(gateDir, `${tag}-a`), "") // the retry may pass
    const summary = await running
    expect(summary.status).toBe("succeeded")
    const starts = readLog(logFile, tag).filter((l) => l.step === "a" && l.phase === "start")
    expect(starts.length).toBe(2)
    expect(starts[1]!.pid).not.toBe(first.pid)
    expect(logs.some((m) => m.includes("node worker lost; attempt 2"))).toBe(true)
  })

  it("retries when the Ray worker process itself dies (its node worker sees EOF and exits)", async () => {
    const tag = "ray-worker-kill"
    openGatesAtEnd(tag, ["a"])
    const running = Effect.runPromise(runShort(ray, tempDir(tag), configFor(tag, { a: { gate: true } })))
    const first = await waitFor("stage a to start", () => readLog(logFile, tag).find((l) => l.step === "a" && l.phase === "start"))
    const rayWorker = Number(fs.readFileSync(`/proc/${first.pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]) // ppid
    expect(fs.readFileSync(`/proc/${rayWorker}/cmdline`, "utf8")).toMatch(/ray::|default_worker/)
    process.kill(rayWorker, "SIGKILL")
    await waitFor("the orphaned node worker to exit", () => {
      try {
        process.kill(first.pid, 0)
        return undefined
      } catch {
        return true
      }
    }, 15_000)
    fs.writeFileSync(path.join(gateDir, `${tag}-a`), "")
    const summary = await running
    expect(summary.status).toBe("succeeded")
    const starts = readLog(logFile, tag).filter((l) => l.step === "a" && l.phase === "start")
    expect(starts.length).toBe(2)
  })

  it("on interruption cancels the Ray tasks and leaves no node process behind", async () => {
    const tag = "interrupt"
    openGatesAtEnd(tag, ["a", "b"])
    const home = tempDir("interrupt")
    const fiber = Effect.runFork(runFixture(ray, home, configFor(tag, { a: { gate: true }, b: { gate: true } })))
    const started = await waitFor("a and b to start", () => {
      const s = readLog(logFile, tag).filter((l) => l.phase === "start" && (l.step === "a" || l.step === "b"))
      return s.length === 2 ? s : undefined
    })
    expect(processesMentioning(home).length).toBeGreaterThanOrEqual(2) // the two node workers (spec files live in home)
    const t0 = Date.now()
    const exit = await Effect.runPromise(Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber))))
    expect(Exit.hasInterrupts(exit)).toBe(true)
    expect(Date.now() - t0).toBeLessThan(15_000)
    for (const s of started) expect(() => process.kill(s.pid, 0)).toThrow()
    expect(processesMentioning(home)).toEqual([])
  })

  it("rejects malformed and wrong-version messages with an error reply and keeps serving", async () => {
    const endpoint = ray.client.endpoint
    const socket = new Dealer({ linger: 0, receiveTimeout: 5000 })
    socket.connect(endpoint)
    const ask = async (frames: Array<string | Buffer>) => {
      await socket.send(frames)
      for (;;) {
        const [header] = await socket.receive()
        const reply = JSON.parse(header!.toString()) as { type: string; message?: string }
        if (reply.type !== "ping") return reply
      }
    }
    expect(await ask(["this is not json"])).toMatchObject({ type: "error", message: expect.stringContaining("not JSON") })
    expect(await ask([JSON.stringify({ v: 99, type: "hello" })])).toMatchObject({ type: "error", message: expect.stringContaining("version 99") })
    expect(await ask([JSON.stringify({ v: 1, type: "launch-missiles" })])).toMatchObject({ type: "error", message: expect.stringContaining("unknown message type") })
    expect(await ask([JSON.stringify({ v: 1, type: "submit", id: "x" })])).toMatchObject({ type: "error", message: expect.stringContaining("hello first") })
    expect(await ask([JSON.stringify({ v: 1, type: "hello", driver: "probe" })])).toMatchObject({ type: "welcome" })
    expect(await ask([JSON.stringify({ v: 1, type: "submit", id: "x", spec: { experimentFile: "/x" }, resources: {} })])).toMatchObject({
      type: "error",
      message: expect.stringContaining("submit.spec.step")
    })
    expect(await ask([JSON.stringify({ v: 1, type: "ping", t: 0 }), "a", "b"])).toMatchObject({ type: "error", message: expect.stringContaining("frames") })
    // the bridge survived all of it and still answers
    expect(await ask([JSON.stringify({ v: 1, type: "hello", driver: "probe" })])).toMatchObject({ type: "welcome" })
    await socket.send([JSON.stringify({ v: 1, type: "bye" })])
    socket.close()
  })

  it("cancels the tasks of a driver that went silent (no bye, no pings) within the heartbeat timeout", async () => {
    const tag = "driver-dead"
    const home = tempDir(tag)
    const numbers = path.join(home, "numbers")
    fs.mkdirSync(numbers)
    fs.writeFileSync(path.join(numbers, "values.json"), "[1,2,3]")
    const socket = new Dealer({ linger: 0, receiveTimeout: 60_000 })
    socket.connect(ray.client.endpoint)
    // zeromq allows one send in flight: the heartbeat and the test's own messages share one chain
    let sending: Promise<void> = Promise.resolve()
    const send = (header: object) => (sending = sending.catch(() => {}).then(() => socket.send([JSON.stringify(header)])))
    const next = async (type: string) => {
      for (;;) {
        let frame: Buffer | undefined
        try {
          ;[frame] = await socket.receive()
        } catch (error) {
          throw new Error(`no ${type} from the bridge within 60 s: ${error instanceof Error ? error.message : String(error)}`)
        }
        const reply = JSON.parse(frame!.toString()) as { type: string }
        if (reply.type === type) return reply
        if (reply.type === "error") throw new Error(frame!.toString())
      }
    }
    await send({ v: 1, type: "hello", driver: "short-lived" })
    await next("welcome")
    // a live driver pings (like BridgeClient) until it vanishes: the bridge must not forget it while its
    // task is still queued or starting, which under load takes longer than the 3 s heartbeat timeout
    const heartbeat = setInterval(() => void send({ v: 1, type: "ping", t: Date.now() }).catch(() => {}), 500)
    onTestFinished(() => {
      clearInterval(heartbeat)
      if (!socket.closed) socket.close()
    })
    await send({
      v: 1,
      type: "submit",
      id: "gated",
      spec: {
        protocol: 1, experimentFile: fixtureFile, step: "a", config: { scale: 1, gpus: 0, sleepMs: 0, gate: true, tag, burst: 0 }, seed: 0,
        invocationHash: "f".repeat(64), inputs: { numbers: { dir: numbers, kind: "numbers", hash: "0".repeat(64) } },
        outputRoot: path.join(home, "out"), scratchDir: path.join(home, "scratch"), resumeDir: path.join(home, "resume"), cpus: 1
      },
      resources: { cpus: 1, gpus: 0, memoryMb: 0 },
      maxRetries: 0,
      node: process.execPath,
      entry: LocalExecutor.workerEntry,
      cwd: process.cwd()
    })
    await next("started")
    const stage = await waitFor("the stage to run", () => readLog(logFile, tag).find((l) => l.phase === "start"))
    clearInterval(heartbeat)
    await sending.catch(() => {})
    socket.close() // the driver vanishes: no bye, no more pings
    const t0 = Date.now()
    await waitFor("the bridge to cancel the silent driver's task", () => {
      try {
        process.kill(stage.pid, 0)
        return undefined
      } catch {
        return true
      }
    }, 20_000)
    expect(Date.now() - t0).toBeLessThan(3000 + 1000 + 2000 + 3000) // timeout + heartbeat tick + kill grace + slack
    expect(processesMentioning(home)).toEqual([])
  })

  it("delivers every event of a burst through tiny high-water marks (back-pressure, no drops)", async () => {
    const burst = 3000
    const small = await Effect.runPromise(RayExecutor.makeRayExecutor({ address: rayAddress, hwm: 4, heartbeatMs: 500, timeoutMs: 5000 }))
    try {
      const seen: Array<number> = []
      const summary = await Effect.runPromise(runShort(small, tempDir("burst"), configFor("burst", { a: { burst } }), observeSteps((event, step) => {
        if (event.type === "metrics" && step === "a" && event.values.burst !== undefined) seen.push(event.step)
      })))
      expect(summary.status).toBe("succeeded")
      expect(seen).toEqual(Array.from({ length: burst }, (_, i) => i)) // all of them, in order
    } finally {
      await small.close()
    }
  })

  it("refuses to listen beyond loopback without a token, and checks the token on every message", async () => {
    await expect(startBridgeProcess({ rayAddress, bindHost: "0.0.0.0" })).rejects.toThrow(/VW2_RAY_BRIDGE_TOKEN/)
    const bridge = await startBridgeProcess({ rayAddress, token: "s3cret" })
    const socket = new Dealer({ linger: 0, receiveTimeout: 5000 })
    try {
      socket.connect(bridge.endpoint)
      const ask = async (header: object) => {
        await socket.send([JSON.stringify(header)])
        for (;;) {
          const [frame] = await socket.receive()
          const reply = JSON.parse(frame!.toString()) as { type: string; message?: string }
          if (reply.type !== "ping") return reply
        }
      }
      expect(await ask({ v: 1, type: "hello", driver: "no-token" })).toMatchObject({ type: "error", message: "bad or missing token" })
      expect(await ask({ v: 1, type: "hello", driver: "wrong", token: "guess" })).toMatchObject({ type: "error", message: "bad or missing token" })
      expect(await ask({ v: 1, type: "hello", driver: "right", token: "s3cret" })).toMatchObject({ type: "welcome" })
    } finally {
      socket.close()
      await bridge.stop()
    }
  })

  it("reports a killed bridge within the heartbeat timeout, and a rerun resumes from the cache", async () => {
    const tag = "bridge-kill"
    openGatesAtEnd(tag, ["a", "wide"])
    const home = tempDir("bridge-kill")
    // a and wide (1 and 2 GPUs) wait on gates the test opens only after the kill, so neither can be
    // published before it, whatever order Ray starts them in (a 2-GPU placement group may be placed before
    // a's task). Only one of them fits on the 2 GPUs at a time, and b needs no GPU, so b always finishes.
    const config = configFor(tag, { a: { gate: true }, b: { gpus: 0 }, wide: { gate: true } })
    // a bridge this driver did not start: only the heartbeats can tell it died
    const bridge: BridgeProcess = await startBridgeProcess({ rayAddress, heartbeatMs: 500, timeoutMs: 3000, forwardEnv: ["VW2_*"] })
    const executor = await Effect.runPromise(RayExecutor.makeRayExecutor({ bridgeEndpoint: bridge.endpoint, heartbeatMs: 500, timeoutMs: 3000 }))
    try {
      const finished = new Set<string>()
      const running = Effect.runPromise(runFixture(executor, home, config, observeSteps((event, step) => void (event.type === "status" && event.status === "done" && finished.add(step!)))))
      await waitFor("b to finish (published)", () => (finished.has("b") ? true : undefined))
      const gated = await waitFor("a or wide to run (held by its gate)", () => readLog(logFile, tag).find((l) => (l.step === "a" || l.step === "wide") && l.phase === "start"))
      const killedAt = Date.now()
      process.kill(bridge.pid, "SIGKILL")
      const summary = await running
      const reportedAfter = Date.now() - killedAt
      expect(summary.status).toBe("failed")
      const steps = byStep(summary)
      expect(steps[gated.step]!.error).toMatch(/silent for [\d.]+ s \(heartbeat timeout 3\.0 s\)/)
      expect(reportedAfter).toBeLessThan(3000 + 2000)
      expect(Object.fromEntries(summary.results.map((r) => [r.step, r.status]))).toEqual({ source: "done", b: "done", a: "failed", wide: "failed", join: "skipped" })
    } finally {
      await executor.close()
      await bridge.stop()
    }
    // with its driver (the bridge) gone, Ray ends the job's workers; their node workers see EOF and exit
    await waitFor("the lost run's node workers to exit", () => (processesMentioning(home).length === 0 ? true : undefined), 20_000)
    // the rerun (new bridge) reuses what was published and runs only what was lost
    for (const step of ["a", "wide"]) fs.writeFileSync(path.join(gateDir, `${tag}-${step}`), "")
    const before = readLog(logFile, tag).length
    const rerun = await Effect.runPromise(runFixture(ray, home, config))
    expect(rerun.status).toBe("succeeded")
    expect(Object.fromEntries(rerun.results.map((r) => [r.step, r.status]))).toEqual({ source: "cached", b: "cached", a: "done", wide: "done", join: "done" })
    const rerunStarts = readLog(logFile, tag).slice(before).filter((l) => l.phase === "start").map((l) => l.step).sort()
    expect(rerunStarts).toEqual(["a", "join", "wide"])
  })

  it("measures the per-invocation scheduling overhead of the bridge", async () => {
    // one invocation at a time (a source-only pipeline): executor.run → the Ray task running on a worker
    // (`started`), and → done (adds the Node worker's start-up and the stage itself)
    const toStart: Array<number> = []
    const toDone: Array<number> = []
    const timed: typeof ray = {
      ...ray,
      run: (request, onEvent) => {
        const t0 = performance.now()
        return ray.run(request, (event) => {
          if (event.type === "started") toStart.push(performance.now() - t0)
          onEvent(event)
        }).pipe(Effect.tap(() => Effect.sync(() => toDone.push(performance.now() - t0))))
      }
    }
    for (let i = 0; i < 4; i++) {
      const summary = await Effect.runPromise(runSourceOnly(timed, tempDir("overhead"), `overhead-${i}`))
      expect(summary.status).toBe("succeeded")
    }
    const median = (xs: Array<number>) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
    console.log(
      `ray executor overhead over ${toStart.length} sequential invocations: submit → task running median ${median(toStart).toFixed(1)} ms ` +
        `(min ${Math.min(...toStart).toFixed(1)}, max ${Math.max(...toStart).toFixed(1)}); submit → done (+ Node worker start-up and stage) median ${median(toDone).toFixed(0)} ms`
    )
    expect(toStart.length).toBe(4)
    expect(median(toStart)).toBeLessThan(2000)
  })
})
