/**
 * The embedded server runs vw2's MLflow server app (`--app-name vw2-fast-log-batch`: MLflow's app with
 * vw2's log-batch view) by default, and MLflow's stock app with VW2_MLFLOW_APP=stock; both serve the same
 * database. (That the two views answer alike is infra/python/vw2-mlflow-store/tests, run by StorePlugin.test.ts.)
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { appFromEnv, ensureLocalServer, findMlflowBin, resolveApp, serverArgs, stopLocalServer } from "../src/index.ts"
import { testClient } from "./support/promised.ts"

const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-local-server-app-"))
const saved = process.env.VW2_MLFLOW_APP
const fastAppLine = "vw2: MLflow app with the fast log-batch view"
const points = Array.from({ length: 1500 }, (_, i) => ({ key: "loss", value: i % 5 === 0 ? Number.POSITIVE_INFINITY : 1 / (i + 1), step: i, timestamp: 1_700_000_000_000 + i }))

const restoreEnv = () => {
  if (saved === undefined) delete process.env.VW2_MLFLOW_APP
  else process.env.VW2_MLFLOW_APP = saved
}

afterAll(async () => {
  await stopLocalServer({ home })
  restoreEnv()
  fs.rmSync(home, { recursive: true, force: true })
})

describe("embedded MLflow server app", () => {
  it("is chosen by VW2_MLFLOW_APP, else vw2's when installed", () => {
    try {
      process.env.VW2_MLFLOW_APP = "fast"
      expect(() => appFromEnv()).toThrow(/VW2_MLFLOW_APP="fast": expected one of fast-log-batch, stock/)
      process.env.VW2_MLFLOW_APP = "stock"
      expect(resolveApp(findMlflowBin())).toBe("stock")
      delete process.env.VW2_MLFLOW_APP
      expect(resolveApp(findMlflowBin())).toBe("fast-log-batch") // `npm run setup` installs it
    } finally {
      restoreEnv()
    }
    expect(serverArgs("/d", 5000, 2, "bulk-sqlite", "fast-log-batch").join(" ")).toMatch(/ --app-name vw2-fast-log-batch$/)
    expect(serverArgs("/d", 5000, 2, "bulk-sqlite", "stock")).not.toContain("--app-name")
  })

  it("serves with vw2's app by default and with MLflow's when asked, on the same database", async () => {
    delete process.env.VW2_MLFLOW_APP
    const fast = await ensureLocalServer({ home, portRange: [5600, 5649] })
    expect(fast).toMatchObject({ reused: false, app: "fast-log-batch", store: "bulk-sqlite" })
    const log = path.join(home, "mlflow", "server.log")
    expect(fs.readFileSync(log, "utf8")).toContain(fastAppLine)
    let runId: string
    const client = testClient({ trackingUri: fast.url, auth: undefined })
    try {
      const run = await client.createRun({ experimentId: await client.getOrCreateExperiment("app") })
      runId = run.runId
      await client.logBatch(runId, { metrics: points, params: [{ key: "lr", value: "0.1" }], tags: [{ key: "t", value: "v" }] })
    } finally {
      await client.close()
      await stopLocalServer({ home })
    }

    fs.rmSync(log)
    process.env.VW2_MLFLOW_APP = "stock"
    try {
      const stock = await ensureLocalServer({ home, portRange: [5600, 5649] })
      expect(stock).toMatchObject({ reused: false, app: "stock" })
      expect(fs.readFileSync(log, "utf8")).not.toContain(fastAppLine)
      const reader = testClient({ trackingUri: stock.url, auth: undefined })
      try {
        const history = await reader.getMetricHistory(runId, "loss")
        expect(history.map((p) => p.step).sort((a, b) => a - b)).toEqual(points.map((p) => p.step))
        // MLflow's SQL stores keep +Infinity as the largest double (`sanitize_metric_value`), with either app
        expect(history.filter((p) => p.value === Number.MAX_VALUE)).toHaveLength(points.filter((p) => p.value === Number.POSITIVE_INFINITY).length)
        const stored = await reader.getRun(runId)
        expect(stored.params).toMatchObject({ lr: "0.1" })
        expect(stored.tags).toMatchObject({ t: "v" })
      } finally {
        await reader.close()
      }
    } finally {
      restoreEnv()
      await stopLocalServer({ home })
    }
  })
})
