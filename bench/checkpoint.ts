/**
 * Mid-stage checkpoint benchmark (issue 15; not a test): the dLDM warm-up stage (`runWarmup`, the training
 * harness of @vw2/nn) at the mini preset and at a small one (64×64, encoder and decoder width 192 — the
 * dldm-small shape of bench/models.ts), on the backend selectBackend picks. Per preset:
 *   - step_ms: median train step; save_ms: mean wall time of one checkpoint save (snapshot, sha256, fsync, rename);
 *   - checkpoint_mb: size of one checkpoint; resume_ms: read + verify + restore at start (the harness's log);
 *   - skip_100k_ms: fast-forwarding the seeded batch iterator to position 100 000 without reading frames;
 *   - min_steps_for_2pct: the fewest steps between saves that keep a save ≤ 2 % of the steps' time;
 *   - default_share_pct: a save's share of the wall time at the default cadence (every minute, or longer when a
 *     save is slow: at most 2 %).
 *
 *   npx node bench/checkpoint.ts          (VW2_BENCH_OUT=file.json also writes the rows as JSON)
 */
import type { StageContext } from "@vw2/core"
import { DatasetWriter } from "@vw2/data"
import { miniPreset, openClips, endlessBatches, resumableBatches, runWarmup, WarmupConfigSchema, type DldmConfig } from "@vw2/dldm"
import { DEFAULT_CHECKPOINT_CADENCE, describeBackend, listCheckpointSteps, selectBackend, stepDirName } from "@vw2/nn"
import { Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const smallPreset: DldmConfig = {
  ...miniPreset,
  height: 64,
  width: 64,
  encoder: { width: 192, depth: 4, heads: 6, mlpRatio: 4 },
  decoder: { ...miniPreset.decoder, width: 192, depth: 4, heads: 6, mlpRatio: 4 }
}

const presets = [
  { name: "mini", model: miniPreset, steps: 40, every: 10 },
  { name: "small", model: smallPreset, steps: 12, every: 4 }
] as const

/** Coloured squares sliding over a textured table, in the shared episode layout. */
function writeDataset(dir: string, size: number): void {
  const writer = new DatasetWriter(dir, { name: "squares", source: "bench", height: size, width: size, fps: 8 })
  for (let e = 0; e < 4; e++) {
    const ep = writer.beginEpisode({ id: `ep-${e}`, split: "train", task: "slide", instruction: "slide the square", domain: "d0" })
    const side = size / 4
    for (let t = 0; t < 17; t++) {
      const rgb = new Uint8Array(size * size * 3)
      const x0 = (t * 2 + 5 * e) % (size - side)
      const y0 = (7 * e) % (size - side)
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) {
          const inside = y >= y0 && y < y0 + side && x >= x0 && x < x0 + side
          const i = (y * size + x) * 3
          rgb[i] = inside ? 220 - 40 * e : 40 + ((2 * y) % 120)
          rgb[i + 1] = inside ? 90 : 60 + 20 * ((x + y) % 2)
          rgb[i + 2] = inside ? 40 + 50 * e : 80 + ((3 * x) % 120)
        }
      ep.appendFrame(rgb, { step: t, phase: "slide", state: {} })
    }
    ep.close()
  }
  writer.finish()
}

const context = (root: string, resumeDir: string, logs: Array<string>, stepMs: Array<number>): StageContext => ({
  invocationHash: "bench",
  step: "warmup",
  seed: 0,
  outputDir: (name) => {
    const dir = path.join(root, "out", name)
    fs.mkdirSync(dir, { recursive: true })
    return dir
  },
  scratchDir: path.join(root, "scratch"),
  resumeDir,
  checkpointed: () => undefined,
  devices: { gpus: [], cpus: os.availableParallelism() },
  progress: () => undefined,
  metrics: (values) => {
    const ms = values["warmup/step_ms"]
    if (ms !== undefined) stepMs.push(ms)
  },
  log: (m) => logs.push(m),
  upload: () => undefined,
  signal: new AbortController().signal
})

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const dirBytes = (dir: string) => fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0)

const backend = await selectBackend()
console.error(`backend: ${describeBackend(backend)}; load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
const rows: Array<Record<string, string | number>> = []
for (const p of presets) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `vw2-bench-ckpt-${p.name}-`))
  const dataset = path.join(root, "data")
  writeDataset(dataset, p.model.height)
  const resumeDir = path.join(root, "resume")
  const config = Schema.decodeUnknownSync(WarmupConfigSchema)({ model: p.model, steps: p.steps, checkpointEvery: p.every, optim: { batchSize: 8 } })
  const logs: Array<string> = []
  const stepMs: Array<number> = []
  await runWarmup(context(root, resumeDir, logs, stepMs), config, dataset)
  const saveLine = logs.find((l) => l.includes("mid-stage checkpoint"))
  const saveMs = Number(/([\d.]+) ms per save/.exec(saveLine ?? "")?.[1])
  const newest = (await listCheckpointSteps(resumeDir))[0]!
  const checkpointMb = dirBytes(path.join(resumeDir, stepDirName(newest))) / 2 ** 20
  // the same invocation again: resumes from its newest checkpoint and trains the remaining steps
  const resumeLogs: Array<string> = []
  await runWarmup(context(root, resumeDir, resumeLogs, []), config, dataset)
  const resumeMs = Number(/restored in ([\d.]+) ms/.exec(resumeLogs.find((l) => l.includes("resumed from")) ?? "")?.[1])
  const batches = resumableBatches([openClips(dataset, p.model, { split: "train" })], ([c]) => endlessBatches(c!, 8, 0))
  const t0 = performance.now()
  batches.restore({ position: 100_000 })
  batches.next()
  const skipMs = performance.now() - t0
  const step = median(stepMs.slice(1))
  // the default cadence waits max(everyMinutes, save time / maxOverhead) after each save
  const cadenceMs = Math.max(DEFAULT_CHECKPOINT_CADENCE.everyMinutes! * 60_000, saveMs / DEFAULT_CHECKPOINT_CADENCE.maxOverhead!)
  const row = {
    preset: p.name,
    backend: backend.name,
    step_ms: Number(step.toFixed(1)),
    save_ms: Number(saveMs.toFixed(1)),
    checkpoint_mb: Number(checkpointMb.toFixed(2)),
    resume_ms: resumeMs,
    skip_100k_ms: Number(skipMs.toFixed(0)),
    save_pct_at_every_steps: Number(((100 * saveMs) / (p.every * step)).toFixed(2)),
    every_steps: p.every,
    min_steps_for_2pct: Math.ceil(saveMs / (0.02 * step)),
    default_share_pct: Number(((100 * saveMs) / cadenceMs).toFixed(4))
  }
  rows.push(row)
  console.error(JSON.stringify(row))
  fs.rmSync(root, { recursive: true, force: true })
}
const out = process.env["VW2_BENCH_OUT"]
if (out !== undefined) fs.writeFileSync(out, JSON.stringify({ rows, load: os.loadavg()[0] }, null, 2) + "\n")
console.log(JSON.stringify({ rows }, null, 2))
