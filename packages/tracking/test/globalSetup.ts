/**
 * One real MLflow server for the whole suite (starting one takes 10-20 s here). Reuses
 * MLFLOW_TEST_TRACKING_URI when set (then tests that must kill the server start their own).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { TestProject } from "vitest/node"
import { freeTestPort, killServer, startServer } from "./support/mlflowServer.ts"

declare module "vitest" {
  export interface ProvidedContext {
    mlflowUri: string
    /** set when the suite owns the server (it may kill and restart it) */
    mlflowDir: string
    mlflowPort: number
  }
}

export default async function setup(project: TestProject) {
  const external = process.env.MLFLOW_TEST_TRACKING_URI
  if (external !== undefined && external !== "") {
    project.provide("mlflowUri", external.replace(/\/+$/, ""))
    project.provide("mlflowDir", "")
    project.provide("mlflowPort", Number(new URL(external).port))
    return
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-mlflow-test-"))
  const port = await freeTestPort()
  const server = await startServer(dir, port)
  project.provide("mlflowUri", server.url)
  project.provide("mlflowDir", dir)
  project.provide("mlflowPort", port)
  return async () => {
    await killServer(dir)
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
