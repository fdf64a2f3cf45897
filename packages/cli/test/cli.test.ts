import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { fixture, pidAlive, readLog, sandbox, storeContents, vw2, vw2Async, waitFor } from "./cliHarness.ts"

const overlap = (a: [number, number], b: [number, number]) => Math.min(a[1], b[1]) - Math.max(a[0], b[0])

describe("vw2 plan", () => {
  it("prints trials × stages with hashes and predicted status, as JSON for tools", () => {
    const box = sandbox("plan")
    const first = vw2(box, ["plan", fixture, "--json"])
    expect(first.status).toBe(0)
    const doc = JSON.parse(first.stdout)
    expect(doc.format).toBe("vw2.plan/1")
    expect(doc.steps).toEqual(["source", "a", "b", "join"])
    expect(doc.summary).toMatchObject({ trials: 1, invocations: 4, cached: 0, toRun: 4 })
    expect(doc.invocations.map((i: { status: string }) => i.status)).toEqual(["to-run", "to-run", "to-run", "to-run"])
    expect(vw2(box, ["run", fixture, "--executor", "inline"]).status).toBe(0)
    const second = JSON.parse(vw2(box, ["plan", fixture, "--json", "--set", "b.scale=9"]).stdout)
    const status = Object.fromEntries(second.invocations.map((i: { step: string; status: string }) => [i.step, i.status]))
    expect(status).toEqual({ source: "cached", a: "cached", b: "to-run", join: "to-run" })
    const text = vw2(box, ["plan", fixture])
    expect(text.stdout).toContain("4 distinct invocation(s): 4 cached, 0 to run")
  })
})

