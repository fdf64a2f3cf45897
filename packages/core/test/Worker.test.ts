import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { hashValue } from "../src/Canonical.ts"
import type { InvocationEvent } from "../src/RunEvent.ts"
import { decodeEventLine } from "../src/RunEvent.ts"
import type { WorkerSpec } from "../src/worker/protocol.ts"
import { fixtureFile, tempDir } from "./helpers.ts"

const entry = fileURLToPath(new URL("../src/worker/main.ts", import.meta.url))

/** What a non-Node parent (the Ray bridge) does: write spec.json, run the worker, read JSON lines from stdout. */
const runWorker = (spec: Partial<WorkerSpec>, env: NodeJS.ProcessEnv = {}) => {
  const dir = tempDir("worker")
  const full = {
    protocol: 1,
    experimentFile: fixtureFile,
    seed: 3,
    invocationHash: hashValue({ test: Math.random() }),
    inputs: {},
    outputRoot: path.join(dir, "out"),
    scratchDir: path.join(dir, "scratch"),
    resumeDir: path.join(dir, "resume"),
    gpus: [],
    cpus: 1,
    ...spec
  }
  const specFile = path.join(dir, "spec.json")
  fs.writeFileSync(specFile, JSON.stringify(full))
  const result = spawnSync(process.execPath, [entry, specFile], { encoding: "utf8", env: { ...process.env, ...env } })
  const lines = result.stdout.split("\n")
  const events = lines.map(decodeEventLine).filter((e): e is InvocationEvent => e !== undefined)
  return { status: result.status, events, lines, stderr: result.stderr, outputRoot: full.outputRoot }
}

describe("worker entry point (one-shot protocol)", () => {
  it("runs a step from the experiment file, streams events on stdout and exits 0 after done", () => {
    const source = runWorker({ step: "source", config: { count: 3, sleepMs: 0 } })
    expect(source.status).toBe(0)
    expect(source.events[0]).toMatchObject({ type: "started" })
    expect(source.events.at(-1)).toEqual({ type: "done" })
    // the wire form parents in other languages read (python/vw2_stage, the Ray bridge)
    expect(source.lines[0]).toBe(`{"vw2":1,"type":"started","pid":${(source.events[0] as { pid: number }).pid}}`)
    expect(source.lines.filter((l) => l !== "").at(-1)).toBe(`{"vw2":1,"type":"done"}`)
    expect(source.events.some((e) => e.type === "progress")).toBe(true)
    const values = path.join(source.outputRoot, "numbers", "values.json")
    expect(JSON.parse(fs.readFileSync(values, "utf8"))).toEqual([1, 2, 3])

    const branch = runWorker({
      step: "a",
      config: { scale: 2, sleepMs: 0, gpus: 0, fail: false, nested: { levels: [2] } },
      inputs: { numbers: { dir: path.dirname(values), kind: "numbers", hash: "0".repeat(64) } }
    })
    expect(branch.status).toBe(0)
    expect(branch.events).toEqual(expect.arrayContaining([
      expect.objectContaining({ type: "metrics", step: 0, values: { sum: 2 * 6 + 3 * 3 } }),
      { type: "upload", path: "plots/summary.txt" }
    ]))
  })

  it("reports a failing stage with a failed event and exit 1", () => {
    const r = runWorker({ step: "a", config: { scale: 2, sleepMs: 0, gpus: 0, fail: true, nested: { levels: [2] } }, inputs: { numbers: { dir: "/nonexistent", kind: "numbers", hash: "0".repeat(64) } } })
    expect(r.status).toBe(1)
    expect(r.events.at(-1)).toMatchObject({ type: "failed", message: "branchA failed on purpose" })
  })

  it("exits 2 naming the problem when the spec is unusable", () => {
    expect(runWorker({ step: "nope", config: {} }).stderr).toContain('has no step "nope"')
    const bad = runWorker({ step: "source", config: {}, seed: "x" as never })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain("seed must be an integer")
  })
})
