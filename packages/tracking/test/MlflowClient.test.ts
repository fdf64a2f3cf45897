import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, inject, it } from "vitest"
import { MlflowApiError, MlflowValidationError, MlflowTransportError } from "../src/index.ts"
import { testClient } from "./support/promised.ts"

const uri = inject("mlflowUri")
const client = testClient({ trackingUri: uri, auth: undefined, retry: { maxRetries: 2, backoffFactorMs: 50, jitterMs: 10 } })
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-client-"))
const unique = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 7)}`

afterAll(async () => {
  await client.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe("MlflowClient against a real server", () => {
  it("reports health and version", async () => {
    expect(await client.health()).toBe(true)
    expect(await client.version()).toMatch(/^\d+\.\d+\.\d+/)
  })

  it("gets or creates an experiment race-safely: concurrent callers share one id", async () => {
    const name = unique("race")
    const ids = await Promise.all(Array.from({ length: 6 }, () => client.getOrCreateExperiment(name)))
    expect(new Set(ids).size).toBe(1)
    expect((await client.getExperimentByName(name))?.experimentId).toBe(ids[0])
    expect(await client.getExperimentByName(unique("absent"))).toBeUndefined()
  })

  it("creates, updates, gets and searches runs across pages without duplicates", async () => {
    const exp = await client.getOrCreateExperiment(unique("runs"))
    const created = []
    for (let i = 0; i < 7; i++) created.push(await client.createRun({ experimentId: exp, runName: `r${i}`, tags: { "vw2.i": String(i) } }))
    await client.updateRun(created[0]!.runId, { status: "FAILED", endTime: Date.now() })
    const run = await client.getRun(created[0]!.runId)
    expect(run.info.status).toBe("FAILED")
    expect(run.tags["vw2.i"]).toBe("0")
    const all = await client.searchRuns({ experimentIds: [exp], pageSize: 2 })
    expect(all.map((r) => r.info.runId).sort()).toEqual(created.map((r) => r.runId).sort())
    const filtered = await client.searchRuns({ experimentIds: [exp], filter: "tags.`vw2.i` = '3'", pageSize: 1 })
    expect(filtered.map((r) => r.info.runName)).toEqual(["r3"])
    expect((await client.searchRuns({ experimentIds: [exp], pageSize: 3, maxResults: 5 })).length).toBe(5)
  })

  it("splits a log-batch of 10k metrics and 300 long params by MLflow's limits; every point arrives", async () => {
    const exp = await client.getOrCreateExperiment(unique("batch"))
    const run = await client.createRun({ experimentId: exp })
    const metrics = Array.from({ length: 10_000 }, (_, i) => ({ key: i % 2 ? "loss" : "acc", value: i / 7, step: Math.floor(i / 2), timestamp: 1_700_000_000_000 + i }))
    const params = Array.from({ length: 300 }, (_, i) => ({ key: `p.${i}`, value: i === 0 ? "x".repeat(7000) : `v${i}` }))
    const tags = [{ key: "long", value: "t".repeat(9000) }]
    const warnings: Array<string> = []
    const c = testClient({ trackingUri: uri, auth: undefined, warn: (m) => warnings.push(m) })
    const requests = await c.logBatch(run.runId, { metrics, params, tags })
    await c.close()
    // 300 params / 100 per request = 3 (+ tag), 10k metrics / 1000 = 10; never more than the limits
    expect(requests).toBeGreaterThanOrEqual(13)
    const fetched = await client.getRun(run.runId)
    expect(Object.keys(fetched.params)).toHaveLength(300)
    expect(fetched.params["p.0"]).toHaveLength(6000)
    expect(fetched.params["p.299"]).toBe("v299")
    expect(fetched.tags.long).toHaveLength(8000)
    expect(warnings.join("\n")).toMatch(/p\.0.*truncated to 6000/)
    const loss = await client.getMetricHistory(run.runId, "loss")
    expect(loss).toHaveLength(5000)
    const byStep = new Map(loss.map((p) => [p.step, p.value]))
    expect(byStep.get(1234)).toBeCloseTo((1234 * 2 + 1) / 7, 12)
    expect(new Set(loss.map((p) => p.step)).size).toBe(5000)
  })

  it("a body near 1 MB is split by size, not just by count", async () => {
    const exp = await client.getOrCreateExperiment(unique("bytes"))
    const run = await client.createRun({ experimentId: exp })
    // 100 tags × 8000 chars of 3-byte characters = 2.4 MB of values: must go in several requests
    const tags = Array.from({ length: 100 }, (_, i) => ({ key: `t${i}`, value: "語".repeat(8000) }))
    const requests = await client.logBatch(run.runId, { tags })
    expect(requests).toBeGreaterThanOrEqual(3)
    expect(Object.keys((await client.getRun(run.runId)).tags).filter((k) => k.startsWith("t"))).toHaveLength(100)
  })

  it("encodes NaN and ±Infinity explicitly", async () => {
    const exp = await client.getOrCreateExperiment(unique("nan"))
    const run = await client.createRun({ experimentId: exp })
    await client.logBatch(run.runId, {
      metrics: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5].map((value, step) => ({ key: "m", value, step, timestamp: 1 }))
    })
    const points = (await client.getMetricHistory(run.runId, "m")).sort((a, b) => a.step - b.step)
    expect(points.map((p) => p.value)).toEqual([Number.NaN, 1.7976931348623157e308, -1.7976931348623157e308, 0.5])
  })

  it("accepts unicode and odd-but-valid keys, rejects keys MLflow refuses before sending", async () => {
    const exp = await client.getOrCreateExperiment(unique("keys"))
    const run = await client.createRun({ experimentId: exp })
    const good = ["损失/训练", "accuracy:top-1", "a b/c-d_e.f", "Ünïcödé", ".hidden", "x."]
    await client.logBatch(run.runId, { metrics: good.map((key, i) => ({ key, value: i, step: 0, timestamp: 1 })), params: [{ key: "模型.层数", value: "十二" }] })
    const fetched = await client.getRun(run.runId)
    expect(Object.keys(fetched.metrics).sort()).toEqual([...good].sort())
    expect(fetched.params["模型.层数"]).toBe("十二")
    for (const bad of ["a//b", "../up", "/lead", "trail/", "a/./b", "semi;colon", "", "k".repeat(251)]) {
      await expect(client.logBatch(run.runId, { metrics: [{ key: bad, value: 1, step: 0, timestamp: 1 }] })).rejects.toBeInstanceOf(MlflowValidationError)
    }
  })

  it("turns error_code into typed errors, and non-JSON bodies into HTTP_<status>", async () => {
    const error = await client.getRun("0123456789abcdef0123456789abcdef").catch((e) => e)
    expect(error).toBeInstanceOf(MlflowApiError)
    expect(error.errorCode).toBe("RESOURCE_DOES_NOT_EXIST")
    expect(error.status).toBe(404)
    const wrongPrefix = testClient({ trackingUri: `${uri}/not-mlflow`, auth: undefined, retry: { maxRetries: 0 } })
    const html = await wrongPrefix.getRun("x").catch((e) => e)
    await wrongPrefix.close()
    expect(html).toBeInstanceOf(MlflowApiError)
    expect(html.errorCode).toBe("HTTP_404")
  })

  it("streams artifacts up, lists and downloads them; multipart falls back to a single PUT on a local store", async () => {
    const exp = await client.getOrCreateExperiment(unique("artifacts"))
    const run = await client.createRun({ experimentId: exp })
    const big = path.join(tmp, "big.bin")
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff
    fs.writeFileSync(big, bytes)
    const small = path.join(tmp, "report.json")
    fs.writeFileSync(small, JSON.stringify({ ok: true, ü: "ß" }))
    // threshold 1 MB: the big file tries multipart first; the local artifact store answers NOT_IMPLEMENTED
    const c = testClient({ trackingUri: uri, auth: undefined, multipartThresholdBytes: 1024 * 1024, multipartChunkBytes: 1024 * 1024 })
    await c.uploadArtifact(run.artifactUri, big, "outputs/model weights/big.bin")
    await c.uploadArtifact(run.artifactUri, small, "outputs/report.json")
    await c.close()
    expect(await client.listArtifacts(run.artifactUri)).toEqual([{ path: "outputs", isDir: true, fileSize: undefined }])
    const listed = await client.listArtifacts(run.artifactUri, "outputs")
    expect(listed.map((f) => f.path).sort()).toEqual(["outputs/model weights", "outputs/report.json"])
    const inner = await client.listArtifacts(run.artifactUri, "outputs/model weights")
    expect(inner).toEqual([{ path: "outputs/model weights/big.bin", isDir: false, fileSize: bytes.length }])
    const back = path.join(tmp, "back.bin")
    await client.downloadArtifact(run.artifactUri, "outputs/model weights/big.bin", back)
    expect(fs.readFileSync(back).equals(bytes)).toBe(true)
    await expect(client.uploadArtifact(run.artifactUri, small, "../escape.json")).rejects.toBeInstanceOf(MlflowValidationError)
  })
})

/** A real HTTP server that misbehaves on purpose (overload, lost responses), recording what it saw. */
const misbehavingServer = async (handler: (req: http.IncomingMessage, body: string, res: http.ServerResponse, n: number) => void) => {
  const seen: Array<{ method: string; url: string; auth: string | undefined; body: string }> = []
  const server = http.createServer((req, res) => {
    let body = ""
    req.on("data", (d) => (body += d))
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body })
      handler(req, body, res, seen.length)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

describe("MlflowClient retries and auth", () => {
  it("retries 503 honouring Retry-After, then succeeds", async () => {
    const server = await misbehavingServer((_req, _body, res, n) => {
      if (n <= 2) {
        res.writeHead(503, { "retry-after": "0", "content-type": "text/html" }).end("<h1>busy</h1>")
      } else res.writeHead(200, { "content-type": "application/json" }).end('{"experiment":{"experiment_id":"42","name":"x"}}')
    })
    const c = testClient({ trackingUri: server.url, auth: undefined, retry: { maxRetries: 3, backoffFactorMs: 10_000, jitterMs: 0 } })
    const started = Date.now()
    expect((await c.getExperimentByName("x"))?.experimentId).toBe("42")
    expect(Date.now() - started).toBeLessThan(5000) // Retry-After: 0 beats the 10 s backoff
    expect(server.seen).toHaveLength(3)
    await c.close()
    await server.close()
  })

  it("gives up after maxRetries with the last error; 4xx is never retried", async () => {
    const server = await misbehavingServer((req, _b, res) => {
      if (req.url!.includes("get-by-name")) res.writeHead(502).end("bad gateway")
      else res.writeHead(400, { "content-type": "application/json" }).end('{"error_code":"INVALID_PARAMETER_VALUE","message":"no"}')
    })
    const c = testClient({ trackingUri: server.url, auth: undefined, retry: { maxRetries: 2, backoffFactorMs: 1, jitterMs: 1 } })
    const error = await c.getExperimentByName("x").catch((e) => e)
    expect(error).toBeInstanceOf(MlflowApiError)
    expect(error.errorCode).toBe("HTTP_502")
    expect(server.seen).toHaveLength(3)
    await expect(c.updateRun("r", { status: "FINISHED" })).rejects.toMatchObject({ errorCode: "INVALID_PARAMETER_VALUE" })
    expect(server.seen).toHaveLength(4)
    await c.close()
    await server.close()
  })

  it("never blindly repeats runs/create: after an ambiguous failure it searches for the run first", async () => {
    const server = await misbehavingServer((req, body, res) => {
      if (req.url!.endsWith("/runs/create")) {
        res.writeHead(500, { "content-type": "application/json" }).end('{"error_code":"INTERNAL_ERROR","message":"lost"}')
      } else if (req.url!.endsWith("/runs/search")) {
        // the first create did reach the store: the search finds it by its token
        const token = /vw2\.create_token` = '([^']+)'/.exec(JSON.parse(body).filter)![1]
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
          runs: [{ info: { run_id: "found", experiment_id: "1", status: "RUNNING", artifact_uri: "mlflow-artifacts:/1/found/artifacts" }, data: { tags: [{ key: "vw2.create_token", value: token }] } }]
        }))
      } else res.writeHead(404).end()
    })
    const c = testClient({ trackingUri: server.url, auth: undefined, retry: { maxRetries: 3, backoffFactorMs: 1, jitterMs: 1 } })
    const run = await c.createRun({ experimentId: "1", runName: "once" })
    expect(run.runId).toBe("found")
    expect(server.seen.map((s) => s.url.split("/").pop())).toEqual(["create", "search"])
    await c.close()
    await server.close()
  })

  it("retries a refused connection (nothing was sent) and reports a transport error", async () => {
    const server = await misbehavingServer(() => undefined)
    const url = server.url
    await server.close()
    const c = testClient({ trackingUri: url, auth: undefined, retry: { maxRetries: 1, backoffFactorMs: 1, jitterMs: 1 } })
    const error = await c.createRun({ experimentId: "1" }).catch((e) => e)
    expect(error).toBeInstanceOf(MlflowTransportError)
    expect(error.sent).toBe(false)
    expect(await c.health()).toBe(false)
    await c.close()
  })

  it("sends bearer or basic auth from the environment and never shows it", async () => {
    const server = await misbehavingServer((_r, _b, res) => res.writeHead(401, { "content-type": "application/json" }).end('{"error_code":"UNAUTHENTICATED","message":"bad credentials"}'))
    const saved = { ...process.env }
    try {
      process.env.MLFLOW_TRACKING_TOKEN = "s3cret-token"
      const bearer = testClient({ trackingUri: server.url })
      const error = await bearer.getRun("r").catch((e) => e)
      expect(server.seen[0]!.auth).toBe("Bearer s3cret-token")
      expect(`${String(error)} ${JSON.stringify(error)} ${String(bearer)}`).not.toContain("s3cret")
      await bearer.close()
      delete process.env.MLFLOW_TRACKING_TOKEN
      process.env.MLFLOW_TRACKING_USERNAME = "ada"
      process.env.MLFLOW_TRACKING_PASSWORD = "pw:1"
      const basic = testClient({ trackingUri: server.url })
      await basic.getRun("r").catch(() => undefined)
      expect(server.seen[1]!.auth).toBe(`Basic ${Buffer.from("ada:pw:1").toString("base64")}`)
      await basic.close()
    } finally {
      process.env = saved
      await server.close()
    }
  })
})
