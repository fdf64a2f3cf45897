/**
 * Run records a researcher can trust, read back through MLflow's REST API from the real test server:
 * vw2 experiments open in the UI's model-training view, and runs left RUNNING by a driver killed with -9
 * are closed as KILLED by the next vw2 process, whatever experiment or VW2_HOME it works in.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { flattenConfig } from "@vw2/core"
import { afterAll, describe, expect, inject, it } from "vitest"

import { tcpProxy } from "./support/tcpProxy.ts"
import { testClient, openTracker } from "./support/promised.ts"

const uri = inject("mlflowUri")
const client = testClient({ trackingUri: uri, auth: undefined })
const homes: Array<string> = []
const newHome = () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-records-"))
  homes.push(home)
  return home
}
const stamp = Date.now()

afterAll(async () => {
  await client.close()
  for (const home of homes) fs.rmSync(home, { recursive: true, force: true })
})

/** Starts orphanDriver.ts; resolves each printed id as it appears. */
const startDriver = (trackingUri: string, home: string, experiment: string, step: string) => {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, "support", "orphanDriver.ts"), trackingUri, home, experiment, step], { stdio: ["ignore", "pipe", "inherit"] })
  const ids: Record<string, string> = {}
  let buffer = ""
  child.stdout.on("data", (chunk) => {
    buffer += String(chunk)
    const lines = buffer.split("\n")
    buffer = lines.pop()!
    for (const line of lines) Object.assign(ids, JSON.parse(line))
  })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)))
  return { child, ids, exited }
}

