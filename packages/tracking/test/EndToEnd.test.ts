/**
 * `vw2 run` of the moons example (experiments/examples/moons.ts) against the real test server: the
 * run tree, params, metrics, tags and artifacts land in MLflow; a rerun is all cache hits whose
 * `vw2.cache = hit:<id>` tags point at the real runs that produced the outputs.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, inject, it } from "vitest"
import { type Run } from "../src/index.ts"
import { testClient } from "./support/promised.ts"

const repo = path.resolve(import.meta.dirname, "../../..")
const uri = inject("mlflowUri")
const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-e2e-"))
const client = testClient({ trackingUri: uri, auth: undefined })
const env = { ...process.env, VW2_HOME: home, MLFLOW_TRACKING_URI: uri }

const vw2 = (...args: Array<string>) => {
  const r = spawnSync(process.execPath, [path.join(repo, "packages/cli/src/bin.ts"), ...args], { cwd: repo, env, encoding: "utf8", timeout: 240_000 })
  if (r.status !== 0) throw new Error(`vw2 ${args.join(" ")} exited ${r.status}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** the MLflow run id of the newest `vw2 run` (from the run records) */
const lastParentRunId = (): string => {
  const records = JSON.parse(vw2("status", "--json")) as Array<{ trackingRunId?: string }>
  return records[0]!.trackingRunId!
}

const children = async (experimentId: string, parent: string): Promise<Array<Run>> =>
  client.searchRuns({ experimentIds: [experimentId], filter: `tags.\`mlflow.parentRunId\` = '${parent}'` })

afterAll(async () => {
  await client.close()
  fs.rmSync(home, { recursive: true, force: true })
})

describe("vw2 run → MLflow", () => {
  it("creates the run tree with params, metrics, tags and artifacts; a rerun's cache hits point at the producing runs", async () => {
    const out = vw2("run", "experiments/examples/moons.ts", "--executor", "inline")
    expect(out).toMatch(/SUCCEEDED/)
    const parentId = lastParentRunId()
    const parent = await client.getRun(parentId)
    expect(parent.info.status).toBe("FINISHED")
    expect(parent.tags["vw2.config_hash"]).toMatch(/^[0-9a-f]{64}$/)
    expect(parent.tags["mlflow.source.git.commit"]).toMatch(/^[0-9a-f]{40}$/)
    expect(parent.tags["mlflow.user"]).toBe(os.userInfo().username)
    expect(parent.tags["vw2.command"]).toContain("experiments/examples/moons.ts")
    expect(parent.params["mlp.epochs"]).toBe("40")
    expect(parent.params["data.trainSize"]).toBe("400")
    const expId = parent.info.experimentId
    expect((await client.getExperimentByName("moons"))?.experimentId).toBe(expId)

    const trials = await children(expId, parentId)
    expect(trials).toHaveLength(1)
    const stages = await children(expId, trials[0]!.info.runId)
    const byStep = new Map(stages.map((s) => [s.tags["vw2.step"], s]))
    expect([...byStep.keys()].sort()).toEqual(["compare", "data", "evalLinear", "evalMlp", "linear", "mlp"])
    for (const s of stages) {
      expect(s.info.status).toBe("FINISHED")
      expect(s.tags["vw2.cache"]).toBe("miss")
      expect(s.tags["vw2.stage_hash"]).toMatch(/^[0-9a-f]{64}$/)
      expect((await client.listArtifacts(s.info.artifactUri)).map((f) => f.path)).toContain("manifest.json")
    }
    const mlp = byStep.get("mlp")!
    expect(mlp.params.epochs).toBe("40")
    const loss = (await client.getMetricHistory(mlp.info.runId, "loss")).sort((a, b) => a.step - b.step)
    expect(loss.map((p) => p.step)).toEqual(Array.from({ length: 40 }, (_, i) => i)) // one point per epoch
    expect(loss[39]!.value).toBeLessThan(loss[0]!.value)
    expect(mlp.metrics.loss!.value).toBe(loss[39]!.value)
    expect((await client.listArtifacts(byStep.get("evalMlp")!.info.artifactUri, "report")).map((f) => f.path)).toEqual(["report/boundary.svg"])
    expect((await client.listArtifacts(byStep.get("compare")!.info.artifactUri, "table")).map((f) => f.path)).toEqual(["table/comparison.md"])

    // rerun: everything cached
    expect(vw2("run", "experiments/examples/moons.ts", "--executor", "inline")).toMatch(/0 ran, 6 cached/)
    const rerunId = lastParentRunId()
    expect(rerunId).not.toBe(parentId)
    const rerunTrials = await children(expId, rerunId)
    const hits = await children(expId, rerunTrials[0]!.info.runId)
    expect(hits).toHaveLength(6)
    for (const hit of hits) {
      const producer = /^hit:([0-9a-f]{32})$/.exec(hit.tags["vw2.cache"] ?? "")?.[1]
      expect(producer).toBe(byStep.get(hit.tags["vw2.step"])!.info.runId)
      expect((await client.getRun(producer!)).tags["vw2.stage_hash"]).toBe(hit.tags["vw2.stage_hash"])
    }

    const table = JSON.parse(vw2("runs", "moons", "--json", "--metric", "mlp/loss")) as { rows: Array<{ runId: string; metrics: Record<string, number> }> }
    const rows = table.rows.filter((r) => r.runId === trials[0]!.info.runId || r.runId === rerunTrials[0]!.info.runId)
    expect(rows.map((r) => r.metrics["mlp/loss"])).toEqual([loss[39]!.value, loss[39]!.value])
  })
})