describe("vw2 run", () => {
  it("rejects a bad config or --set before any stage runs, naming the path", () => {
    const box = sandbox("badset")
    const bad = vw2(box, ["run", fixture, "--set", "a.nested.levels[1]=1", "--set", "b.scale=fast"])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain("a.nested.levels[1]: Expected a value greater than or equal to 2, got 1")
    expect(bad.stderr).toContain('b.scale: Expected number, got "fast"')
    const unknown = vw2(box, ["run", fixture, "--set", "a.sclae=2"])
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toContain("a.sclae: unknown key")
    const malformed = vw2(box, ["run", fixture, "--set", "a.scale"])
    expect(malformed.status).toBe(2)
    expect(malformed.stderr).toContain("expected path=value")
    expect(readLog(box.log)).toEqual([])
    const storeDir = path.join(box.home, "store")
    expect(fs.existsSync(storeDir) ? fs.readdirSync(storeDir) : []).toEqual([])
  })

  it("runs two independent 1-GPU stages in parallel on --gpus 0,1 with different CUDA_VISIBLE_DEVICES", () => {
    const box = sandbox("gpus")
    const r = vw2(box, ["run", fixture, "--gpus", "0,1", "--set", "a.gpus=1", "--set", "b.gpus=1", "--set", "a.sleepMs=5000", "--set", "b.sleepMs=5000"])
    expect(r.status).toBe(0)
    const log = readLog(box.log)
    const interval = (step: string) => [log.find((l) => l.step === step && l.phase === "start")!.t, log.find((l) => l.step === step && l.phase === "end")!.t] as [number, number]
    // Run one after the other, the intervals could at best touch (overlap ≤ 0); long sleeps keep a slow
    // worker start on a loaded machine from hiding real concurrency.
    expect(overlap(interval("a"), interval("b"))).toBeGreaterThan(0)
    const cuda = ["a", "b"].map((s) => log.find((l) => l.step === s)!.cuda)
    expect(cuda.sort()).toEqual(["0", "1"])
    expect(log.find((l) => l.step === "source")!.cuda).toBe("") // CPU-only stages see no GPU
    expect(r.stdout).toContain("SUCCEEDED")
  })

  it("exits non-zero when a stage fails, still finishing independent stages", () => {
    const box = sandbox("fail")
    const r = vw2(box, ["run", fixture, "--set", "a.fail=true", "--set", "b.sleepMs=300"])
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/failed a [0-9a-f]{10}: branchA failed on purpose/)
    expect(r.stdout).toMatch(/skipped join/)
    expect(readLog(box.log).filter((l) => l.step === "b" && l.phase === "end")).toHaveLength(1)
  })

  it("resumes after kill -9 of the driver: finished invocations are not rerun, results identical", async () => {
    const box = sandbox("kill9")
    const args = ["run", fixture, "--set", "b.sleepMs=4000"]
    const first = vw2Async(box, args)
    // wait until source and a are published and b is running, then kill the driver hard
    await waitFor("a to finish and b to start", () => {
      const log = readLog(box.log)
      return log.some((l) => l.step === "a" && l.phase === "end") && log.some((l) => l.step === "b" && l.phase === "start")
    })
    await waitFor("a to be published", () => fs.readdirSync(path.join(box.home, "store")).length >= 2)
    first.child.kill("SIGKILL")
    await first.done
    const orphan = readLog(box.log).find((l) => l.step === "b")!.pid
    await waitFor("the orphaned worker to exit (stdin EOF)", () => !pidAlive(orphan), 10_000)
    // it was stopped, not left to finish its 4 s sleep
    expect(readLog(box.log).filter((l) => l.step === "b" && l.phase === "end")).toEqual([])

    const second = vw2(box, args)
    expect(second.status).toBe(0)
    const starts = readLog(box.log).filter((l) => l.phase === "start")
    expect(starts.filter((l) => l.step === "source")).toHaveLength(1)
    expect(starts.filter((l) => l.step === "a")).toHaveLength(1)
    expect(starts.filter((l) => l.step === "b")).toHaveLength(2)
    expect(second.stdout).toMatch(/source .* cached/)
    // the killed driver's staging dirs were cleaned up, nothing half-written was published
    expect(fs.readdirSync(path.join(box.home, "tmp"))).toEqual([])

    const clean = sandbox("kill9-clean")
    expect(vw2(clean, args).status).toBe(0)
    expect(storeContents(box.home)).toEqual(storeContents(clean.home))
    const status = vw2(box, ["status", "--json"])
    expect(JSON.parse(status.stdout).map((r: { status: string }) => r.status)).toEqual(["succeeded", "crashed"])
  })

  it("on Ctrl-C interrupts running stages, kills workers, exits 130, and a rerun resumes", async () => {
    const box = sandbox("sigint")
    const args = ["run", fixture, "--set", "a.sleepMs=60000", "--set", "b.sleepMs=60000"]
    const first = vw2Async(box, args)
    await waitFor("both branches to start", () => readLog(box.log).filter((l) => l.phase === "start" && (l.step === "a" || l.step === "b")).length === 2)
    const workers = readLog(box.log).filter((l) => l.step === "a" || l.step === "b").map((l) => l.pid)
    first.child.kill("SIGINT")
    const result = await first.done
    expect(result.status).toBe(130)
    expect(workers.some(pidAlive)).toBe(false)
    expect(fs.readdirSync(path.join(box.home, "tmp"))).toEqual([])
    expect(fs.readdirSync(path.join(box.home, "locks"))).toEqual([])
    const plan = JSON.parse(vw2(box, ["plan", fixture, "--json", "--set", "a.sleepMs=60000", "--set", "b.sleepMs=60000"]).stdout)
    expect(plan.invocations.map((i: { status: string }) => i.status)).toEqual(["cached", "to-run", "to-run", "to-run"])
  })

  it("lets two vw2 processes share a store: each invocation is computed once", async () => {
    const box = sandbox("concurrent")
    const args = ["run", fixture, "--set", "source.sleepMs=1500", "--set", "a.sleepMs=300"]
    const [one, two] = await Promise.all([vw2Async(box, args).done, vw2Async(box, args).done])
    expect(one.status).toBe(0)
    expect(two.status).toBe(0)
    const starts = readLog(box.log).filter((l) => l.phase === "start")
    for (const step of ["source", "a", "b", "join"]) expect(starts.filter((l) => l.step === step)).toHaveLength(1)
    expect(fs.readdirSync(path.join(box.home, "store"))).toHaveLength(4)
  })
})