const waitFor = async <A>(what: string, probe: () => Promise<A | undefined> | A | undefined, timeoutMs = 60_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const repo = path.resolve(import.meta.dirname, "../../..")
const fixture = path.join(repo, "packages/core/test/fixtures/experiment.ts")

/** The real `vw2` binary against the test server; returns the MLflow id of the experiment run it made. */
const vw2Run = (home: string, ...args: Array<string>): string => {
  const env = { ...process.env, VW2_HOME: home, MLFLOW_TRACKING_URI: uri }
  const bin = path.join(repo, "packages/cli/src/bin.ts")
  const r = spawnSync(process.execPath, [bin, "run", ...args], { cwd: repo, env, encoding: "utf8", timeout: 240_000 })
  if (r.status !== 0) throw new Error(`vw2 run ${args.join(" ")} exited ${r.status}\n${r.stdout}\n${r.stderr}`)
  const status = spawnSync(process.execPath, [bin, "status", "--json"], { cwd: repo, env, encoding: "utf8" })
  return (JSON.parse(status.stdout) as Array<{ trackingRunId: string }>)[0]!.trackingRunId
}

const download = async (artifactUri: string, artifactPath: string): Promise<string> => {
  const file = path.join(newHome(), path.basename(artifactPath))
  await client.downloadArtifact(artifactUri, artifactPath, file)
  return fs.readFileSync(file, "utf8")
}

const statusOf = async (runId: string) => (await client.getRun(runId)).info.status

describe("the experiment run's record of where and what ran", () => {
  it("carries git commit and dirty flag (with the diff), host facts, the resolved config and the experiment file", async () => {
    const runId = vw2Run(newHome(), fixture, "--executor", "inline")
    const run = await client.getRun(runId)
    const tags = run.tags
    expect(tags["vw2.host.name"]).toBe(os.hostname())
    expect(tags["vw2.host.cpu"]).toBe(os.cpus()[0]!.model.trim())
    expect(tags["vw2.host.cores"]).toBe(String(os.cpus().length))
    expect(tags["vw2.host.memory"]).toBe(`${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`)
    const smi = spawnSync("nvidia-smi", ["-L"], { encoding: "utf8" })
    if (smi.status === 0) expect(tags["vw2.host.gpus"]).toMatch(/^[^;]+ \(\d+ MiB\)(; [^;]+ \(\d+ MiB\))*$/)
    else expect(tags["vw2.host.gpus"]).toBe("none")
    expect(tags["vw2.node"]).toBe(process.version)
    expect(tags["vw2.tf_backend"]).toBeDefined()
    const files = (await client.listArtifacts(run.info.artifactUri)).map((f) => f.path)

    // the config file is the one the run's params were flattened from
    const config = JSON.parse(await download(run.info.artifactUri, "config.json")) as unknown
    expect(flattenConfig(config)).toEqual(run.params)
    expect(Object.keys(run.params).length).toBeGreaterThan(3)
    expect(files).toContain("experiment")
    expect(await download(run.info.artifactUri, "experiment/experiment.ts")).toBe(fs.readFileSync(fixture, "utf8"))

    const head = spawnSync("git", ["rev-parse", "HEAD"], { cwd: repo, encoding: "utf8" })
    if (head.status !== 0) {
      // a copy of the sources without .git: the tags say so, and the run went on
      expect(tags["vw2.git.commit"]).toMatch(/^none \(.+\)$/)
      expect(tags["vw2.git.dirty"]).toBe("unknown")
      return
    }
    expect(tags["vw2.git.commit"]).toBe(head.stdout.trim())
    expect(["true", "false"]).toContain(tags["vw2.git.dirty"])
    if (tags["vw2.git.dirty"] === "true") {
      expect(files).toContain("git.diff")
      expect(await download(run.info.artifactUri, "git.diff")).toMatch(/^diff --git a\//)
    } else expect(files).not.toContain("git.diff")
  })
})

describe("experiments open in MLflow's model-training view", () => {
  it("tags every experiment vw2 creates or reuses with mlflow.experimentKind and links the training view", async () => {
    const created = `records-kind-new-${stamp}`
    const reused = `records-kind-old-${stamp}`
    const chosen = `records-kind-chosen-${stamp}`
    // experiments made before vw2 tagged them, and one whose kind a user picked in the UI
    await client.createExperiment(reused)
    await client.createExperiment(chosen, { "mlflow.experimentKind": "genai_development" })
    const tracker = await openTracker({ trackingUri: uri, home: newHome(), warn: () => undefined })
    for (const experiment of [created, reused, chosen]) {
      const run = await tracker.startExperimentRun({ experiment, configHash: "a".repeat(64), params: {}, tags: {} })
      tracker.endRun(run, "FINISHED")
    }
    await tracker.close()
    const kind = async (name: string) => (await client.getExperimentByName(name))!.tags["mlflow.experimentKind"]
    expect(await kind(created)).toBe("custom_model_development")
    expect(await kind(reused)).toBe("custom_model_development")
    expect(await kind(chosen)).toBe("genai_development") // a user's choice is kept
    const id = (await client.getExperimentByName(created))!.experimentId
    expect(tracker.describe()).toBe(`${uri}/#/experiments/${id}?workflowType=machine_learning`)
  })
})

describe("runs left RUNNING by a driver killed with -9", () => {
  it("are closed as KILLED by the next vw2 process, even when it works in another experiment and VW2_HOME", async () => {
    const experiment = `records-orphans-${stamp}`
    const victim = startDriver(uri, newHome(), experiment, "train")
    const survivor = startDriver(uri, newHome(), `records-other-${stamp}`, "train")
    const stage = await waitFor("the victim's stage run", () => victim.ids.stage)
    const survivorStage = await waitFor("the survivor's stage run", () => survivor.ids.stage)
    const { parent, trial } = victim.ids as { parent: string; trial: string }
    victim.child.kill("SIGKILL")
    expect(await victim.exited).toBe("SIGKILL")
    expect(await Promise.all([parent, trial, stage].map(statusOf))).toEqual(["RUNNING", "RUNNING", "RUNNING"])
    expect((await client.getRun(stage)).tags["vw2.driver"]).toMatch(new RegExp(`^host=${os.hostname()} pid=${victim.child.pid} boot=\\S+ pidns=\\d+$`))

    const warnings: Array<string> = []
    const next = await openTracker({ trackingUri: uri, home: newHome(), warn: (m) => warnings.push(m) })
    expect(await Promise.all([parent, trial, stage].map(statusOf))).toEqual(["KILLED", "KILLED", "KILLED"])
    expect((await client.getRun(stage)).info.endTime).toBeGreaterThan(0)
    expect(warnings.filter((w) => w.includes(stage))).toHaveLength(1)
    expect(await statusOf(survivorStage)).toBe("RUNNING") // a live driver's runs are left alone
    await next.close()

    survivor.child.kill("SIGKILL")
    await survivor.exited
    await (await openTracker({ trackingUri: uri, home: newHome(), warn: () => undefined })).close()
    expect(await statusOf(survivorStage)).toBe("KILLED")
  })

  it("a stage run whose create reached the server but whose id never came back is found by its create token", async () => {
    const experiment = `records-in-flight-${stamp}`
    const home = newHome()
    const step = `doomed-${stamp}`
    // the server's answer to this stage run's create never reaches the driver
    const proxy = await tcpProxy(uri, { stallAfter: step })
    try {
      const driver = startDriver(proxy.url, home, experiment, step)
      await waitFor("the driver's trial run", () => driver.ids.trial)
      const experimentId = (await client.getExperimentByName(experiment))!.experimentId
      const doomed = await waitFor("the stage run on the server", async () =>
        (await client.searchRuns({ experimentIds: [experimentId], filter: `attributes.run_name = '${step}'` }))[0])
      driver.child.kill("SIGKILL")
      expect(await driver.exited).toBe("SIGKILL")
      expect(driver.ids.stage).toBeUndefined() // the driver never learnt the id
      expect(doomed.info.status).toBe("RUNNING")

      // the dead driver's open-run records: one of them has no run id on record
      const known = new Set(fs.readFileSync(path.join(home, "tracking", "run-ids.jsonl"), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { ref: string }).ref))
      const open = fs.readdirSync(path.join(home, "tracking", "open-runs")).map((f) => f.replace(/\.json$/, ""))
      const unknown = open.filter((ref) => !known.has(ref))
      expect(open).toHaveLength(3)
      expect(unknown).toHaveLength(1)

      const next = await openTracker({ trackingUri: proxy.url, home, warn: () => undefined })
      expect(next.resolveRunId(unknown[0]!)).toBe(doomed.info.runId)
      expect(await statusOf(doomed.info.runId)).toBe("KILLED")
      expect(await Promise.all([driver.ids.parent!, driver.ids.trial!].map(statusOf))).toEqual(["KILLED", "KILLED"])
      expect(fs.readdirSync(path.join(home, "tracking", "open-runs"))).toEqual([])
      await next.close()
    } finally {
      await proxy.close()
    }
  })
})

describe("checkpoints as MLflow logged models, and the model registry", () => {
  /** a checkpoint as stages write one: a small JSON and a binary weights file */
  const checkpoint = (dir: string, bytes: number) => {
    fs.mkdirSync(dir, { recursive: true })
    const weights = Buffer.alloc(bytes)
    for (let i = 0; i < bytes; i++) weights[i] = (i * 7919) % 251
    fs.writeFileSync(path.join(dir, "weights.bin"), weights)
    fs.writeFileSync(path.join(dir, "model.json"), JSON.stringify({ dim: 8, layers: 2 }))
    return [
      { localPath: path.join(dir, "model.json"), artifactPath: "model.json" },
      { localPath: path.join(dir, "weights.bin"), artifactPath: "weights.bin" }
    ]
  }
  const runOutputs = async (runId: string) =>
    ((await (await fetch(`${uri}/api/2.0/mlflow/runs/get?run_id=${runId}`)).json()) as { run: { outputs?: { model_outputs?: Array<{ model_id: string }> } } }).run.outputs?.model_outputs ?? []

  it("logs a stage's checkpoint as a READY logged model of its run and registers it as a model version", async () => {
    const home = newHome()
    const tracker = await openTracker({ trackingUri: uri, home, warn: () => undefined })
    const parent = await tracker.startExperimentRun({ experiment: `records-models-${stamp}`, configHash: "d".repeat(64), params: {}, tags: {} })
    const stage = await tracker.startStageRun(parent, { step: "warmup", stage: "warmup", stageHash: "h", cache: { _tag: "miss" }, params: {}, tags: {} })
    const files = checkpoint(path.join(home, "ckpt"), 300_000)
    await tracker.logModel(stage, { output: "checkpoint", kind: "dldm-checkpoint", name: "warmup.checkpoint", files, tags: { "vw2.step": "warmup" } })
    tracker.endRun(stage, "FINISHED")
    const version = await tracker.registerModel(`records-model-${stamp}`, stage, "checkpoint")
    tracker.endRun(parent, "FINISHED")
    await tracker.close()

    const run = await client.getRun(stage)
    const modelId = run.tags["vw2.model.checkpoint"]!
    expect(modelId).toMatch(/^m-[0-9a-f]{32}$/)
    const model = await client.getLoggedModel(modelId)
    expect(model).toMatchObject({ name: "warmup-checkpoint", status: "LOGGED_MODEL_READY", sourceRunId: stage, experimentId: run.info.experimentId })
    expect(model.tags).toMatchObject({ "vw2.step": "warmup", "vw2.output": "checkpoint" })
    expect((await runOutputs(stage)).map((o) => o.model_id)).toEqual([modelId])
    const listed = await client.listArtifacts(model.artifactUri)
    expect(listed.map((f) => [f.path, f.fileSize])).toEqual([["model.json", fs.statSync(files[0]!.localPath).size], ["weights.bin", 300_000]])
    const back = path.join(home, "weights.back")
    await client.downloadArtifact(model.artifactUri, "weights.bin", back)
    expect(fs.readFileSync(back).equals(fs.readFileSync(files[1]!.localPath))).toBe(true)

    expect(version).toBe("1")
    const versions = await client.searchModelVersions(`name = 'records-model-${stamp}'`)
    expect(versions).toEqual([{ name: `records-model-${stamp}`, version: "1", source: `models:/${modelId}`, runId: stage, status: "READY" }])
  })

  it("a checkpoint logged while the server is down is spooled (files copied) and logged when it is back", async () => {
    const home = newHome()
    const proxy = await tcpProxy(uri)
    try {
      const tracker = await openTracker({ trackingUri: proxy.url, home, warn: () => undefined, probeMs: { min: 100, max: 300 } })
      const parent = await tracker.startExperimentRun({ experiment: `records-models-${stamp}`, configHash: "e".repeat(64), params: {}, tags: {} })
      const stage = await tracker.startStageRun(parent, { step: "ar", stage: "ar", stageHash: "h2", cache: { _tag: "miss" }, params: {}, tags: {} })
      proxy.refuse(true)
      const files = checkpoint(path.join(home, "ckpt"), 50_000)
      const expected = fs.readFileSync(files[1]!.localPath)
      await tracker.logModel(stage, { output: "checkpoint", kind: "ar-checkpoint", name: "ar.checkpoint", files })
      expect(tracker.degraded()).toBe(true)
      fs.rmSync(path.join(home, "ckpt"), { recursive: true }) // the store may move the files once logModel resolved
      const second = await tracker.registerModel(`records-model-${stamp}`, stage, "checkpoint")
      expect(second).toBeUndefined() // spooled: registered on replay
      tracker.endRun(stage, "FINISHED")
      tracker.endRun(parent, "FINISHED")
      proxy.refuse(false)
      await tracker.flush()
      expect(tracker.degraded()).toBe(false)
      await tracker.close()

      const modelId = (await client.getRun(stage)).tags["vw2.model.checkpoint"]!
      const model = await client.getLoggedModel(modelId)
      expect(model.status).toBe("LOGGED_MODEL_READY")
      const back = path.join(home, "weights.back")
      await client.downloadArtifact(model.artifactUri, "weights.bin", back)
      expect(fs.readFileSync(back).equals(expected)).toBe(true)
      expect(fs.readdirSync(path.join(home, "tracking", "blobs"))).toEqual([])
      const versions = await client.searchModelVersions(`name = 'records-model-${stamp}'`)
      expect(versions.find((v) => v.version === "2")).toMatchObject({ source: `models:/${modelId}`, runId: stage })
    } finally {
      await proxy.close()
    }
  })

  it("registering an output that was not logged as a model warns and registers nothing", async () => {
    const warnings: Array<string> = []
    const tracker = await openTracker({ trackingUri: uri, home: newHome(), warn: (m) => warnings.push(m) })
    const parent = await tracker.startExperimentRun({ experiment: `records-models-${stamp}`, configHash: "f".repeat(64), params: {}, tags: {} })
    expect(await tracker.registerModel(`records-none-${stamp}`, parent, "report")).toBeUndefined()
    tracker.endRun(parent, "FINISHED")
    await tracker.close()
    expect(warnings.join("\n")).toMatch(/logged no model for output "report"/)
    expect(await client.searchModelVersions(`name = 'records-none-${stamp}'`)).toEqual([])
  })
})
