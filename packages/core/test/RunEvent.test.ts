/**
 * The run-event stream: every RunEvent variant survives the Schema round trip as JSON, the wire lines of the
 * invocation events are exactly what python/vw2_stage and the Ray bridge write, and runPlan feeds its
 * observers every event in order, whatever one of them does wrong.
 */
import { Effect, Fiber, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { makeInlineExecutor } from "../src/InlineExecutor.ts"
import { makeLocalExecutor } from "../src/LocalExecutor.ts"
import { parseOverride } from "../src/Config.ts"
import { defineExperiment } from "../src/Experiment.ts"
import { planExperiment } from "../src/Planner.ts"
import type { InvocationEvent, RunObserver } from "../src/RunEvent.ts"
import { decodeEventLine, encodeEventLine, RunEvent } from "../src/RunEvent.ts"
import { baseConfig, pipeline } from "./fixtures/experiment.ts"
import { recordingTracker, runInProcess, tempDir } from "./helpers.ts"

const plan = planExperiment(defineExperiment({ name: "events", pipeline, config: baseConfig, seeds: [0, 1] }), [])
const hash = plan.invocations[1]!.hash

/** one of each: the invocation events as the wire carries them, and as the Scheduler stamps them */
const invocationEvents: ReadonlyArray<readonly [InvocationEvent, string]> = [
  [{ type: "progress", done: 3, total: 10 }, `{"vw2":1,"type":"progress","done":3,"total":10}`],
  [{ type: "progress", done: 3, total: 10, message: "epoch 3" }, `{"vw2":1,"type":"progress","done":3,"total":10,"message":"epoch 3"}`],
  [
    { type: "metrics", step: 7, timestamp: 1700000000123, values: { "fit/loss": 0.25, "fit/acc": 1 } },
    `{"vw2":1,"type":"metrics","step":7,"timestamp":1700000000123,"values":{"fit/loss":0.25,"fit/acc":1}}`
  ],
  [{ type: "log", message: "hello \"world\"", timestamp: 1700000000000 }, `{"vw2":1,"type":"log","message":"hello \\"world\\"","timestamp":1700000000000}`],
  [{ type: "upload", path: "plots/loss.png" }, `{"vw2":1,"type":"upload","path":"plots/loss.png"}`],
  [{ type: "checkpoint", step: 200, total: 1000 }, `{"vw2":1,"type":"checkpoint","step":200,"total":1000}`],
  [{ type: "started", pid: 4242 }, `{"vw2":1,"type":"started","pid":4242}`],
  [{ type: "started", pid: 4242, gpus: ["0", "1"] }, `{"vw2":1,"type":"started","pid":4242,"gpus":["0","1"]}`],
  [{ type: "done" }, `{"vw2":1,"type":"done"}`],
  [{ type: "failed", message: "boom" }, `{"vw2":1,"type":"failed","message":"boom"}`],
  [{ type: "failed", message: "boom", stack: "Error: boom\n    at x" }, `{"vw2":1,"type":"failed","message":"boom","stack":"Error: boom\\n    at x"}`]
]

const lifecycleEvents: ReadonlyArray<RunEvent> = [
  { type: "run-started", plan, backend: "local", tags: { "vw2.command": "vw2 run x.ts" }, artifacts: [{ localPath: "/tmp/config.json", artifactPath: "config.json" }], timestamp: 1 },
  { type: "trial-started", trial: plan.trials[0]!.id, timestamp: 2 },
  { type: "status", invocation: hash, status: "running", gpus: ["0"], note: "cached entry was corrupt", timestamp: 3 },
  { type: "status", invocation: hash, status: "failed", error: "boom", durationMs: 12, stderrTail: "line", publishing: true, timestamp: 4 },
  { type: "status", invocation: hash, status: "pending", timestamp: 4 },
  { type: "cache-hit", invocation: hash, producedBy: "abc123", metrics: { sum: 3 }, timestamp: 5 },
  { type: "cache-hit", invocation: hash, metrics: {}, timestamp: 5 },
  { type: "published", invocation: hash, entryDir: "/store/h", files: ["scaled/values.json"], uploads: ["plots/summary.txt"], metrics: { sum: 3 }, durationMs: 40, gpus: [], timestamp: 6 },
  { type: "system-metrics", invocation: hash, step: 0, timestamp: 7, values: { "system/cpu_utilization_percentage": 12.5 } },
  { type: "rollup", trials: [{ trial: plan.trials[0]!.id, ok: true, metrics: { "a/sum": 3 } }], timestamp: 8 },
  { type: "run-ended", status: "interrupted", durationMs: 99, timestamp: 9 }
]

const throughJson = (event: RunEvent): RunEvent => Schema.decodeUnknownSync(RunEvent)(JSON.parse(JSON.stringify(Schema.encodeSync(RunEvent)(event))))

describe("RunEvent", () => {
  it("round-trips every variant through the Schema as JSON", () => {
    for (const event of [...invocationEvents.map(([e]) => ({ ...e, invocation: hash })), ...lifecycleEvents]) expect(throughJson(event)).toEqual(event)
    const types = new Set([...invocationEvents.map(([e]) => e.type), ...lifecycleEvents.map((e) => e.type)])
    // every member of the union is covered above
    expect([...types].sort()).toEqual(RunEvent.members.flatMap((family) => family.members.map((m) => String((m.fields.type.ast as unknown as { literal: string }).literal))).sort())
  })

  it("writes and reads the invocation events' wire lines exactly as before, never with the driver's stamp", () => {
    for (const [event, line] of invocationEvents) {
      expect(encodeEventLine(event)).toBe(line)
      expect(encodeEventLine({ ...event, invocation: hash })).toBe(line)
      expect(decodeEventLine(line)).toEqual(event)
    }
    // key order does not matter to a reader (the worker used to put "vw2" last)
    expect(decodeEventLine(`{"type":"metrics","step":1,"timestamp":2,"values":{"x":1},"vw2":1}`)).toEqual({ type: "metrics", step: 1, timestamp: 2, values: { x: 1 } })
  })

  it("leaves anything that is not a well-formed event to be read as log text", () => {
    for (
      const line of [
        "I0000 00:00:1796608006 port.cc:153] oneDNN custom operations are on",
        "{not json",
        `{"type":"metrics","step":1,"timestamp":2,"values":{}}`, // no "vw2": 1
        `{"vw2":2,"type":"done"}`,
        `{"vw2":1,"type":"nosuch"}`,
        `{"vw2":1,"type":"metrics","step":"1","timestamp":2,"values":{}}`,
        `{"vw2":1,"type":"checkpoint","step":3}`,
        `{"vw2":1,"type":"status","invocation":"h","status":"done","timestamp":1}` // life-cycle events never come from a stage
      ]
    ) expect(decodeEventLine(line)).toBeUndefined()
  })
})

/** records what it sees; `trouble` makes it fail (an Effect failure) or throw (a defect) on some events */
const recorder = (trouble?: (event: RunEvent) => "fail" | "throw" | undefined) => {
  const seen: Array<RunEvent> = []
  const observer: RunObserver = {
    onEvent: (event) => {
      const what = trouble?.(event)
      if (what === "throw") throw new Error(`observer threw on ${event.type}`)
      seen.push(event)
      return what === "fail" ? Effect.fail(new Error(`observer failed on ${event.type}`)) : Effect.void
    }
  }
  return { observer, seen }
}

describe("runPlan's observers", () => {
  it("see every event in the order it happened, and one that fails or throws fails neither the run nor the others", async () => {
    const home = tempDir("observers")
    const tracker = recordingTracker()
    const calm = recorder()
    const slow: RunObserver = { onEvent: () => Effect.sleep(2) } // a slow observer holds up nobody
    const failing = recorder((e) => (e.type === "status" ? "fail" : undefined))
    const throwing = recorder((e) => (e.type === "metrics" || e.type === "run-started" ? "throw" : undefined))
    const experiment = defineExperiment({ name: "observers", pipeline, config: baseConfig, seeds: [0, 1] })
    const overrides = [parseOverride("b.fail=true")]
    const planned = planExperiment(experiment, overrides)
    const summary = await Effect.runPromise(runInProcess({
      experiment,
      home,
      executor: makeLocalExecutor({ cpus: 2 }),
      overrides,
      tracker: tracker.shape,
      observers: [slow, failing.observer, calm.observer, throwing.observer]
    }))
    expect(summary.status).toBe("failed") // b failed on purpose; the observers did not make it fail
    expect(summary.results.filter((r) => r.step === "a").every((r) => r.status === "done")).toBe(true)
    // the run tree was fed as well: every tracker run was opened and ended
    expect([...tracker.runs.values()].every((r) => r.status !== undefined)).toBe(true)

    const seen = calm.seen
    expect(seen[0]!.type).toBe("run-started")
    expect(seen.at(-1)).toMatchObject({ type: "run-ended", status: "failed" })
    expect(seen.at(-2)!.type).toBe("rollup")
    // an observer that failed on some events still saw all of them, in the same order
    expect(failing.seen).toEqual(seen)
    expect(throwing.seen).toEqual(seen.filter((e) => e.type !== "metrics" && e.type !== "run-started"))
    // per invocation: pending → running → its stage's events → published → done (or → failed, or → skipped)
    for (const inv of planned.invocations) {
      const own = seen.filter((e) => "invocation" in e && e.invocation === inv.hash)
      const statuses = own.flatMap((e) => (e.type === "status" ? [e.status] : []))
      const step = summary.results.find((r) => r.hash === inv.hash)?.step
      if (step === undefined) continue
      if (step === "join") expect(statuses).toEqual(["pending", "skipped"])
      else if (step === "b") expect(statuses).toEqual(["pending", "running", "failed"])
      else {
        expect(statuses).toEqual(["pending", "running", "done"])
        const types = own.map((e) => e.type)
        const running = own.findIndex((e) => e.type === "status" && e.status === "running")
        expect(types.indexOf("published")).toBe(types.length - 2)
        // everything the stage said comes between its start and its publication
        for (const [i, e] of own.entries()) if (e.type === "metrics" || e.type === "progress" || e.type === "upload") expect(i).toBeGreaterThan(running)
      }
    }
    // the stage events carry their invocation, and are what the stage emitted
    const metrics = seen.filter((e) => e.type === "metrics")
    expect(metrics.length).toBeGreaterThan(0)
    expect(metrics.every((e) => e.invocation !== undefined && planned.invocations.some((inv) => inv.hash === e.invocation))).toBe(true)
  })

  it("are told an interrupted run ended, after the run tree closed what it opened", async () => {
    const home = tempDir("observers-interrupt")
    const tracker = recordingTracker()
    const calm = recorder()
    const experiment = defineExperiment({ name: "observers", pipeline, config: baseConfig })
    const overrides = [parseOverride("a.sleepMs=60000")]
    const a = planExperiment(experiment, overrides).trials[0]!.invocations.a
    const fiber = Effect.runFork(runInProcess({ experiment, home, executor: makeInlineExecutor(), overrides, tracker: tracker.shape, observers: [calm.observer] }))
    const deadline = Date.now() + 60_000
    while (!calm.seen.some((e) => e.type === "status" && e.status === "running" && e.invocation === a)) {
      if (Date.now() > deadline) throw new Error("a did not start")
      await new Promise((r) => setTimeout(r, 50))
    }
    await Effect.runPromise(Fiber.interrupt(fiber))
    expect(calm.seen.at(-1)).toMatchObject({ type: "run-ended", status: "interrupted" })
    expect(calm.seen.some((e) => e.type === "status" && e.status === "interrupted")).toBe(true)
    const runs = [...tracker.runs.values()]
    expect(runs.every((r) => r.status !== undefined)).toBe(true)
    expect(runs.find((r) => r.kind === "experiment")!.status).toBe("KILLED")
  })
})
