/**
 * A process stage (a command speaking the protocol on fd 3: docs/process-stages.md) tracked in the real test MLflow:
 * its stage run gets the command's metric history and its upload, like any other stage (`vw2 run` → Scheduler →
 * MLflow tracker).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, inject, it } from "vitest"
import { testClient } from "./support/promised.ts"

const repo = path.resolve(import.meta.dirname, "../../..")
const uri = inject("mlflowUri")
const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-process-mlflow-"))
const client = testClient({ trackingUri: uri, auth: undefined })
const env = { ...process.env, VW2_HOME: home, MLFLOW_TRACKING_URI: uri }

afterAll(async () => {
  await client.close()
  fs.rmSync(home, { recursive: true, force: true })
})

const script = String.raw`
import * as fs from "node:fs"
import * as path from "node:path"
const spec = JSON.parse(fs.readFileSync(process.env.VW2_STAGE_SPEC, "utf8"))
const send = (e) => fs.writeSync(Number(process.env.VW2_EVENTS_FD), JSON.stringify({ vw2: 1, ...e }) + "\n")
for (let step = 0; step < 5; step++) send({ type: "metrics", step, timestamp: Date.now(), values: { "train/loss": 1 / (step + 1) } })
fs.mkdirSync(path.join(spec.outputs.model, "plots"), { recursive: true })
fs.writeFileSync(path.join(spec.outputs.model, "plots", "loss.txt"), "1 0.5 0.33 0.25 0.2\n")
send({ type: "upload", path: "model/plots/loss.txt" })
`

describe("process stage → MLflow", () => {
  it("the command's metrics and upload land in its stage run", async () => {
    const dir = path.join(home, "exp")
    fs.mkdirSync(dir)
    fs.writeFileSync(path.join(dir, "train.mjs"), script)
    const file = path.join(dir, "process-mlflow.ts")
    fs.writeFileSync(file, `
import { defineExperiment, definePipeline, defineProcessStage } from "@vw2/core"
import { Schema } from "effect"
const train = defineProcessStage({
  name: "train-command", version: "1", config: Schema.Struct({}), inputs: {}, outputs: { model: "model" },
  sources: [${JSON.stringify(path.join(dir, "train.mjs"))}],
  command: () => [process.execPath, ${JSON.stringify(path.join(dir, "train.mjs"))}]
})
export default defineExperiment({ name: "process-stage-mlflow", pipeline: definePipeline().step("train", train, {}), config: { train: {} } })
`)
    const r = spawnSync(process.execPath, [path.join(repo, "packages/cli/src/bin.ts"), "run", file], { cwd: repo, env, encoding: "utf8", timeout: 240_000 })
    expect(r.status, r.stdout + r.stderr).toBe(0)
    const experiment = await client.getExperimentByName("process-stage-mlflow")
    const runs = await client.searchRuns({ experimentIds: [experiment!.experimentId], filter: "tags.`vw2.step` = 'train'" })
    expect(runs).toHaveLength(1)
    const stageRun = runs[0]!
    expect(stageRun.tags["vw2.stage"]).toBe("train-command")
    const history = (await client.getMetricHistory(stageRun.info.runId, "train/loss")).sort((a, b) => a.step - b.step)
    expect(history.map((m) => [m.step, m.value])).toEqual([[0, 1], [1, 0.5], [2, 1 / 3], [3, 0.25], [4, 0.2]])
    expect((await client.listArtifacts(stageRun.info.artifactUri, "model/plots")).map((f) => f.path)).toEqual(["model/plots/loss.txt"])
  }, 240_000)
})
