/**
 * `npm run bench`: the benchmark suite (not tests). Writes bench/results/*.json and bench/results/summary.md.
 *
 * 1. Train-step throughput of the dLDM/DiT/AR transformer shapes (bench/models.ts) under every tfjs backend
 *    available here, and of the same network in PyTorch-CPU (bench/pytorch/transformer.py) in this run.
 * 2. The CPU's matmul ceiling: square float32 matmuls on the native backend, in onnxruntime-node and in
 *    PyTorch, next to the theoretical FP32 peak of the cores.
 * 3. The other issues' benchmarks, when present: every bench/*.ts besides this file and models.ts runs as
 *    `node bench/<name>.ts` with VW2_BENCH_OUT=bench/results/<name>.json; if it writes that file, its
 *    top-level scalars (or a `rows` array of flat objects) go into the summary; its output goes to
 *    bench/results/<name>.log.
 *
 * 4. The model packages' own dLDM / DiT / AR train steps (bench/models.ts REAL_MODELS) under every backend.
 * 5. The new mini models' train steps (bench/models.ts TWINS: dLDM warm-up with the conv U-Net decoder, VDM
 *    pre-training, the craft judge's classifier) on the first available backend, against PyTorch twins of the
 *    same architectures (bench/pytorch/models.py) in the same run, with the same number of threads.
 *
 * Flags: --full (also the slow backends on the small presets), --only=dit-mini,ar-small (transformer shapes
 * and/or twins by name), --only=models (the twins alone: no transformer shapes, matmuls, REAL_MODELS or other
 * benches; `npm run bench -- --only=models`), --no-twins, --backends=tensorflow,cpu, --no-pytorch, --no-others,
 * --no-real, --rounds=2 (alternating tfjs/PyTorch rounds, best of each), --update-docs (rewrite the table in
 * docs/native-compute.md between its bench markers).
 */
import * as tf from "@tensorflow/tfjs"
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import os from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { type BackendName, backendNames, selectBackend } from "../packages/nn/src/backend/index.ts"
import { ortMatmulGflops } from "./ortMatmul.ts"
import { matmulGflops, REAL_MODELS, timeRealModel, SPECS, type StepTiming, timeTrainSteps, timeTwin, type TransformerSpec, trainStepFlops, TWINS, type TwinRequest } from "./models.ts"

const root = new URL("..", import.meta.url).pathname
const resultsDir = join(root, "bench/results")
const python = join(root, ".venvs/bench/bin/python")

const { values: flags } = parseArgs({
  options: {
    full: { type: "boolean", default: false },
    only: { type: "string" },
    backends: { type: "string" },
    "no-pytorch": { type: "boolean", default: false },
    "no-others": { type: "boolean", default: false },
    "no-real": { type: "boolean", default: false },
    "no-twins": { type: "boolean", default: false },
    "update-docs": { type: "boolean", default: false },
    rounds: { type: "string", default: "2" }
  }
})
/**
 * Rounds of the tfjs-vs-PyTorch comparison: the first backend's train steps and the PyTorch reference run
 * alternately this many times and each side keeps its best round per shape (symmetric best-of-N). On this
 * shared VM the same process measured 396–514 samples/s for dldm-mini minutes apart, PyTorch 527–880, so one
 * round each could put either side on a bad minute.
 */
