import { Effect, Fiber, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import * as ArtifactStore from "../src/ArtifactStore.ts"
import { parseOverride } from "../src/Config.ts"
import { Executor } from "../src/Executor.ts"
import type { ExecutorShape } from "../src/Executor.ts"
import { defineExperiment } from "../src/Experiment.ts"
import { makeInlineExecutor } from "../src/InlineExecutor.ts"
import { runStageDirect } from "../src/DirectRun.ts"
import { processInfo } from "../src/internal/processTree.ts"
import { makeLocalExecutor } from "../src/LocalExecutor.ts"
import { planExperiment } from "../src/Planner.ts"
import { definePipeline } from "../src/Pipeline.ts"
import { defineProcessStage, hashSources, preflightPlan, torchrunArgv } from "../src/ProcessStage.ts"
import type { Override } from "../src/Config.ts"
import { runPlan } from "../src/Scheduler.ts"
import { Tracker } from "../src/Tracker.ts"
import { recordingTracker, tempDir } from "./helpers.ts"

// the fixture experiment reads its script's directory from the environment (workers inherit it)
const fixtureDir = tempDir("process-fixture")
process.env.VW2_PROCESS_FIXTURE_DIR = fixtureDir
const { stageScript } = await import("./fixtures/processScript.ts")
fs.writeFileSync(path.join(fixtureDir, "stage.mjs"), stageScript)
const fixture = await import("./fixtures/processExperiment.ts")
const experimentFile = fileURLToPath(new URL("./fixtures/processExperiment.ts", import.meta.url))
const experiment = defineExperiment({ name: "process-test", pipeline: fixture.pipeline, config: fixture.baseConfig })

const starts = () => {
  const file = path.join(fixtureDir, "starts.log")
  if (!fs.existsSync(file)) return []
  return fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { step: string; pid: number; argv: Array<string>; cuda: string | null })
}

const run = (home: string, executor: ExecutorShape, overrides: ReadonlyArray<Override> = [], tracker = recordingTracker()) =>
  runPlan({ plan: planExperiment(experiment, overrides), experimentFile }).pipe(
    Effect.provide(Layer.mergeAll(ArtifactStore.layer(home), Layer.succeed(Executor, executor), Layer.succeed(Tracker, tracker.shape)))
  )

const running = (pid: number) => {
  const info = processInfo(pid)
  return info !== undefined && !info.zombie
}

