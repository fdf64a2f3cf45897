/**
 * The embedded default server: started detached under VW2_HOME, reused by the next caller, stopped by
 * its keeper once nobody uses it, and stoppable explicitly. By default it runs vw2's bulk SQLite store
 * plugin; a stock-SQLite server (VW2_MLFLOW_STORE=sqlite) serves the same database.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { Effect } from "effect"
import { Tracker } from "@vw2/core"
import { ensureLocalServer, layerFromEnv, stopLocalServer } from "../src/index.ts"
import { portOwnership } from "../src/internal/portOwner.ts"
import { isProcessAlive } from "../src/Spool.ts"
import { testClient } from "./support/promised.ts"

const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-local-server-"))
const saved = process.env.VW2_MLFLOW_IDLE_MINUTES
const points = Array.from({ length: 2500 }, (_, i) => ({ key: "loss", value: i % 7 === 0 ? Number.NaN : 1 / (i + 1), step: i, timestamp: 1_700_000_000_000 + i }))
let runId = ""

afterAll(async () => {
  await stopLocalServer({ home })
  if (saved === undefined) delete process.env.VW2_MLFLOW_IDLE_MINUTES
  else process.env.VW2_MLFLOW_IDLE_MINUTES = saved
  fs.rmSync(home, { recursive: true, force: true })
})

describe("embedded MLflow server", () => {
  it("starts once, is reused, keeps runs in VW2_HOME, and stops itself when idle", async () => {
    process.env.VW2_MLFLOW_IDLE_MINUTES = "0.1" // 6 s without a client
    const first = await ensureLocalServer({ home, portRange: [5540, 5599] })
    expect(first.reused).toBe(false)
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:55\d\d$/)
    const second = await ensureLocalServer({ home, portRange: [5540, 5599] })
    expect(second).toMatchObject({ reused: true, pid: first.pid, url: first.url })
    expect(first).toMatchObject({ store: "bulk-sqlite", workers: 2 }) // `npm run setup` installs the plugin

    const client = testClient({ trackingUri: first.url, auth: undefined })
    const exp = await client.getOrCreateExperiment("embedded")
    const run = await client.createRun({ experimentId: exp })
    runId = run.runId
    await client.logBatch(run.runId, { metrics: points })
    const file = path.join(home, "hello.txt")
    fs.writeFileSync(file, "hi")
    await client.uploadArtifact(run.artifactUri, file, "hello.txt")
    await client.close()
    expect(fs.existsSync(path.join(home, "mlflow", "mlflow.db"))).toBe(true)
    expect(fs.readFileSync(path.join(home, "mlflow", "artifacts", exp, run.runId, "artifacts", "hello.txt"), "utf8")).toBe("hi")

    // nobody touches the lease any more: the keeper stops mlflow and exits
    const deadline = Date.now() + 60_000
    while (isProcessAlive(first.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500))
    expect(isProcessAlive(first.pid)).toBe(false)
    expect(await testClient({ trackingUri: first.url, auth: undefined }).health()).toBe(false)
  })

  it("serves the same database with the stock SQLite store (VW2_MLFLOW_STORE=sqlite)", async () => {
    expect(runId).not.toBe("")
    const stock = await ensureLocalServer({ home, portRange: [5540, 5599], store: "sqlite", workers: 1 })
    expect(stock).toMatchObject({ reused: false, store: "sqlite", workers: 1 })
    const client = testClient({ trackingUri: stock.url, auth: undefined })
    try {
      const history = await client.getMetricHistory(runId, "loss")
      expect(history.map((p) => p.step).sort((a, b) => a - b)).toEqual(points.map((p) => p.step))
      expect(history.filter((p) => Number.isNaN(p.value))).toHaveLength(points.filter((p) => Number.isNaN(p.value)).length)
      expect((await client.getRun(runId)).metrics.loss?.step).toBe(2499) // latest_metrics written by the bulk store
    } finally {
      await client.close()
      await stopLocalServer({ home })
    }
  })

  it("tells its own listening socket from another process's", async () => {
    const server = http.createServer((_, res) => res.end("OK"))
    await new Promise<void>((resolve) => server.listen(5537, "127.0.0.1", resolve))
    const stranger = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" })
    try {
      expect(portOwnership(5537, process.pid)).toBe("ours")
      expect(portOwnership(5537, stranger.pid!)).toBe("other")
    } finally {
      stranger.kill()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })

  it("does not mistake another process's server on its port for the one it started", async () => {
    // the race: between the free-port probe and mlflow's bind, someone else binds the port and answers /health
    const foreign = http.createServer((_, res) => res.end("OK"))
    await new Promise<void>((resolve) => foreign.listen(5538, "127.0.0.1", resolve))
    const otherHome = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-port-race-"))
    try {
      await expect(ensureLocalServer({ home: otherHome, port: 5538 })).rejects.toThrow(/port 5538 was taken by another process/)
      expect(fs.existsSync(path.join(otherHome, "mlflow", "server.json"))).toBe(false) // nothing to reuse later
    } finally {
      await new Promise<void>((resolve) => foreign.close(() => resolve()))
      await stopLocalServer({ home: otherHome })
      fs.rmSync(otherHome, { recursive: true, force: true })
    }
  })
})

describe("a database an interrupted start left half-created", () => {
  it("says so with the database path and the fix in the warning, the run's layer still builds, and its records are spooled", async () => {
    const broken = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-broken-db-"))
    try {
      // what an MLflow start killed mid-migration leaves: alembic's temporary copy of a table
      fs.mkdirSync(path.join(broken, "mlflow"))
      const { DatabaseSync } = await import("node:sqlite")
      const db = new DatabaseSync(path.join(broken, "mlflow", "mlflow.db"))
      db.exec(`CREATE TABLE _alembic_tmp_params ("key" VARCHAR(250) NOT NULL, value VARCHAR(500) NOT NULL, run_uuid VARCHAR(32) NOT NULL)`)
      db.close()
      const lines: Array<string> = []
      const saved = process.env.MLFLOW_TRACKING_URI
      delete process.env.MLFLOW_TRACKING_URI
      try {
        const tracker = await Effect.runPromise(
          Effect.gen(function*() {
            return yield* Tracker.Tracker
          }).pipe(Effect.provide(layerFromEnv({ home: broken, log: (m) => lines.push(m) })))
        )
        expect(tracker).toBeDefined()
      } finally {
        if (saved !== undefined) process.env.MLFLOW_TRACKING_URI = saved
      }
      const warning = lines.find((l) => l.includes("tracking degraded: no MLflow server"))
      expect(warning, lines.join("\n")).toContain("_alembic_tmp_params already exists")
      expect(warning).toContain(`its database ${path.join(broken, "mlflow", "mlflow.db")} was left half-created`)
      expect(warning).toContain(path.join(broken, "mlflow", "server.log"))
      expect(warning).toContain(`records are spooled under ${path.join(broken, "tracking", "spool")}`)
    } finally {
      await stopLocalServer({ home: broken })
      fs.rmSync(broken, { recursive: true, force: true })
    }
  }, 120_000)
})
