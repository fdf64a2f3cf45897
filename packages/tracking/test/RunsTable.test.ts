/**
 * `vw2 runs` against the real test server: run trees written over MLflow's REST API the way the engine
 * records them (experiment run → trial runs → stage runs, `vw2.*` tags, cache hits pointing at their
 * producer), read back as the comparison table, its text form and the CLI's exit codes.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { distinctHeaders, formatRunsTable, headlineColumns, runsTable, stepMetricKey } from "../src/index.ts"
import { testClient } from "./support/promised.ts"

const repo = path.resolve(import.meta.dirname, "../../..")
const uri = inject("mlflowUri")
const client = testClient({ trackingUri: uri, auth: undefined })
const experiment = `runs-table-${Date.now()}`
const other = `${experiment}-other`
const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-runs-"))

afterAll(async () => {
  await client.close()
  fs.rmSync(home, { recursive: true, force: true })
})

const run = async (
  experimentId: string,
  name: string,
  options: { parent?: string; tags?: Record<string, string>; params?: Record<string, string>; metrics?: Record<string, number> }
) => {
  const info = await client.createRun({ experimentId, runName: name, tags: { ...options.tags, ...(options.parent ? { "mlflow.parentRunId": options.parent } : {}) } })
  await client.logBatch(info.runId, {
    params: Object.entries(options.params ?? {}).map(([key, value]) => ({ key, value })),
    metrics: Object.entries(options.metrics ?? {}).map(([key, value]) => ({ key, value, step: 0, timestamp: Date.now() }))
  })
  await client.updateRun(info.runId, { status: "FINISHED", endTime: Date.now() })
  return info.runId
}

const stage = (step: string, cache = "miss") => ({ "vw2.stage": step.replace(/-calvin$/, ""), "vw2.step": step, "vw2.cache": cache })

const ids: Record<string, string> = {}

/**
 * Three trials of an `lr` sweep. Step `data` ran once (trial 0) and is a cache hit in the others; `ar` and
 * `ar-calvin` run the same stage (both log `ar/loss`); `craft-eval` logs long, similar keys. Trial 2's
 * `calvin-head` is a hit on a run of another experiment.
 */
beforeAll(async () => {
  const otherId = await client.getOrCreateExperiment(other)
  const otherParent = await run(otherId, "other", { tags: { "vw2.config_hash": "b".repeat(64) } })
  const otherTrial = await run(otherId, "t0", { parent: otherParent, tags: { "vw2.trial": "t0" } })
  ids.foreignHead = await run(otherId, "calvin-head", { parent: otherTrial, tags: stage("calvin-head"), params: { "calvin-head.steps": "200" }, metrics: { "calvin/avg_len": 0.25 } })

  const experimentId = await client.getOrCreateExperiment(experiment)
  const parent = await run(experimentId, "sweep", { tags: { "vw2.config_hash": "a".repeat(64) }, params: { "data.episodes": "8", "ar.lr": "0.1", "ar.steps": "100" } })
  for (const [i, lr] of ["0.1", "0.01", "0.001"].entries()) {
    const trial = await run(experimentId, `lr=${lr}`, { parent, tags: { "vw2.trial": `p${i}-s0` }, params: { "ar.lr": lr } })
    const data = await run(experimentId, "data", {
      parent: trial,
      tags: stage("data", i === 0 ? "miss" : `hit:${ids.data0}`),
      params: { "data.episodes": "8" },
      metrics: i === 0 ? { episodes: 8, generate_seconds: 3.5 } : {}
    })
    if (i === 0) ids.data0 = data
    const loss = 2 - Number(lr) * 5
    await run(experimentId, "ar", {
      parent: trial,
      tags: stage("ar"),
      params: { "ar.lr": lr, "ar.steps": "100" },
      metrics: { "ar/loss": loss, "ar/lr": Number(lr), "ar/step_ms": 40 + i, "ar/grad_norm": 1 + i, "ar/heldout_top1": 0.3 + i / 10 }
    })
    await run(experimentId, "ar-calvin", { parent: trial, tags: stage("ar-calvin"), params: { "ar.lr": lr }, metrics: { "ar/loss": loss + 1 } })
    const steps = Object.fromEntries(["folding_paper", "building_blocks"].flatMap((task) => [1, 2, 3].map((k) => [`craft/${task}/step_${k}`, 10 * k + i])))
    await run(experimentId, "craft-eval", { parent: trial, tags: stage("craft-eval"), params: { "craft-eval.episodes": "4" }, metrics: steps })
    await run(experimentId, "calvin-head", {
      parent: trial,
      tags: stage("calvin-head", i === 2 ? `hit:${ids.foreignHead}` : "miss"),
      params: { "calvin-head.steps": "200" },
      metrics: i === 2 ? {} : { "calvin/avg_len": 0.1 * (i + 1) }
    })
  }
})

