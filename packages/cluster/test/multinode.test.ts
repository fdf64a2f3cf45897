/**
 * Ray across two nodes that share no store: the suite's head (globalSetup) plus a second node started here
 * with `ray start --address` (1 CPU, no GPU, custom resource `node2`, its own $VW2_RAY_NODE_STORE). Where
 * `unshare` can make a mount namespace (root), the second node's processes see an empty tmpfs over the
 * driver's VW2_HOME, so a stage there could not read or write the driver's store even by accident.
 * Artifacts travel with `artifacts: "object-store"` (python/vw2_ray_bridge/transport.py); `far*` stages prefer
 * the second node, the others the head.
 */
import type { ExecutorShape, RunObserver, RunSummary } from "@vw2/core"
import { ArtifactStore, defineExperiment, Executor, LocalExecutor, planExperiment, runPlan, Tracker } from "@vw2/core"
import { Effect, Layer } from "effect"
import { execFile, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from "vitest"
import { BridgeClient } from "../src/BridgeClient.ts"
import { RayExecutor } from "../src/index.ts"
import { rayCli, rayPython } from "../src/paths.ts"
import type { MultinodeLine } from "./fixtures/multinode.ts"
import { configFor, expectedBlobSums, pipeline } from "./fixtures/multinode.ts"
import { observeSteps, processesMentioning, removeTempDirs, tempDir, waitFor } from "./helpers.ts"

const rayAddress = inject("rayAddress")
const fixtureFile = fileURLToPath(new URL("./fixtures/multinode.ts", import.meta.url))
const scratch = tempDir("multinode")
const logFile = path.join(scratch, "stages.jsonl")
const gateDir = path.join(scratch, "gates")
fs.mkdirSync(gateDir)
const driverHome = tempDir("driver-home")
const node2Store = tempDir("node2-store")
// forwarded to every Ray task (VW2_*); VW2_RAY_NODE_STORE is deliberately not set here: each node has its own
process.env.VW2_TEST_LOG = logFile
process.env.VW2_TEST_GATE = gateDir
process.env.VW2_TEST_DRIVER_HOME = driverHome

const canHideDriverStore = (() => {
  try {
    execFileSync("unshare", ["--mount", "true"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

/** Ports of the head slot the suite's head does not use (RayHead.ts: slot s = 6300+10s…, workers 6340+30s…). */
const node2Ports = () => {
  const slot = rayAddress.endsWith(":6300") ? 1 : 0
  const base = 6300 + 10 * slot
  return [
    `--node-manager-port=${base + 1}`, `--object-manager-port=${base + 2}`, `--dashboard-agent-listen-port=${base + 5}`,
    `--dashboard-agent-grpc-port=${base + 6}`, `--metrics-export-port=${base + 7}`, `--runtime-env-agent-port=${base + 8}`,
    `--min-worker-port=${6340 + 30 * slot}`, `--max-worker-port=${6369 + 30 * slot}`
  ]
}

let node2Group = 0

/** `ray start --address` as the leader of its own process group (its daemons and workers inherit it). */
const startNode2 = async () => {
  const ray = [
    rayCli(), "start", `--address=${rayAddress}`, "--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0",
    "--resources={\"node2\": 1}", `--object-store-memory=${100 * 1024 * 1024}`, "--disable-usage-stats", ...node2Ports()
  ]
  const [command, ...args] = canHideDriverStore
    ? ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=1m vw2-hidden \"$0\" && exec \"$@\"", driverHome, ...ray]
    : ray
  const child = spawn("nice", ["-n", "5", command!, ...args], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, VW2_RAY_NODE_STORE: node2Store, RAY_USAGE_STATS_ENABLED: "0" }
  })
  let output = ""
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
  node2Group = child.pid!
  if (code !== 0) throw new Error(`ray start --address failed (${code}):\n${output.split("\n").slice(-15).join("\n")}`)
}

const killNode2 = (signal: NodeJS.Signals) => {
  try {
    process.kill(-node2Group, signal)
  } catch {}
}

let ray: RayExecutor.RayExecutorShape

beforeAll(async () => {
  await startNode2()
  ray = await Effect.runPromise(RayExecutor.makeRayExecutor({
    address: rayAddress,
    artifacts: "object-store",
    preferNode: (request) => (request.step.startsWith("far") ? "node2" : "node:__internal_head__"),
    heartbeatMs: 500,
    timeoutMs: 5000,
    killGraceMs: 2000
  }))
  // the second node registers with the head's GCS shortly after `ray start` returns; a fresh hello gets the
  // bridge's current view of the cluster
  for (const deadline = Date.now() + 60_000; ;) {
    const probe = await BridgeClient.connect({ endpoint: ray.client.endpoint, timeoutMs: 5000 })
    const nodes = probe.nodes
    probe.close()
    if (nodes.some((n) => n.cpus === 1 && n.gpus === 0)) break
    if (Date.now() > deadline) throw new Error(`the second node did not join within 60 s: ${JSON.stringify(nodes)}`)
    await new Promise((r) => setTimeout(r, 1000))
  }
}, 180_000)

/**
 * Waits until the head's GCS has declared the second node dead and every CPU and GPU of the head is free
 * again. The head is shared with the suite's next file: a second node that still counts as alive (Ray's
 * health check needs ~15–30 s to declare a SIGKILLed node dead) or a task still holding a head CPU would
 * leave that file a different cluster than the one it was written for. Polls from one Ray driver.
 */
const waitForHeadRestored = (timeoutS: number): Promise<void> => {
  const probe = `
import sys, time
import ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + float(sys.argv[2])
while True:
    total, available = ray.cluster_resources(), ray.available_resources()
    alive2 = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and "node2" in n.get("Resources", {})]
    busy = {k: (available.get(k, 0.0), total.get(k, 0.0)) for k in ("CPU", "GPU") if available.get(k, 0.0) < total.get(k, 0.0)}
    if not alive2 and "node2" not in total and not busy:
        break
    if time.monotonic() > deadline:
        sys.exit(f"the head was not restored within {sys.argv[2]} s: second node alive {alive2}, node2 in totals {'node2' in total}, busy (available, total) {busy}")
    time.sleep(0.5)
`
  return new Promise((resolve, reject) =>
    execFile(rayPython(), ["-c", probe, rayAddress, String(timeoutS)], { env: { ...process.env, RAY_USAGE_STATS_ENABLED: "0" } }, (error, _stdout, stderr) =>
      error ? reject(new Error(`${error.message}\n${stderr.split("\n").slice(-5).join("\n")}`)) : resolve()
    )
  )
}

afterAll(async () => {
  await ray?.close()
  killNode2("SIGKILL")
  const t0 = Date.now()
  try {
    await waitForHeadRestored(120)
    console.log(`head restored (second node dead in the GCS, all head CPUs/GPUs free) ${((Date.now() - t0) / 1000).toFixed(1)} s after teardown began`)
  } finally {
    for (const root of headStores) fs.rmSync(root, { recursive: true, force: true })
    removeTempDirs()
  }
}, 180_000)

/** Node-local stores of the head that stages reported (the head runs without VW2_RAY_NODE_STORE: a temp dir). */
const headStores = new Set<string>()

const readLines = (tag: string): Array<MultinodeLine> =>
  fs.existsSync(logFile)
    ? fs.readFileSync(logFile, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as MultinodeLine).filter((l) => l.tag === tag)
    : []

const run = (executor: ExecutorShape, home: string, tag: string, gate: { far1?: boolean } = {}, observer?: RunObserver): Promise<RunSummary> => {
  const plan = planExperiment(defineExperiment({ name: "multinode-test", pipeline, config: configFor(tag, gate) }), [])
  return Effect.runPromise(runPlan({ plan, experimentFile: fixtureFile, ...(observer ? { observers: [observer] } : {}) }).pipe(
    Effect.provide(Layer.mergeAll(ArtifactStore.layer(home), Layer.succeed(Executor, executor), Tracker.layerNoop))
  ))
}

const manifestFiles = (home: string, hash: string) => {
  const manifest = JSON.parse(fs.readFileSync(path.join(home, "store", hash, "manifest.json"), "utf8")) as { files: Array<{ path: string; sha256: string }> }
  return manifest.files.map((f) => `${f.path}:${f.sha256}`).sort()
}

const storeOf = (line: MultinodeLine) => line.inputDirs[0]!.slice(0, line.inputDirs[0]!.indexOf("/store/"))

describe("ray executor across two nodes without a shared store", () => {
  it("runs stages on both nodes, moves inputs and outputs between them byte for byte, fetches each input once per node", async () => {
    const tag = "two-nodes"
    const logs: Array<{ step: string; message: string }> = []
    const t0 = Date.now()
    const summary = await run(ray, driverHome, tag, {}, observeSteps((event, step) => void (event.type === "log" && logs.push({ step: step!, message: event.message }))))
    const rayMs = Date.now() - t0
    expect(summary.status).toBe("succeeded")
    const lines = readLines(tag).filter((l) => l.phase === "start")
    const at = (step: string) => lines.find((l) => l.step === step)!

    // where each stage ran: far1/far2 on the second node, in its own store; near on the head, in another
    for (const step of ["far1", "far2"]) {
      expect(at(step).nodeStore).toBe(node2Store)
      expect(at(step).inputDirs[0]!.startsWith(path.join(node2Store, "store") + "/")).toBe(true)
      expect(at(step).outputRoot.startsWith(node2Store)).toBe(true)
      expect(at(step).resumeDir.startsWith(path.join(node2Store, "resume") + "/")).toBe(true)
      if (canHideDriverStore) expect(at(step).driverStoreVisible).toBe(false)
    }
    const near = at("near")
    expect(near.nodeStore).toBeNull()
    const headStore = storeOf(near)
    headStores.add(headStore)
    expect(headStore).not.toBe(node2Store)
    for (const line of lines) for (const dir of [...line.inputDirs, line.outputRoot, line.resumeDir]) expect(dir.startsWith(driverHome)).toBe(false)

    // each node fetched the source's numbers once: one of far1/far2 fetched, the other found it on the node
    const transportLogs = logs.filter((l) => l.message.startsWith("ray transport object-store"))
    const farLogs = transportLogs.filter((l) => l.step === "far1" || l.step === "far2").map((l) => l.message)
    expect(farLogs.filter((m) => m.includes("inputs fetched: numbers")).length).toBe(1)
    expect(farLogs.filter((m) => m.includes("already on this node: numbers")).length).toBe(1)
    expect(transportLogs.find((l) => l.step === "near")!.message).toContain("inputs fetched: a, b")
    const sourceHash = summary.results.find((r) => r.step === "source")!.hash
    expect(fs.readdirSync(path.join(node2Store, "store"))).toEqual([sourceHash])

    // the published outputs are the same bytes the local executor publishes for the same plan
    const localHome = tempDir("local")
    const local = LocalExecutor.makeLocalExecutor({ cpus: 1, gpus: [] })
    const viaLocal = await run(local, localHome, tag)
    local.close()
    expect(viaLocal.status).toBe("succeeded")
    for (const result of summary.results) {
      const twin = viaLocal.results.find((r) => r.step === result.step)!
      expect(result.hash).toBe(twin.hash)
      expect(result.status).toBe("done")
      expect(manifestFiles(driverHome, result.hash)).toEqual(manifestFiles(localHome, twin.hash))
    }
    const nearHash = summary.results.find((r) => r.step === "near")!.hash
    const total = JSON.parse(fs.readFileSync(path.join(driverHome, "store", nearHash, "total", "total.json"), "utf8")) as { total: number; blobSum: Array<number> }
    expect(total).toEqual({ total: (2 + 3) * (1 + 2 + 3 + 4 + 5), blobSum: expectedBlobSums(tag) })
    expect(summary.results.find((r) => r.step === "far1")!.metrics).toEqual(viaLocal.results.find((r) => r.step === "far1")!.metrics)
    // nothing of the attempts is left in the nodes' work dirs
    expect(fs.readdirSync(path.join(node2Store, "work"))).toEqual([])
    console.log(`two-node run (4 stages, ray object-store transport): ${(rayMs / 1000).toFixed(1)} s; unshare-hidden driver store: ${canHideDriverStore}`)
  }, 300_000)

  it("survives the second node dying mid-stage: Ray retries the stage on the head, which fetches the inputs itself", async () => {
    const tag = "node-killed"
    // a failed test must not leave far1's retry waiting on its gate, holding a head CPU
    onTestFinished(() => fs.writeFileSync(path.join(gateDir, `${tag}-far1`), ""))
    const home = tempDir("killed-home")
    const logs: Array<{ step: string; message: string }> = []
    const running = run(ray, home, tag, { far1: true }, observeSteps((event, step) => void (event.type === "log" && logs.push({ step: step!, message: event.message }))))
    const first = await waitFor("far1 to run on the second node", () => readLines(tag).find((l) => l.step === "far1" && l.phase === "start"), 120_000)
    expect(first.nodeStore).toBe(node2Store)
    const killedAt = Date.now()
    killNode2("SIGKILL")
    // far1's node worker on the dead node loses its Ray worker (stdin EOF) and exits
    await waitFor("the dead node's stage process to exit", () => {
      try {
        process.kill(first.pid, 0)
        return undefined
      } catch {
        return true
      }
    }, 20_000)
    fs.writeFileSync(path.join(gateDir, `${tag}-far1`), "") // the retry may pass
    const summary = await running
    const recoveredMs = Date.now() - killedAt
    expect(summary.status).toBe("succeeded")
    const starts = readLines(tag).filter((l) => l.step === "far1" && l.phase === "start")
    expect(starts.length).toBe(2)
    expect(starts[1]!.nodeStore).toBeNull() // on the head
    headStores.add(storeOf(starts[1]!))
    expect(storeOf(starts[1]!)).not.toBe(node2Store)
    const retryAt = logs.findIndex((l) => l.step === "far1" && l.message.includes("node worker lost; attempt 2"))
    expect(retryAt).toBeGreaterThanOrEqual(0)
    // the head fetched the input itself, from the objects the driver's bridge still holds: once, by the retry
    // or by far2 if that ran on the head first (it was queued for the dead node too) …
    const headStore = storeOf(starts[1]!)
    const retryTransport = logs.slice(retryAt).find((l) => l.step === "far1" && l.message.startsWith("ray transport object-store"))
    expect(retryTransport?.message).toContain(`node store ${headStore};`)
    const headFetches = logs.filter((l) => l.message.startsWith(`ray transport object-store: node store ${headStore}; inputs fetched: numbers`))
    expect(headFetches.length).toBe(1)
    // … and started over: mid-stage checkpoints (resumeDir) stay on the node that wrote them
    expect(first.resumeDir.startsWith(node2Store)).toBe(true)
    expect(starts[1]!.resumeDir.startsWith(storeOf(starts[1]!) + "/resume/")).toBe(true)
    const nearHash = summary.results.find((r) => r.step === "near")!.hash
    const total = JSON.parse(fs.readFileSync(path.join(home, "store", nearHash, "total", "total.json"), "utf8")) as { total: number; blobSum: Array<number> }
    expect(total).toEqual({ total: (2 + 3) * (1 + 2 + 3 + 4 + 5), blobSum: expectedBlobSums(tag) })
    expect(processesMentioning(node2Store)).toEqual([])
    console.log(`second node killed mid-stage: run finished ${(recoveredMs / 1000).toFixed(1)} s after the kill (Ray's node-death detection + retry on the head)`)
  }, 300_000)
})
