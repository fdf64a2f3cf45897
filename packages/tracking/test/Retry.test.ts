/**
 * Transient 5xx answers are retried on MLflow's schedule (exponential backoff, Retry-After honoured):
 * through a real HTTP proxy in front of the real server that answers 503 to the first N requests of one
 * endpoint, with the real undici client.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, inject, it } from "vitest"
import { MlflowApiError } from "../src/index.ts"
import { openTracker, testClient } from "./support/promised.ts"

const uri = inject("mlflowUri")
const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-retry-"))
afterAll(() => fs.rmSync(home, { recursive: true, force: true }))

/** Forwards to the MLflow server, except that the first `failures` requests whose path contains `endpoint` get a 503. */
const flakyProxy = async (endpoint: string, failures: number) => {
  const attempts: Array<{ at: number; status: number }> = []
  let failed = 0
  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", async () => {
      const matches = req.url!.includes(endpoint)
      if (matches && failed < failures) {
        failed++
        attempts.push({ at: performance.now(), status: 503 })
        res.writeHead(503, { "content-type": "text/html" }).end("<h1>busy</h1>")
        return
      }
      const body = chunks.length === 0 ? undefined : Buffer.concat(chunks)
      const answer = await fetch(uri + req.url, { method: req.method!, headers: { "content-type": req.headers["content-type"] ?? "application/json" }, ...(body === undefined ? {} : { body }) })
      if (matches) attempts.push({ at: performance.now(), status: answer.status })
      res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" }).end(Buffer.from(await answer.arrayBuffer()))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, attempts, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

describe("retry schedule on transient 5xx", () => {
  it("the client waits 0, 2f, 4f between attempts (factor f, no jitter), then succeeds; past maxRetries it fails with the 503", async () => {
    const proxy = await flakyProxy("experiments/get-by-name", 3)
    const client = testClient({ trackingUri: proxy.url, auth: undefined, retry: { maxRetries: 3, backoffFactorMs: 150, jitterMs: 0 } })
    const name = `retry-${Date.now()}`
    expect(await client.getExperimentByName(name)).toBeUndefined() // the 4th attempt reaches MLflow
    expect(proxy.attempts.map((a) => a.status)).toEqual([503, 503, 503, 404])
    const gaps = proxy.attempts.slice(1).map((a, i) => a.at - proxy.attempts[i]!.at)
    expect(gaps[0]).toBeLessThan(150) // first retry at once
    expect(gaps[1]).toBeGreaterThanOrEqual(290) // 150 · 2
    expect(gaps[2]).toBeGreaterThanOrEqual(590) // 150 · 4
    await client.close()
    await proxy.close()

    const worse = await flakyProxy("experiments/get-by-name", 5)
    const giving = testClient({ trackingUri: worse.url, auth: undefined, retry: { maxRetries: 2, backoffFactorMs: 10, jitterMs: 0 } })
    const error = await giving.getExperimentByName(name).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MlflowApiError)
    expect(error).toMatchObject({ status: 503, errorCode: "HTTP_503" })
    expect(worse.attempts).toHaveLength(3)
    await giving.close()
    await worse.close()
  })

  it("the tracker rides out a few 503s on log-batch without spooling, and spools then replays when they outlast the retries", async () => {
    const points = Array.from({ length: 5000 }, (_, i) => ({ key: "loss", value: i, step: i, timestamp: 1_700_000_000_000 + i }))
    const client = testClient({ trackingUri: uri, auth: undefined })

    // 2 failures, 2 retries: absorbed by the schedule
    const brief = await flakyProxy("runs/log-batch", 2)
    const tracker = await openTracker({ trackingUri: brief.url, home, warn: () => undefined, concurrency: 1, client: { retry: { maxRetries: 2, backoffFactorMs: 50, jitterMs: 0 } } })
    const run = await tracker.startExperimentRun({ experiment: `retry-${Date.now()}`, configHash: "c".repeat(64), params: {}, tags: {} })
    await tracker.logMetrics(run, points)
    await tracker.flush()
    expect(tracker.state()).toBe("up")
    expect(brief.attempts.slice(0, 3).map((a) => a.status)).toEqual([503, 503, 200])
    expect(fs.readdirSync(path.join(home, "tracking", "spool")).filter((f) => f.endsWith(".jsonl"))).toEqual([])
    expect(await client.getMetricHistory(run, "loss")).toHaveLength(points.length)
    await tracker.endRun(run, "FINISHED")
    await tracker.close()
    await brief.close()

    // 4 failures, 2 retries: the group goes to the spool, and the recovery fiber replays it
    const longer = await flakyProxy("runs/log-batch", 4)
    const warnings: Array<string> = []
    const second = await openTracker({ trackingUri: longer.url, home, warn: (m) => warnings.push(m), concurrency: 1, probeMs: { min: 100, max: 400 }, client: { retry: { maxRetries: 2, backoffFactorMs: 20, jitterMs: 0 } } })
    const again = await second.startExperimentRun({ experiment: `retry-${Date.now()}`, configHash: "d".repeat(64), params: {}, tags: {} })
    await second.logMetrics(again, points)
    await second.endRun(again, "FINISHED")
    await second.flush()
    expect(warnings.join("\n")).toMatch(/tracking degraded \(.*HTTP 503|tracking degraded \(.*busy/)
    expect(longer.attempts.filter((a) => a.status === 503)).toHaveLength(4)
    for (let i = 0; i < 50 && second.degraded(); i++) {
      await new Promise((r) => setTimeout(r, 100))
      await second.flush()
    }
    expect(second.state()).toBe("up")
    expect(warnings.join("\n")).toMatch(/tracking recovered/)
    expect(await client.getMetricHistory(again, "loss")).toHaveLength(points.length)
    expect((await client.getRun(again)).info.status).toBe("FINISHED")
    await second.close()
    await longer.close()
    await client.close()
  })
})
