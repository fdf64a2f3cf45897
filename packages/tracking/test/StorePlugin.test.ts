/**
 * vw2's MLflow store plugin (infra/python/vw2-mlflow-store) stores exactly what MLflow's stock
 * SqlAlchemyStore stores: its Python test runs the same log calls against both stores (duplicates,
 * replays, NaN/±Inf, latest_metrics, model metrics, invalid points, inactive runs) and compares the tables
 * and the REST-visible views. The rest of this suite runs against a server using the plugin.
 */
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { findMlflowBin } from "../src/LocalServer.ts"

const root = fileURLToPath(new URL("../../..", import.meta.url))

describe("vw2 MLflow store plugin", () => {
  it("matches the stock SqlAlchemyStore on every scenario", () => {
    const python = path.join(path.dirname(findMlflowBin()), "python")
    const r = spawnSync(python, ["-m", "unittest", "discover", "-v", "-s", path.join(root, "infra/python/vw2-mlflow-store/tests")], {
      encoding: "utf8",
      timeout: 280_000
    })
    if (r.status !== 0) throw new Error(`store semantics tests failed (exit ${r.status}):\n${r.stderr.slice(-6000)}`)
    expect(r.stderr).toMatch(/Ran 9 tests/)
    expect(r.stderr).toMatch(/\nOK\n/)
  }, 300_000)
})
