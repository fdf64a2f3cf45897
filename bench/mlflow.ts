/**
 * MLflow tracking benchmark (not a test): metric points per second into a local MLflow server (SQLite,
 * started here, stopped at the end), for our TS client and tracker vs. the Python client's `log_metric`
 * loop and `log_batch` — same server, same machine. Every run's point count is verified via
 * metric history, so a fast-but-lossy path cannot win.
 *
 *   npx node bench/mlflow.ts      (VW2_BENCH_MLFLOW_POINTS=100000, VW2_BENCH_MLFLOW_LOOP_POINTS=2000,
 *                                  VW2_MLFLOW_WORKERS=1; writes $VW2_BENCH_OUT when set)
 *
 * Target (issue #3): ≥ 50k points/s.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { MlflowClient, MlflowTracker, ensureLocalServer, stopLocalServer } from "../packages/tracking/src/index.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const python = path.join(root, ".venvs/mlflow/bin/python")
const points = Number(process.env.VW2_BENCH_MLFLOW_POINTS ?? 100_000)
const loopPoints = Number(process.env.VW2_BENCH_MLFLOW_LOOP_POINTS ?? 2000)
const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-bench-mlflow-"))

const series = (n: number, key = "loss") => {
  const now = Date.now()
  return Array.from({ length: n }, (_, i) => ({ key, value: 1 / (i + 1), step: i, timestamp: now + i }))
}

const main = async () => {
  const server = await ensureLocalServer({ home, portRange: [5500, 5599] })
  const client = new MlflowClient({ trackingUri: server.url, auth: undefined })
  const exp = await client.getOrCreateExperiment("bench-ts")
  const results: Record<string, number | string> = { machine: `${os.cpus().length}-core ${os.cpus()[0]?.model ?? "cpu"}, shared`, server: `mlflow ${await client.version()} sqlite, ${process.env.VW2_MLFLOW_WORKERS ?? 1} worker(s)`, points }
  const verify = async (runId: string, n: number) => {
    const got = (await client.getMetricHistory(runId, "loss")).length
    if (got !== n) throw new Error(`run ${runId}: ${got} of ${n} points arrived`)
  }

  // 0. client-side cost alone: validation, splitting and serialisation of the request bodies
  {
    const data = series(points)
    const t = performance.now()
    const bodies = client.prepareLogBatch("0".repeat(32), { metrics: data })
    results.ts_serialise_points_per_s = Math.round(points / ((performance.now() - t) / 1000))
    results.requests_per_100k = Math.round((bodies.length * 100_000) / points)
  }

  // 1. TS client: log-batch requests, 4 in flight
  for (const inFlight of [1, 4]) {
    const run = await client.createRun({ experimentId: exp, runName: `ts-client-${inFlight}` })
    const bodies = client.prepareLogBatch(run.runId, { metrics: series(points) })
    const t = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next < bodies.length) await client.sendLogBatch(bodies[next++]!)
    }))
    results[`ts_client_inflight${inFlight}_points_per_s`] = Math.round(points / ((performance.now() - t) / 1000))
    await verify(run.runId, points)
  }

  // 2. TS tracker (what stages use): logMetrics in slices as the engine does, then flush
  {
    const tracker = await MlflowTracker.open({ trackingUri: server.url, home })
    const parent = await tracker.startExperimentRun({ experiment: "bench-ts", configHash: "b".repeat(64), params: {}, tags: {} })
    const data = series(points)
    const t = performance.now()
    for (let i = 0; i < data.length; i += 500) tracker.logMetrics(parent, data.slice(i, i + 500))
    const enqueued = performance.now() - t
    await tracker.flush()
    results.ts_tracker_points_per_s = Math.round(points / ((performance.now() - t) / 1000))
    results.ts_tracker_enqueue_points_per_s = Math.round(points / (enqueued / 1000))
    tracker.endRun(parent, "FINISHED")
    await tracker.close()
    await verify(parent, points)
  }

  // 3. Python client, same server
  for (const [mode, n] of [["log_metric", loopPoints], ["log_batch", points]] as const) {
    const r = spawnSync(python, [path.join(root, "bench/mlflow_python.py"), server.url, mode, String(n)], { encoding: "utf8" })
    if (r.status !== 0) throw new Error(`python ${mode} failed:\n${r.stderr}`)
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { seconds: number; run_id: string }
    results[`python_${mode}_points_per_s`] = Math.round(n / out.seconds)
    await verify(out.run_id, n)
  }
  await client.close()
  return results
}

try {
  const results = await main()
  console.log(JSON.stringify(results, null, 2))
  const best = Math.max(Number(results.ts_client_inflight4_points_per_s), Number(results.ts_tracker_points_per_s))
  console.log(
    `mlflow: TS tracker ${results.ts_tracker_points_per_s} pts/s, TS client ${results.ts_client_inflight4_points_per_s} pts/s (4 in flight), ` +
      `python log_batch ${results.python_log_batch_points_per_s} pts/s, python log_metric ${results.python_log_metric_points_per_s} pts/s; ` +
      `target 50000: ${best >= 50_000 ? "met" : "NOT met (the server's SQLite inserts are the bottleneck, see ts_serialise_points_per_s)"}`
  )
  if (process.env.VW2_BENCH_OUT) fs.writeFileSync(process.env.VW2_BENCH_OUT, JSON.stringify(results, null, 2))
} finally {
  await stopLocalServer({ home })
  fs.rmSync(home, { recursive: true, force: true })
}
