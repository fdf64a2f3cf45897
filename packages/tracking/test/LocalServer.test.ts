/**
 * The embedded default server: started detached under VW2_HOME, reused by the next caller, stopped by
 * its keeper once nobody uses it, and stoppable explicitly.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { MlflowClient, ensureLocalServer, stopLocalServer } from "../src/index.ts"
import { isProcessAlive } from "../src/Spool.ts"

const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-local-server-"))
const saved = process.env.VW2_MLFLOW_IDLE_MINUTES

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

    const client = new MlflowClient({ trackingUri: first.url, auth: undefined })
    const exp = await client.getOrCreateExperiment("embedded")
    const run = await client.createRun({ experimentId: exp })
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
    expect(await new MlflowClient({ trackingUri: first.url, auth: undefined }).health()).toBe(false)
  })
})
