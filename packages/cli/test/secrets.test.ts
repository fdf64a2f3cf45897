/**
 * Secrets never leave vw2 in readable form (docs/engine.md, "Secrets"): the real CLI runs an experiment
 * whose config carries secrets in the file, through `--set` and inside URLs, against a real MLflow server
 * and against an unreachable one (everything spooled); then every file under VW2_HOME and under the
 * MLflow server's directory (its SQLite database and artifact store) is searched for each secret value.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freeTestPort, killServer, startServer, type TestServer } from "../../tracking/test/support/mlflowServer.ts"
import { type Sandbox, sandbox, vw2 } from "./cliHarness.ts"

const fixture = fileURLToPath(new URL("../../core/test/fixtures/secrets.ts", import.meta.url))

/** What the fixture file holds, and what the tests pass with --set: none may be written anywhere. */
const secretsInFile = ["tok-IN-FILE-5f1c9a", "hunter2-IN-FILE-77", "pw-IN-URL-3e8d"]
const secretsSet = ["SET-DSN-9b7e41", "SET-SESSION-TOKEN-d00d", "SET-URLPW-61fe"]
const args = [
  "run",
  fixture,
  "--executor",
  "local",
  "--set",
  `connect.dsn=${secretsSet[0]}`,
  "--set",
  `connect.sessionToken=${secretsSet[1]}`,
  "--set",
  `connect.replicaUrl=mysql://replica:${secretsSet[2]}@10.1.2.3:3306/runs`
]

const allFiles = (dir: string): Array<string> =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name))

/** secret → the files (relative to `dir`) whose bytes contain it; empty when nothing leaked. */
const leaks = (dir: string): Record<string, Array<string>> => {
  const files = allFiles(dir).map((file) => ({ file: path.relative(dir, file), bytes: fs.readFileSync(file) }))
  const found = [...secretsInFile, ...secretsSet].map((s) => [s, files.filter((f) => f.bytes.includes(s)).map((f) => f.file)] as const)
  return Object.fromEntries(found.filter(([, where]) => where.length > 0))
}

const tracked = (box: Sandbox, uri: string): Sandbox => ({ ...box, env: { ...box.env, VW2_TRACKER: "mlflow", MLFLOW_TRACKING_URI: uri } })

let server: TestServer | undefined
let serverDir = ""

beforeAll(async () => {
  serverDir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-secrets-mlflow-"))
  server = await startServer(serverDir, await freeTestPort())
})

afterAll(async () => {
  if (serverDir !== "") {
    await killServer(serverDir)
    fs.rmSync(serverDir, { recursive: true, force: true })
  }
})

const api = async (uri: string, endpoint: string, body: unknown) => {
  const response = await fetch(`${uri}/api/2.0/mlflow/${endpoint}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  return (await response.json()) as Record<string, unknown>
}

interface MlflowRun {
  readonly info: { readonly run_id: string; readonly run_name: string }
  readonly data: { readonly params?: Array<{ key: string; value: string }>; readonly tags?: Array<{ key: string; value: string }> }
}

describe("secrets through the real CLI", () => {
  it("reach neither MLflow nor any file under VW2_HOME (run record, logs, manifests, tracking state)", async () => {
    const box = tracked(sandbox("secrets-mlflow"), server!.url)
    const r = vw2(box, args)
    expect(r.status, r.stderr).toBe(0)

    const found = await fetch(`${server!.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=secrets-fixture`).then((x) => x.json()) as {
      experiment: { experiment_id: string }
    }
    const search = await api(server!.url, "runs/search", { experiment_ids: [found.experiment.experiment_id], max_results: 100 }) as { runs: Array<MlflowRun> }
    expect(search.runs.length).toBeGreaterThanOrEqual(3) // experiment, trial and stage runs
    const text = JSON.stringify(search.runs)
    for (const secret of [...secretsInFile, ...secretsSet]) expect(text).not.toContain(secret)
    // the params and the command tag were recorded, masked
    const params = Object.fromEntries(search.runs.flatMap((run) => run.data.params ?? []).map((p) => [p.key, p.value]))
    expect(params).toMatchObject({
      "connect.apiToken": "***",
      "connect.dsn": "***",
      "connect.password": "***",
      "connect.sessionToken": "***",
      "connect.databaseUrl": "postgres://vw2user:***@db.example.org:5432/runs",
      "connect.replicaUrl": "mysql://replica:***@10.1.2.3:3306/runs",
      "connect.retries": "3"
    })
    const command = search.runs.flatMap((run) => run.data.tags ?? []).find((t) => t.key === "vw2.command")?.value
    expect(command).toContain("--set connect.dsn=*** --set connect.sessionToken=*** --set connect.replicaUrl=mysql://replica:***@10.1.2.3:3306/runs")

    // everything vw2 wrote: the run record, the stage's log (it logs its secrets), the manifest, tracking state
    const runsDir = path.join(box.home, "runs")
    const runRecord = fs.readdirSync(runsDir).filter((f) => f.endsWith(".json")).map((f) => fs.readFileSync(path.join(runsDir, f), "utf8")).join("\n")
    expect(runRecord).toContain("--set connect.dsn=***")
    const logText = allFiles(path.join(box.home, "logs")).map((f) => fs.readFileSync(f, "utf8")).join("\n")
    expect(logText).toContain("connecting to postgres://vw2user:***@db.example.org:5432/runs as password=*** token=*** dsn=***")
    expect(logText).toContain("replica mysql://replica:***@10.1.2.3:3306/runs session ***")
    expect(allFiles(path.join(box.home, "store")).some((f) => f.endsWith("manifest.json"))).toBe(true)
    expect(leaks(box.home)).toEqual({})
    // and what the MLflow server stored: its database and artifact store
    expect(leaks(serverDir)).toEqual({})
  })

  it("reach no spooled record when the tracking server is down", async () => {
    const box = tracked(sandbox("secrets-spool"), `http://127.0.0.1:${await freeTestPort()}`)
    const r = vw2(box, args)
    expect(r.status, r.stderr).toBe(0)
    const spoolDir = path.join(box.home, "tracking", "spool")
    const spooled = allFiles(spoolDir).filter((f) => f.endsWith(".jsonl")).map((f) => fs.readFileSync(f, "utf8")).join("\n")
    // the records really were spooled: params and the command tag, masked
    expect(spooled).toContain("vw2.command")
    expect(spooled).toContain("connect.apiToken")
    expect(spooled).toContain("mysql://replica:***@10.1.2.3:3306/runs")
    expect(leaks(box.home)).toEqual({})
  })
})
