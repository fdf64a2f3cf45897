/**
 * `--preset` through the real `vw2` binary (docs/experiments.md, "Presets"): the preset is the file's own
 * (`defineExperiment({ presets })`), shown in the plan, checked by name, and never read from the environment;
 * the local executor's worker processes run the chosen preset's config.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freeTestPort, killServer, startServer, type TestServer } from "../../tracking/test/support/mlflowServer.ts"
import { fixture, sandbox, vw2 } from "./cliHarness.ts"

const presetsFixture = fileURLToPath(new URL("../../core/test/fixtures/presets.ts", import.meta.url))

interface Seen {
  readonly step: string
  readonly hash: string
  readonly pid: number
  readonly config: { readonly label: string; readonly size: number }
  readonly envPreset: string | null
}

const planJson = (stdout: string) => JSON.parse(stdout) as { experiment: string; preset?: string; config: { probe: { label: string } }; trials: Array<unknown> }

describe("vw2 --preset", () => {
  it("plans the default preset, or the one named; the plan JSON carries it; VW2_PRESET is not read", () => {
    const box = sandbox("preset-plan")
    const byDefault = vw2({ ...box, env: { ...box.env, VW2_PRESET: "large" } }, ["plan", presetsFixture, "--json"])
    expect(byDefault.status, byDefault.stderr).toBe(0)
    expect(planJson(byDefault.stdout)).toMatchObject({ experiment: "presets-test-small", preset: "small", config: { probe: { label: "small" } } })
    const large = vw2(box, ["plan", presetsFixture, "--preset", "large", "--json"])
    expect(large.status, large.stderr).toBe(0)
    const doc = planJson(large.stdout)
    expect(doc).toMatchObject({ experiment: "presets-test-large", preset: "large", config: { probe: { label: "large", size: 50 } } })
    expect(doc.trials).toHaveLength(2) // the large preset's own seeds
    const text = vw2(box, ["plan", presetsFixture, "--preset", "large"])
    expect(text.status).toBe(0)
    expect(text.stdout).toContain("presets-test-large")
    // a file with one size has no preset field
    const single = vw2(box, ["plan", fixture, "--json"])
    expect(single.status).toBe(0)
    expect(planJson(single.stdout).preset).toBeUndefined()
  })

  it("exits 2 for an unknown preset naming the accepted ones, and for --preset on a file without presets", () => {
    const box = sandbox("preset-bad")
    for (const command of ["plan", "run"]) {
      const unknown = vw2(box, [command, presetsFixture, "--preset", "huge"])
      expect(unknown.status).toBe(2)
      expect(unknown.stderr).toContain('unknown preset "huge": experiment presets-test has presets small, large')
      const none = vw2(box, [command, fixture, "--preset", "paper"])
      expect(none.status).toBe(2)
      expect(none.stderr).toContain("preset paper asked for, but experiment engine-test has no presets")
    }
    expect(fs.existsSync(box.log)).toBe(false) // nothing ran
  })

  it("runs the chosen preset's config in the local executor's worker processes", () => {
    const box = sandbox("preset-run")
    const r = vw2(box, ["run", presetsFixture, "--preset", "large", "--executor", "local", "--cpus", "2"])
    expect(r.status, r.stderr + r.stdout).toBe(0)
    const seen = fs.readFileSync(box.log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Seen)
    expect(seen).toHaveLength(2) // one invocation per seed of the large preset
    for (const s of seen) {
      expect(s.config).toEqual({ label: "large", size: 50 })
      expect(s.envPreset).toBeNull() // the preset did not travel through the environment
      // the published output is the worker's record too
      const stored = JSON.parse(fs.readFileSync(path.join(box.home, "store", s.hash, "seen", "seen.json"), "utf8")) as Seen
      expect(stored.config.label).toBe("large")
    }
    // a worker process, not the driver (spawnSync gives no pid: the driver's pid is in the run record)
    const records = fs.readdirSync(path.join(box.home, "runs")).filter((f) => f.endsWith(".json"))
    const driverPids = records.map((f) => (JSON.parse(fs.readFileSync(path.join(box.home, "runs", f), "utf8")) as { pid: number }).pid)
    for (const s of seen) expect(driverPids).not.toContain(s.pid)
  })
})

describe("vw2 run --preset against a real MLflow server", () => {
  let server: TestServer | undefined
  let serverDir = ""
  beforeAll(async () => {
    serverDir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-presets-mlflow-"))
    server = await startServer(serverDir, await freeTestPort())
  })
  afterAll(async () => {
    if (serverDir !== "") {
      await killServer(serverDir)
      fs.rmSync(serverDir, { recursive: true, force: true })
    }
  })

  it("tags the experiment run with the preset, in the preset's MLflow experiment", async () => {
    const box = sandbox("preset-mlflow")
    const r = vw2({ ...box, env: { ...box.env, VW2_TRACKER: "mlflow", MLFLOW_TRACKING_URI: server!.url } }, ["run", presetsFixture, "--preset", "large"])
    expect(r.status, r.stderr).toBe(0)
    const found = (await fetch(`${server!.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=presets-test-large`).then((x) => x.json())) as {
      experiment: { experiment_id: string }
    }
    const search = (await fetch(`${server!.url}/api/2.0/mlflow/runs/search`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ experiment_ids: [found.experiment.experiment_id], max_results: 100 })
    }).then((x) => x.json())) as { runs: Array<{ data: { tags?: Array<{ key: string; value: string }> } }> }
    const tags = search.runs.map((run) => Object.fromEntries((run.data.tags ?? []).map((t) => [t.key, t.value])))
    const experimentRuns = tags.filter((t) => t["vw2.config_hash"] !== undefined)
    expect(experimentRuns).toHaveLength(1)
    expect(experimentRuns[0]!["vw2.preset"]).toBe("large")
  })
})