const rounds = Number(flags.rounds)
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds=${flags.rounds}: expected an integer ≥ 1`)

const onlyNames = flags.only?.split(",")
/**
 * Benches that also run on their own: `--only=<name>` runs just that file (as `node bench/<file>`, output shown,
 * results in bench/results/<file>.json). Without --only they run with the other benches below.
 */
const namedBenches: Readonly<Record<string, string>> = { "torch-stage": "torchStage.ts", mlflow: "mlflow.ts", checkpoint: "checkpoint.ts", engine: "engine.ts" }
if (onlyNames !== undefined && onlyNames.length > 0 && onlyNames.every((n) => n in namedBenches)) {
  mkdirSync(resultsDir, { recursive: true })
  let failed = 0
  for (const name of onlyNames) {
    const file = namedBenches[name]!
    const out = join(resultsDir, file.replace(/\.ts$/, ".json"))
    const res = spawnSync(process.execPath, [join(root, "bench", file)], { cwd: root, env: { ...process.env, VW2_BENCH_OUT: out }, stdio: "inherit" })
    if (res.status !== 0) failed++
  }
  process.exit(failed === 0 ? 0 : 1)
}
const specs = onlyNames === undefined ? SPECS : SPECS.filter((s) => onlyNames.includes(s.name))
const twins = onlyNames === undefined
  ? (flags["no-twins"] ? [] : TWINS)
  : TWINS.filter((t) => onlyNames.includes("models") || onlyNames.includes(t.name))
if (specs.length === 0 && twins.length === 0) {
  throw new Error(`--only=${flags.only}: no such spec or twin; known: models, ${[...SPECS, ...TWINS].map((s) => s.name).join(", ")}, and on their own: ${Object.keys(namedBenches).join(", ")}`)
}
/** Only twins asked for (--only=models or twin names): skip the transformer shapes' phases and the other benches. */
const twinsOnly = specs.length === 0
const wantedBackends = (flags.backends?.split(",") ?? [...backendNames]) as Array<BackendName>
/** Pure JS and single-threaded wasm take minutes per small-preset step; they run those only with --full. */
const slowBackends = new Set<string>(["cpu", "wasm"])

const log = (line: string) => process.stderr.write(`${line}\n`)

// ---- machine ----
const cpuModel = os.cpus()[0]?.model ?? "unknown CPU"
const cores = os.availableParallelism()
const cpuFlags = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : ""
/** os.cpus().speed reads cpufreq, which VMs often lack (0); /proc/cpuinfo has the nominal clock. */
const mhz = Math.round(Number(/cpu MHz\s*:\s*([\d.]+)/.exec(cpuFlags)?.[1] ?? os.cpus()[0]?.speed ?? 0))
/** FP32 FLOP per cycle per core: 2 FMA pipes × lanes × 2 (Zen 4 runs AVX-512 as 2 × 256-bit; AVX2 the same). */
const flopsPerCycle = /\bavx2\b/.test(cpuFlags) && /\bfma\b/.test(cpuFlags) ? 32 : 8
const peakGflops = (cores * mhz * flopsPerCycle) / 1000
const machine = {
  cpu: cpuModel, cores, mhz, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version,
  loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))), date: new Date().toISOString(),
  theoreticalPeakGflops: Math.round(peakGflops)
}
log(`bench: ${cpuModel}, ${cores} cores @ ${mhz} MHz, load ${machine.loadAverageAtStart.join(" ")}`)

// ---- PyTorch ----
interface TorchLine { readonly kind: string; readonly [key: string]: unknown }
const runTorch = async (script: string, request: unknown, policy: "default" | "passive"): Promise<Array<TorchLine>> => {
  const env = { ...process.env, ...(policy === "passive" ? { OMP_WAIT_POLICY: "PASSIVE" } : {}) }
  const child = spawn(python, [join(root, "bench/pytorch", script)], { env, stdio: ["pipe", "pipe", "inherit"] })
  child.stdin.end(JSON.stringify(request))
  let out = ""
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
  if (code !== 0) throw new Error(`bench/pytorch/${script} exited with ${code}`)
  return out.trim().split("\n").map((line) => ({ ...JSON.parse(line), ompWaitPolicy: policy }) as TorchLine)
}

const torchLines: Array<TorchLine> = []
let torchNote = "not run (--no-pytorch)"
let torchReady: boolean | undefined
/** Installs the pinned torch on first use (bench/pytorch/setup.sh); false when --no-pytorch or the setup failed. */
const ensureTorch = (): boolean => {
  if (flags["no-pytorch"]) return false
  if (torchReady === undefined) {
    const setup = spawnSync("bash", [join(root, "bench/pytorch/setup.sh")], { stdio: "inherit" })
    torchReady = setup.status === 0
    if (!torchReady) torchNote = `not run: bench/pytorch/setup.sh failed (exit ${setup.status})`
  }
  return torchReady
}
/**
 * On a contended machine (load above the core count) OpenMP's spin-waiting made torch up to 100× slower
 * here (ar-mini 2186 ms vs 21 ms a step); PASSIVE is what a user of a shared box would set.
 */
const torchPolicy = (): "default" | "passive" => {
  const contended = os.loadavg()[0]! > cores
  torchNote = contended ? "OMP_WAIT_POLICY=PASSIVE: the machine was contended" : "default OpenMP settings"
  return contended ? "passive" : "default"
}
const runPytorchReference = async (): Promise<void> => {
  loadAt["pytorch"] = os.loadavg()[0]!
  if (!ensureTorch()) return
  const policy = torchPolicy()
  log(`bench: PyTorch reference (OMP_WAIT_POLICY ${policy})`)
  torchLines.push(...(await runTorch("transformer.py", { specs, budget_ms: 4000, matmul: [512, 1024, 2048] }, policy)))
}

// ---- the new mini models vs their PyTorch twins ----
const TWIN_BUDGET_MS = 5000
interface TwinTiming { readonly name: string; readonly backend: string; readonly round: number; readonly stepMs: number; readonly cpuMs: number; readonly steps: number; readonly params: number; readonly firstLoss: number; readonly lastLoss: number }
const twinTfjs: Array<TwinTiming | { name: string; backend: string; round: number; error: string }> = []
const twinTorch: Array<TorchLine> = []
const twinBuildLeaks: Record<string, number> = {}
const twinBatch: Record<string, number> = {}
/**
 * The twins on `backend` and in PyTorch, alternating `rounds` times (each side keeps its fastest round, as for
 * the transformer shapes); torch gets as many threads as the native backend uses (every core).
 */
const runTwins = async (backend: string): Promise<void> => {
  if (twins.length === 0) return
  const requests: Array<TwinRequest> = await Promise.all(twins.map((t) => t.request()))
  for (const r of requests) twinBatch[r.name] = r.batch
  loadAt[`twins tfjs ${backend}`] = os.loadavg()[0]!
  for (let round = 1; round <= rounds; round++) {
    for (const [i, twin] of twins.entries()) {
      log(`bench: ${twin.name} on ${backend}${rounds > 1 ? ` (round ${round})` : ""}`)
      const before = tf.memory().numTensors
      try {
        twinTfjs.push({ name: twin.name, backend, round, ...(await timeTwin(twin, requests[i]!, TWIN_BUDGET_MS)) })
      } catch (error) {
        twinTfjs.push({ name: twin.name, backend, round, error: (error as Error).message.split("\n")[0]! })
      }
      // timeTwin fails on a leaking step; what building and disposing the model leaves is reported, not fatal
      // (measured: @vw2/dldm's ConvUNetDecoder leaves the gate-bias tensor it assigns at construction)
      const leaked = tf.memory().numTensors - before
      if (leaked !== 0) {
        log(`bench: warning: building and disposing ${twin.name} left ${leaked} tensor(s) on ${backend}`)
        twinBuildLeaks[twin.name] = leaked
      }
    }
    if (round === 1) loadAt["twins pytorch"] = os.loadavg()[0]!
    if (!ensureTorch()) continue
    const policy = torchPolicy()
    log(`bench: PyTorch twins (OMP_WAIT_POLICY ${policy}${rounds > 1 ? `, round ${round}` : ""})`)
    const lines = await runTorch("models.py", { twins: requests, budget_ms: TWIN_BUDGET_MS, threads: cores }, policy)
    twinTorch.push(...lines.map((l) => ({ ...l, round })))
  }
}
// ---- tfjs backends ----
interface Skipped { readonly spec: string; readonly backend: string; readonly reason: string }
const tfjsTimings: Array<StepTiming & { readonly round?: number }> = []
const skipped: Array<Skipped> = []
const matmuls: Array<{ backend: string; n: number; gflops: number }> = []
const ORT = "onnxruntime-node"
const backendInfo: Record<string, Record<string, string>> = {}
/** 1-minute load average when each phase started: the machine is shared, so say what it was doing. */
const loadAt: Record<string, number> = {}
let torchDone = false
const realTimings: Array<{ model: string; backend: string; stepMs: number; steps: number; samplesPerSec: number } | { model: string; backend: string; error: string }> = []

for (const backend of wantedBackends) {
  let choice
  try {
    choice = await selectBackend({ backend })
  } catch (error) {
    log(`bench: backend ${backend} unavailable: ${(error as Error).message}`)
    backendInfo[backend] = { unavailable: (error as Error).message }
    continue
  }
  backendInfo[backend] = { ...choice.details }
  if (twinsOnly) {
    // the twins compare frameworks on the first (fastest) backend only
    await runTwins(backend)
    torchDone = true
    break
  }
  loadAt[`tfjs ${backend}`] = os.loadavg()[0]!
  for (const n of backend === "tensorflow" ? [512, 1024, 2048] : [512]) {
    matmuls.push({ backend, n, gflops: matmulGflops(n) })
  }
  // onnxruntime-node's MatMul next to the first backend's: the measurement behind route 2 (docs/native-compute.md)
  if (!matmuls.some((m) => m.backend === ORT)) {
    for (const n of [512, 1024, 2048]) matmuls.push({ backend: ORT, n, gflops: await ortMatmulGflops(n) })
  }
  for (const spec of specs) {
    if (!flags.full && slowBackends.has(backend) && spec.name.endsWith("-small")) {
      skipped.push({ spec: spec.name, backend, reason: "minutes per step; run with --full" })
      continue
    }
    log(`bench: ${spec.name} on ${backend}`)
    const before = tf.memory().numTensors
    const timing = timeTrainSteps(spec, slowBackends.has(backend) ? { warmup: 1, minSteps: 2, budgetMs: 1 } : {})
    const leaked = tf.memory().numTensors - before
    if (leaked !== 0) throw new Error(`bench model ${spec.name} leaked ${leaked} tensors on ${backend}`)
    tfjsTimings.push(timing)
  }
  if (!flags["no-real"]) {
    for (const real of REAL_MODELS) {
      log(`bench: ${real.name} on ${backend}`)
      try {
        const slow = slowBackends.has(backend)
        realTimings.push({ model: real.name, backend, ...(await timeRealModel(real, slow ? 1 : 4000, slow ? 2 : 3)) })
      } catch (error) {
        realTimings.push({ model: real.name, backend, error: (error as Error).message.split("\n")[0]! })
      }
    }
  }
  // PyTorch runs right after the first (fastest) backend, so the two compared numbers share the machine's state;
  // further rounds alternate the two again (see `rounds`)
  if (!torchDone) {
    await runPytorchReference()
    for (let round = 2; round <= rounds; round++) {
      for (const spec of specs) {
        log(`bench: ${spec.name} on ${backend} (round ${round})`)
        tfjsTimings.push({ ...timeTrainSteps(spec), round })
      }
      await runPytorchReference()
    }
    await runTwins(backend)
  }
  torchDone = true
}
if (!torchDone && !twinsOnly) await runPytorchReference()

const torchInfo = [...torchLines, ...twinTorch].find((l) => l.kind === "info")
const bestTorch = (kind: string, key: string, value: unknown): TorchLine | undefined =>
  torchLines
    .filter((l) => l.kind === kind && l[key] === value)
    .sort((a, b) => (b["gflops"] as number) - (a["gflops"] as number))[0]

// ---- other issues' benchmarks ----
interface OtherBench { readonly name: string; readonly ok: boolean; readonly seconds: number; readonly summary: Array<[string, string]> }
const others: Array<OtherBench> = []
const flatScalars = (value: unknown, prefix = ""): Array<[string, string]> => {
  if (value === null || typeof value !== "object") return [[prefix, String(value)]]
  if (Array.isArray(value)) return value.length > 20 ? [[prefix, `${value.length} items`]] : value.flatMap((v, i) => flatScalars(v, `${prefix}[${i}]`))
  return Object.entries(value).flatMap(([k, v]) => flatScalars(v, prefix === "" ? k : `${prefix}.${k}`))
}
if (!flags["no-others"] && !twinsOnly) {
  const mine = new Set(["run.ts", "models.ts"])
  const files = readdirSync(join(root, "bench")).filter((f) => f.endsWith(".ts") && !f.includes(".tmp."))
  // a file another bench imports (e.g. engineExperiment.ts for engine.ts) is a helper, not a benchmark
  const helpers = new Set(files.flatMap((f) =>
    [...readFileSync(join(root, "bench", f), "utf8").matchAll(/["']\.\/([\w.-]+\.ts)["']/g)].map((m) => m[1]!)))
  for (const file of files.sort()) {
    if (mine.has(file) || helpers.has(file)) continue
    const name = file.replace(/\.ts$/, "")
    const out = join(resultsDir, `${name}.json`)
    log(`bench: running bench/${file}`)
    mkdirSync(resultsDir, { recursive: true })
    const t0 = performance.now()
    const res = spawnSync(process.execPath, [join(root, "bench", file)], {
      cwd: root, env: { ...process.env, VW2_BENCH_OUT: out }, encoding: "utf8", maxBuffer: 64 * 2 ** 20
    })
    writeFileSync(join(resultsDir, `${name}.log`), `${res.stdout ?? ""}\n${res.stderr ?? ""}`)
    const lastLines = (res.stdout ?? "").trim().split("\n").filter((l) => l.trim() !== "").slice(-3)
    const summary = existsSync(out)
      ? flatScalars(JSON.parse(readFileSync(out, "utf8"))).slice(0, 24)
      : lastLines.map((line, i): [string, string] => [`stdout[-${lastLines.length - i}]`, line.replaceAll("|", "/")])
    others.push({ name, ok: res.status === 0, seconds: (performance.now() - t0) / 1000, summary })
  }
}

// ---- report ----
const fmt = (x: number, digits = 1) => (x >= 100 ? x.toFixed(0) : x.toFixed(digits))
const rows: Array<string> = []
const tfjsBackendsRun = [...new Set(tfjsTimings.map((t) => t.backend))]
rows.push(`| shape | GFLOP/step | ${tfjsBackendsRun.map((b) => `tfjs ${b}: samples/s (GFLOP/s)`).join(" | ")} | PyTorch-CPU: samples/s (GFLOP/s) | best tfjs ÷ PyTorch |`)
rows.push(`|---|---:|${tfjsBackendsRun.map(() => "---:").join("|")}|---:|---:|`)
const ratios: Array<{ spec: string; backend: string; ratio: number }> = []
for (const spec of specs) {
  const cells = tfjsBackendsRun.map((b) => {
    const t = tfjsTimings.filter((x) => x.spec === spec.name && x.backend === b).sort((x, y) => y.samplesPerSec - x.samplesPerSec)[0]
    if (t !== undefined) return `${fmt(t.samplesPerSec)} (${fmt(t.gflops)})`
    return skipped.some((s) => s.spec === spec.name && s.backend === b) ? "— (--full)" : "—"
  })
  const torch = bestTorch("train", "spec", spec.name)
  const best = tfjsTimings.filter((t) => t.spec === spec.name).sort((a, b) => b.samplesPerSec - a.samplesPerSec)[0]
  let ratio = "—"
  if (torch !== undefined && best !== undefined) {
    const r = best.samplesPerSec / (torch["samplesPerSec"] as number)
    ratios.push({ spec: spec.name, backend: best.backend, ratio: r })
    ratio = `${r.toFixed(2)}× (${best.backend})`
  }
  const torchCell = torch === undefined ? "—" : `${fmt(torch["samplesPerSec"] as number)} (${fmt(torch["gflops"] as number)})`
  rows.push(`| ${spec.name} | ${fmt(trainStepFlops(spec) / 1e9, 2)} | ${cells.join(" | ")} | ${torchCell} | ${ratio} |`)
}

const matmulRows = [
  "| square matmul n | " + [...new Set(matmuls.map((m) => (m.backend === ORT ? ORT : `tfjs ${m.backend}`))), "PyTorch"].join(" | ") + " |",
  "|---:|" + [...new Set(matmuls.map((m) => m.backend)), "torch"].map(() => "---:").join("|") + "|"
]
for (const n of [512, 1024, 2048]) {
  const cells = [...new Set(matmuls.map((m) => m.backend))].map((b) => {
    const m = matmuls.find((x) => x.backend === b && x.n === n)
    return m === undefined ? "—" : fmt(m.gflops)
  })
  const torch = bestTorch("matmul", "n", n)
  matmulRows.push(`| ${n} | ${cells.join(" | ")} | ${torch === undefined ? "—" : fmt(torch["gflops"] as number)} |`)
}
const realRows: Array<string> = []
if (realTimings.length > 0) {
  const realBackends = [...new Set(realTimings.map((r) => r.backend))]
  realRows.push(`| model (own package) | batch | ${realBackends.map((b) => `${b}: ms/step (samples/s)`).join(" | ")} | ${realBackends.includes("cpu") ? "speed-up over cpu |" : ""}`)
  realRows.push(`|---|---:|${realBackends.map(() => "---:").join("|")}|${realBackends.includes("cpu") ? "---:|" : ""}`)
  for (const real of REAL_MODELS) {
    const cell = (b: string) => {
      const r = realTimings.find((x) => x.model === real.name && x.backend === b)
      return r === undefined ? "—" : "error" in r ? `failed: ${r.error}` : `${fmt(r.stepMs, 0)} (${fmt(r.samplesPerSec)})`
    }
    const ms = (b: string) => {
      const r = realTimings.find((x) => x.model === real.name && x.backend === b)
      return r !== undefined && "stepMs" in r ? r.stepMs : undefined
    }
    const cpuMs = ms("cpu")
    const fastest = Math.min(...realBackends.map((b) => ms(b) ?? Infinity))
    const speedup = realBackends.includes("cpu") ? ` ${cpuMs !== undefined && Number.isFinite(fastest) ? `${(cpuMs / fastest).toFixed(1)}×` : "—"} |` : ""
    realRows.push(`| ${real.name} — ${real.shapeOf} | ${real.batch} | ${realBackends.map(cell).join(" | ")} |${speedup}`)
  }
}
// twins: each side's fastest round; ratio = PyTorch ms ÷ tfjs ms (≥ 1: tfjs faster; issue 13 asks ≥ 0.8)
const twinRows: Array<string> = []
const twinRatios: Array<{ twin: string; backend: string; tfjsMs: number; torchMs: number; ratio: number; tfjsParams: number; torchParams: number }> = []
if (twins.length > 0) {
  const twinBackend = twinTfjs[0]?.backend ?? "—"
  twinRows.push(`| model (quickstart config) | batch | parameters tfjs / PyTorch | tfjs ${twinBackend}: ms/step | PyTorch-CPU: ms/step | PyTorch ms ÷ tfjs ms | CPU ms/step tfjs / PyTorch |`)
  twinRows.push("|---|---:|---:|---:|---:|---:|---:|")
  for (const twin of twins) {
    const ok = twinTfjs.filter((t): t is TwinTiming => t.name === twin.name && "stepMs" in t).sort((a, b) => a.stepMs - b.stepMs)
    const failed = twinTfjs.find((t) => t.name === twin.name && "error" in t)
    const torch = twinTorch.filter((l) => l.kind === "twin" && l["name"] === twin.name).sort((a, b) => (a["stepMs"] as number) - (b["stepMs"] as number))[0]
    const best = ok[0]
    const torchMs = torch?.["stepMs"] as number | undefined
    const torchParams = torch?.["params"] as number | undefined
    const batch = twinBatch[twin.name]
    let ratio = "—"
    if (best !== undefined && torchMs !== undefined) {
      const r = torchMs / best.stepMs
      twinRatios.push({ twin: twin.name, backend: best.backend, tfjsMs: best.stepMs, torchMs, ratio: r, tfjsParams: best.params, torchParams: torchParams ?? NaN })
      ratio = `${r.toFixed(2)}×`
    }
    const params = `${best?.params.toLocaleString("en-US") ?? "—"} / ${torchParams?.toLocaleString("en-US") ?? "—"}${best !== undefined && torchParams !== undefined && best.params !== torchParams ? " (differ!)" : ""}`
    const tfjsCell = best !== undefined ? `${fmt(best.stepMs)} (${best.steps} steps)` : failed !== undefined && "error" in failed ? `failed: ${failed.error}` : "—"
    const torchCell = torch !== undefined ? `${fmt(torchMs!)} (${String(torch["steps"])} steps)` : "—"
    const cpuCell = `${best !== undefined ? fmt(best.cpuMs) : "—"} / ${torch !== undefined ? fmt(torch["cpuMs"] as number) : "—"}`
    twinRows.push(`| ${twin.name} — ${twin.shapeOf} | ${batch ?? "—"} | ${params} | ${tfjsCell} | ${torchCell} | ${ratio} | ${cpuCell} |`)
  }
}
const ceiling = Math.max(...matmuls.map((m) => m.gflops), ...torchLines.filter((l) => l.kind === "matmul").map((l) => l["gflops"] as number))

const machineLine = `${cpuModel}, ${cores} cores @ ${mhz} MHz, ${machine.memoryGiB} GiB, Node ${process.version}` +
  `${torchInfo ? `, PyTorch ${String(torchInfo["torch"])} (${String(torchInfo["threads"])} threads, ${String(torchInfo["cpu_capability"])})` : ""}; ` +
  `load average at start ${machine.loadAverageAtStart.join(" / ")} (1/5/15 min), ${machine.date}`
const twinSection = twinRows.length === 0 ? [] : [
  "",
  `The new mini models' train steps (forward + loss + backward + gradient clip where the stage clips + AdamW, median wall ms/step after 3 warm-up steps; CPU ms: the process's CPU time per step, all threads) next to PyTorch twins of the same architectures (bench/pytorch/models.py, ${twinTorch.length === 0 ? torchNote : `OMP_WAIT_POLICY ${[...new Set(twinTorch.filter((l) => l.kind === "twin").map((l) => String(l["ompWaitPolicy"])))].join(" / ")} (PASSIVE when the 1-minute load exceeds the cores)`}, ${String(torchInfo?.["threads"] ?? "—")} threads).` +
    (rounds > 1 ? ` ${rounds} alternating rounds; each cell is that side's best round (all rounds in the JSON).` : ""),
  "",
  ...twinRows
]
const markdown = twinsOnly ? [`Machine: ${machineLine}.`, "", `1-minute load average when each phase started: ${Object.entries(loadAt).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}.`, ...twinSection].join("\n") : [
  `Machine: ${machineLine}.`,
  "",
  `1-minute load average when each phase started: ${Object.entries(loadAt).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}.`,
  "",
  `Train step = forward + backward + Adam on a pre-LN transformer with the model's shape (bench/models.ts; PyTorch: bench/pytorch/transformer.py, ${torchNote}). GFLOP/s counts matmul FLOPs only.` +
    (rounds > 1 ? ` tfjs ${tfjsBackendsRun[0] ?? ""} and PyTorch ran ${rounds} alternating rounds; each cell is that side's best round (all rounds in models.json).` : ""),
  "",
  ...rows,
  "",
  `Matmul ceiling (GFLOP/s, float32; theoretical FP32 peak of ${cores} cores at the nominal ${mhz} MHz ≈ ${machine.theoreticalPeakGflops}, more at boost clocks; best measured ${fmt(ceiling)}):`,
  "",
  ...matmulRows,
  ...(realRows.length === 0 ? [] : ["", "The model packages' own train steps (forward + backward + AdamW), tfjs backends only:", "", ...realRows]),
  ...twinSection,
  ...(others.length === 0 ? [] : [
    "",
    "Other benchmarks:",
    "",
    "| bench | status | seconds | results |",
    "|---|---|---:|---|",
    ...others.map((o) => `| ${o.name} | ${o.ok ? "ok" : "failed"} | ${o.seconds.toFixed(1)} | ${o.summary.map(([k, v]) => `${k}=${v}`).join(", ") || `see bench/results/${o.name}.log`} |`)
  ])
].join("\n")