describe("vw2 runs table", () => {
  it("keys a trial's stage metrics by step without doubling a prefix the stage already gave them", async () => {
    expect(stepMetricKey("ar", "ar/loss")).toBe("ar/loss")
    expect(stepMetricKey("ar-calvin", "ar/loss")).toBe("ar-calvin/ar/loss")
    expect(stepMetricKey("data", "episodes")).toBe("data/episodes")
    const table = await runsTable(experiment, { trackingUri: uri })
    expect(table.rows.map((r) => r.params["ar.lr"])).toEqual(["0.1", "0.01", "0.001"])
    expect(table.metricKeys).toContain("ar/loss")
    expect(table.metricKeys).toContain("ar-calvin/ar/loss")
    expect(table.metricKeys.filter((k) => /^(\w[\w-]*)\/\1\//.test(k))).toEqual([])
    // cache hits without metrics of their own show their producer's, also from another experiment
    expect(table.rows.map((r) => r.metrics["data/episodes"])).toEqual([8, 8, 8])
    expect(table.rows.map((r) => r.metrics["calvin-head/calvin/avg_len"])).toEqual([0.1, 0.2, 0.25])
    expect(table.differingParams).toEqual(["ar.lr"])
  })

  it("shows the differing params and a few headline metrics by default; JSON keeps every metric", async () => {
    const table = await runsTable(experiment, { trackingUri: uri })
    expect(table.metricKeys).toHaveLength(15)
    expect(table.shownMetrics.length).toBeGreaterThan(0)
    expect(table.shownMetrics.length).toBeLessThanOrEqual(8)
    // per step in the order they ran, its two most telling, shallowest keys (one each once more than 4 steps have some)
    expect(table.shownMetrics).toEqual([
      "ar/loss",
      "ar/heldout_top1",
      "ar-calvin/ar/loss",
      "craft-eval/craft/building_blocks/step_1",
      "craft-eval/craft/building_blocks/step_2",
      "calvin-head/calvin/avg_len"
    ])
    // bookkeeping series and values every trial shares compare nothing
    for (const key of ["ar/lr", "ar/step_ms", "ar/grad_norm", "data/generate_seconds", "data/episodes"]) expect(table.shownMetrics).not.toContain(key)
    const text = formatRunsTable(table)
    const [header, rule, ...rows] = text.split("\n")
    const headers = header!.split(/\s{2,}/)
    expect(headers.slice(0, 3)).toEqual(["run", "status", "ar.lr"])
    expect(headers).toHaveLength(3 + table.shownMetrics.length)
    expect(new Set(headers).size).toBe(headers.length)
    expect(rule).toMatch(/^-+(\s+-+)+$/)
    expect(rows.at(-1)).toMatch(/metrics shown; --metric 'step\/\*' picks others, --json has all/)
    expect(Math.max(...text.split("\n").slice(0, -1).map((l) => l.length))).toBeLessThan(200)
  })

  it("never lets two shortened headers collide", async () => {
    const keys = [
      "craft-eval-openx/craft/building_blocks/step_1",
      "craft-eval-openx/craft/folding_paper/step_1",
      "a/b",
      "x/very/long/prefix/same_tail",
      "y/very/long/prefix/same_tail",
      "calvin-head/calvin/avg_len"
    ]
    const headers = distinctHeaders(keys, 24)
    expect(new Set(headers).size).toBe(keys.length)
    expect(headers[2]).toBe("a/b")
    expect(headers[5]).toBe("calvin-head/…/avg_len")
    // step/…/last would read alike: the tails differ
    expect(headers.slice(0, 2)).toEqual(keys.slice(0, 2).map((k) => `…${k.slice(-23)}`))
    expect(headers[1]).toBe("…ft/folding_paper/step_1")
    // the same step-less tail under two prefixes: x/…/same_tail and y/…/same_tail differ
    expect(headers.slice(3, 5)).toEqual(["x/…/same_tail", "y/…/same_tail"])
    expect(distinctHeaders(["p/q/r/sssssssssssssssss", "t/q/r/sssssssssssssssss"], 12)).toEqual(["p/q/r/sssssssssssssssss", "t/q/r/sssssssssssssssss"])
    const table = await runsTable(experiment, { trackingUri: uri, metrics: ["craft-eval/*"] })
    const header = formatRunsTable(table).split("\n")[0]!.split(/\s{2,}/)
    expect(header).toHaveLength(3 + 6)
    expect(new Set(header).size).toBe(header.length)
  })

  it("--stages lists only params that differ between runs of the same step", async () => {
    const table = await runsTable(experiment, { trackingUri: uri, level: "stage" })
    expect(table.rows).toHaveLength(15)
    expect(table.differingParams).toEqual(["ar.lr"])
    expect(table.rows.find((r) => r.step === "data" && r.runId !== ids.data0)!.metrics).toEqual({ episodes: 8, generate_seconds: 3.5 })
    // with --metric, only the stage runs that logged one
    const ar = await runsTable(experiment, { trackingUri: uri, level: "stage", metrics: ["ar/loss"] })
    expect(ar.rows.map((r) => r.step)).toEqual(["ar", "ar-calvin", "ar", "ar-calvin", "ar", "ar-calvin"])
  })

  it("takes a trial's metrics from the trial run when the engine rolled them up there", async () => {
    const name = `${experiment}-rolled`
    const id = await client.getOrCreateExperiment(name)
    const parent = await run(id, "one", {})
    const trial = await run(id, "t0", { parent, tags: { "vw2.trial": "t0" }, metrics: { "ar/loss": 1.5, "data/episodes": 8 } })
    await run(id, "ar", { parent: trial, tags: stage("ar"), metrics: { "ar/loss": 9 } })
    const table = await runsTable(name, { trackingUri: uri })
    expect(table.rows.map((r) => r.metrics)).toEqual([{ "ar/loss": 1.5, "data/episodes": 8 }])
  })

  it("reports --metric patterns that match nothing", async () => {
    const table = await runsTable(experiment, { trackingUri: uri, metrics: ["ar/loss", "nosuch", "craft-eval/*", "zz/*"] })
    expect(table.unmatchedMetrics).toEqual(["nosuch", "zz/*"])
    expect(table.shownMetrics).toEqual(table.metricKeys)
    expect(table.metricKeys).toContain("ar/loss")
  })
})

describe("headline columns", () => {
  it("puts each step's declared headline before the ranked keys, and never a key that does not vary", () => {
    const row = (i: number) => ({
      runId: `r${i}`, runName: `t${i}`, status: "FINISHED", startTime: i, parentRunId: "p", params: {},
      metrics: { "probe/codes/perplexity": 80 + i, "probe/step/over_chance": 2 + i, "probe/loss": i, "probe/fixed": 1 }
    })
    const rows = [row(0), row(1)]
    const keys = Object.keys(rows[0]!.metrics)
    expect(headlineColumns(rows, keys, ["probe"])).toEqual(["probe/loss", "probe/codes/perplexity"])
    expect(headlineColumns(rows, keys, ["probe"], ["probe/step/over_chance", "probe/fixed"])).toEqual(["probe/step/over_chance", "probe/loss"])
  })
})

describe("vw2 runs (CLI)", () => {
  const vw2 = (...args: Array<string>) =>
    spawnSync(process.execPath, [path.join(repo, "packages/cli/src/bin.ts"), "runs", ...args], {
      cwd: repo,
      env: { ...process.env, VW2_HOME: home, MLFLOW_TRACKING_URI: uri },
      encoding: "utf8",
      timeout: 60_000
    })

  it("prints the table; an unknown experiment or metric exits 2 saying what is wrong", () => {
    const ok = vw2(experiment)
    expect(ok.status, ok.stderr).toBe(0)
    expect(ok.stdout.split("\n")[0]).toMatch(/^run\s+status\s+ar\.lr\s/)
    const json = JSON.parse(vw2(experiment, "--json").stdout) as { rows: Array<{ metrics: Record<string, number> }> }
    expect(Object.keys(json.rows[0]!.metrics)).toHaveLength(15)

    const missing = vw2(`${experiment}-nosuch`)
    expect(missing.status).toBe(2)
    expect(missing.stderr).toContain(`no MLflow experiment named "${experiment}-nosuch"`)
    const typo = vw2(experiment, "--metric", "ar/los")
    expect(typo.status).toBe(2)
    expect(typo.stderr).toMatch(/--metric ar\/los: no such metric .* e\.g\. /)
    expect(vw2(experiment, "--metric", "ar/*").status).toBe(0)
  })
})
