/**
 * vw2's MLflow plugin package (infra/python/vw2-mlflow-store) behaves exactly like MLflow: its Python tests
 * run the same log calls against the bulk and the stock SqlAlchemyStore (duplicates, replays, NaN/±Inf,
 * latest_metrics, model metrics, invalid points, inactive runs) and compare the tables and REST-visible
 * views, and post the same log-batch bodies (valid, rejected by the store, and every malformed shape) through
 * MLflow's stock view and vw2's fast view, in-process and on two real `mlflow server`s, comparing status,
 * body and stored data. The rest of this suite runs against a server using the plugin's store and app.
 */
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { findMlflowBin } from "../src/LocalServer.ts"

const root = fileURLToPath(new URL("../../..", import.meta.url))

describe("vw2 MLflow store plugin", () => {
  it("matches MLflow's stock store and log-batch view on every scenario", () => {
    const python = path.join(path.dirname(findMlflowBin()), "python")
    const r = spawnSync(python, ["-m", "unittest", "discover", "-v", "-s", path.join(root, "infra/python/vw2-mlflow-store/tests")], {
      encoding: "utf8",
      timeout: 280_000
    })
    if (r.status !== 0) throw new Error(`store semantics tests failed (exit ${r.status}):\n${r.stderr.slice(-6000)}`)
    expect(r.stderr).toMatch(/Ran 26 tests/)
    expect(r.stderr).toMatch(/\nOK\n/)
  }, 300_000)
})