mkdirSync(resultsDir, { recursive: true })
// --only=models writes twins.json / twins.md, so a partial run leaves the full run's models.json and summary.md alone
const twinResults = { twins: twinTfjs, pytorchTwins: twinTorch, twinRatios, twinBuildLeaks }
writeFileSync(join(resultsDir, twinsOnly ? "twins.json" : "models.json"), JSON.stringify(twinsOnly
  ? { machine: { ...machine, loadAverageAtEnd: os.loadavg().map((l) => Number(l.toFixed(2))) }, backends: backendInfo, ...twinResults }
  : {
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((l) => Number(l.toFixed(2))) },
    backends: backendInfo, specs: specs as ReadonlyArray<TransformerSpec>, tfjs: tfjsTimings, skipped,
    pytorch: torchLines, matmul: matmuls, ratios, realModels: realTimings, others, ...twinResults
  }, null, 2))
writeFileSync(join(resultsDir, twinsOnly ? "twins.md" : "summary.md"), `${markdown}\n`)

if (flags["update-docs"] && twinsOnly) log("bench: --update-docs ignored with --only=models (the docs table is the full run's)")
if (flags["update-docs"] && !twinsOnly) {
  const docs = join(root, "docs/native-compute.md")
  const text = readFileSync(docs, "utf8")
  const begin = "<!-- bench:begin -->", end = "<!-- bench:end -->"
  const i = text.indexOf(begin), j = text.indexOf(end)
  if (i < 0 || j < i) throw new Error(`${docs}: missing ${begin} … ${end} markers`)
  writeFileSync(docs, `${text.slice(0, i + begin.length)}\n${markdown}\n${text.slice(j)}`)
  log(`bench: table written to ${docs}`)
}
process.stdout.write(`${markdown}\n`)