describe("process stages", () => {
  it("run the command through the scheduler and a local worker: outputs, spec, events, logs; a second run is all cache hits", async () => {
    fs.rmSync(path.join(fixtureDir, "starts.log"), { force: true })
    const home = tempDir("process-run")
    const tracker = recordingTracker()
    const executor = makeLocalExecutor({ cpus: 2, gpus: ["3", "5"] })
    const summary = await Effect.runPromise(run(home, executor, [parseOverride("scale.gpus=2")], tracker))
    executor.close()
    expect(summary.status).toBe("succeeded")
    const byStep = Object.fromEntries(summary.results.map((r) => [r.step, r]))
    const store = ArtifactStore.makeArtifactStore(home)
    const scaledDir = path.join(store.entryDir(byStep.scale!.hash), "scaled")
    expect(JSON.parse(fs.readFileSync(path.join(scaledDir, "values.json"), "utf8"))).toEqual([10, 20, 30, 40])

    // the spec the command read: the protocol's fields, absolute paths, the resolved config
    const spec = JSON.parse(fs.readFileSync(path.join(scaledDir, "spec.json"), "utf8"))
    expect(spec).toMatchObject({
      protocol: 1,
      step: "scale",
      stage: "process-scale",
      config: { factor: 10, mode: "ok", gpus: 2 },
      seed: 0,
      invocationHash: byStep.scale!.hash,
      inputs: { numbers: { kind: "numbers", hash: byStep.source!.hash, dir: path.join(store.entryDir(byStep.source!.hash), "numbers") } },
      pauseAtStep: null,
      gpus: ["3", "5"],
      cpus: 1
    })
    expect(path.isAbsolute(spec.outputs.scaled)).toBe(true)
    expect(typeof spec.resumeDir).toBe("string")

    // the command got the granted GPU count in argv and the ids in CUDA_VISIBLE_DEVICES
    const scaleStart = starts().find((s) => s.step === "scale")!
    expect(scaleStart.argv).toEqual(["--nproc=2", "--cpus=1"])
    expect(scaleStart.cuda).toBe("3,5")

    // metrics from fd 3 reached the stage's tracker run; the upload too; the last value is in the summary
    const stageRun = [...tracker.runs.values()].find((r) => r.kind === "stage" && r.info.step === "scale")!
    expect(stageRun.metrics.filter((m) => m.key === "sum").map((m) => m.value)).toEqual([10, 30, 60, 100])
    expect(stageRun.artifacts).toContain("scaled/values.json")
    expect(byStep.scale!.metrics.sum).toBe(100)

    // second run: nothing starts
    const before = starts().length
    const again = await Effect.runPromise(run(home, makeLocalExecutor({ cpus: 2, gpus: ["3", "5"] }), [parseOverride("scale.gpus=2")]))
    expect(again.results.map((r) => r.status)).toEqual(["cached", "cached"])
    expect(starts().length).toBe(before)
  }, 60_000)

  it("sends stdout, stderr and event log lines to the stage log; unreadable event lines are logged, not lost", async () => {
    const result = await runStageDirect(fixture.source, { count: 2, mode: "ok" }, {})
    expect(result.logs[0]).toMatch(/^\$ .*stage\.mjs/)
    expect(result.logs).toContain("hello from process-source on stdout")
    expect(result.logs).toContain("done on stderr")
    expect(result.logs).toContain("event log line")
    expect(result.logs.some((l) => l.includes("not an event"))).toBe(true)
    expect(result.metrics.map((m) => m.values.sum)).toEqual([1, 3])
    expect(result.uploads).toEqual(["numbers/values.json"])
  }, 30_000)

  it("fails with the command's last stderr lines", async () => {
    const home = tempDir("process-fail")
    const summary = await Effect.runPromise(run(home, makeInlineExecutor(), [parseOverride("scale.mode=\"fail\"")]))
    const scale = summary.results.find((r) => r.step === "scale")!
    expect(scale.status).toBe("failed")
    expect(scale.error).toContain("exited with status 3")
    expect(scale.error).toContain("Traceback: the loss went NaN at step 7")
    expect(scale.error).toContain("noise line 30")
    expect(scale.error).not.toContain("noise line 5\n") // only the tail
    expect(ArtifactStore.makeArtifactStore(home).isPublished(scale.hash)).toBe(false)
  }, 30_000)

  it("interruption kills the command, its child and a grandchild in a session of its own that ignores SIGTERM", async () => {
    const home = tempDir("process-kill")
    const pidsFile = path.join(fixtureDir, "pids.json")
    fs.rmSync(pidsFile, { force: true })
    const executor = makeLocalExecutor({ cpus: 2 })
    const fiber = Effect.runFork(run(home, executor, [parseOverride("scale.mode=\"hang\"")]))
    const deadline = Date.now() + 30_000
    while (!fs.existsSync(pidsFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    await new Promise((r) => setTimeout(r, 200))
    const pids = JSON.parse(fs.readFileSync(pidsFile, "utf8")) as { self: number; child: number; grandchild: number }
    for (const pid of Object.values(pids)) expect(running(pid)).toBe(true)
    const startedAt = Date.now()
    await Effect.runPromise(Fiber.interrupt(fiber))
    const tookMs = Date.now() - startedAt
    executor.close()
    for (const [name, pid] of Object.entries(pids)) expect({ name, running: running(pid) }).toEqual({ name, running: false })
    // SIGTERM did not stop the grandchild: it took the SIGKILL after the 2 s grace, well before the worker's own
    expect(tookMs).toBeGreaterThanOrEqual(1_900)
    expect(tookMs).toBeLessThan(10_000)
  }, 60_000)

  it("ends what the command leaves behind when it exits 0 (a background child still holding its stdout)", async () => {
    const pidFile = path.join(tempDir("process-leftover"), "pid")
    const leaves = defineProcessStage({
      name: "leaves-a-child",
      version: "1",
      config: Schema.Struct({}),
      inputs: {},
      outputs: {},
      command: () => ["sh", "-c", `sleep 300 & echo $! > ${pidFile}; echo started`]
    })
    const startedAt = Date.now()
    const result = await runStageDirect(leaves, {}, {})
    expect(result.logs).toContain("started")
    const pid = Number(fs.readFileSync(pidFile, "utf8"))
    expect(running(pid)).toBe(false)
    // ended by the SIGTERM at the command's exit, not by the drain timeout's SIGKILL (2 s + 1 s later)
    expect(Date.now() - startedAt).toBeLessThan(1_500)
  }, 30_000)

  it("hashes its sources into the version: a code change misses the cache; caches and .pyc do not count", () => {
    const dir = tempDir("process-sources")
    fs.mkdirSync(path.join(dir, "pkg", "__pycache__"), { recursive: true })
    fs.writeFileSync(path.join(dir, "pkg", "train.py"), "print('v1')\n")
    fs.writeFileSync(path.join(dir, "pkg", "util.py"), "X = 1\n")
    const define = () =>
      defineProcessStage({
        name: "train",
        version: "1",
        config: Schema.Struct({ lr: Schema.Number }),
        inputs: {},
        outputs: { model: "model" },
        sources: ["pkg", "*.toml"],
        sourcesRoot: dir,
        command: () => ["python3", "-m", "pkg.train"]
      })
    fs.writeFileSync(path.join(dir, "pyproject.toml"), "[project]\nname = 'x'\n")
    const first = define()
    expect(first.version).toMatch(/^1\+src\.[0-9a-f]{16}$/)
    const hashOf = (stage: ReturnType<typeof define>) => {
      const exp = defineExperiment({ name: "src", pipeline: definePipeline().step("train", stage, {}), config: { train: { lr: 0.1 } } })
      return planExperiment(exp).invocations[0]!.hash
    }
    fs.writeFileSync(path.join(dir, "pkg", "__pycache__", "train.cpython-311.pyc"), "bytecode")
    expect(define().version).toBe(first.version)
    expect(hashOf(define())).toBe(hashOf(first))
    // the same code somewhere else hashes the same
    const moved = tempDir("process-sources-moved")
    fs.cpSync(dir, moved, { recursive: true })
    expect(hashSources(["pkg", "*.toml"], moved)).toBe(first.process.sourcesHash)
    fs.writeFileSync(path.join(dir, "pkg", "util.py"), "X = 2\n")
    expect(define().version).not.toBe(first.version)
    expect(hashOf(define())).not.toBe(hashOf(first))
    // a missing source fails at definition, naming it
    expect(() =>
      defineProcessStage({ name: "t", version: "1", config: Schema.Struct({}), inputs: {}, outputs: {}, sources: ["pkg/missing.py"], sourcesRoot: dir, command: () => ["true"] })
    ).toThrow(/defineProcessStage\("t"\): source pkg\/missing\.py does not exist \(looked for .*pkg\/missing\.py\)/)
    expect(() =>
      defineProcessStage({ name: "t", version: "1", config: Schema.Struct({}), inputs: {}, outputs: {}, sources: ["nothing/*.py"], sourcesRoot: dir, command: () => ["true"] })
    ).toThrow(/source nothing\/\*\.py matches no file/)
  })

  it("preflight: a missing path fails the stage before the command starts, and preflightPlan names it for the whole plan", async () => {
    const marker = path.join(tempDir("process-preflight"), "started")
    const needs = defineProcessStage({
      name: "needs-weights",
      version: "1",
      config: Schema.Struct({ weights: Schema.String }),
      inputs: {},
      outputs: { out: "out" },
      preflight: (c) => (fs.existsSync(c.weights) ? undefined : `weights not found: ${c.weights}`),
      command: () => [process.execPath, "-e", `require("fs").writeFileSync(${JSON.stringify(marker)}, "x")`]
    })
    const exp = defineExperiment({ name: "pre", pipeline: definePipeline().step("w", needs, {}), config: { w: { weights: "/nonexistent/cosmos.pt" } } })
    const plan = planExperiment(exp)
    expect(preflightPlan(exp, plan)).toEqual([{ step: "w", problem: "weights not found: /nonexistent/cosmos.pt" }])
    expect(preflightPlan(exp, plan, () => true)).toEqual([]) // cached: it will not run
    await expect(runStageDirect(needs, { weights: "/nonexistent/cosmos.pt" }, {})).rejects.toMatchObject({
      _tag: "StageError",
      message: "preflight: weights not found: /nonexistent/cosmos.pt"
    })
    expect(fs.existsSync(marker)).toBe(false)
  }, 30_000)

  it("torchrunArgv: plain python for one process, torch.distributed.run on a free port for k", () => {
    expect(torchrunArgv({ nproc: 1, module: "m.train", args: ["--x"] })).toEqual(["python3", "-m", "m.train", "--x"])
    expect(torchrunArgv({ nproc: 0, module: "m.train", python: "/v/bin/python" })).toEqual(["/v/bin/python", "-m", "m.train"])
    expect(torchrunArgv({ nproc: 1, module: "m", launcher: "torchrun" })).toEqual(["python3", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1", "-m", "m"])
    expect(torchrunArgv({ nproc: 4, module: "m" })).toEqual(["python3", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4", "-m", "m"])
  })
})
