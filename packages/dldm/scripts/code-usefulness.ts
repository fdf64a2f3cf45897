/**
 * Do the warm-up's codes carry motion? Trains the real `warmup` stage on a MiniCraft dataset, then scores
 * held-out test-domain clips (unseen appearances):
 *   own      L1 of the low-fi reconstruction decoded from the clip's own codes
 *   swapped  L1 when the clip's first frame is decoded with another clip's codes (a different episode)
 *   repeat   L1 of repeating the first frame (what a decoder that ignores the codes can reach)
 * all in [0, 1] pixel units over frames 1..T−1, on every test clip and on the moving half (clips whose
 * repeat-first-frame error is above the median: idle clips dilute the mean); the moving half of 64 train
 * clips tells underfitting (train no better than repeat) from failing to generalise. Codes carry motion when own is
 * clearly below both swapped and repeat. It also prints the FSQ index usage per code position (distinct
 * indices, entropy in bits) over the test clips: a position with one index is collapsed.
 *
 *   nice npx node packages/dldm/scripts/code-usefulness.ts [--steps 400] [--config '{"optim":{"lr":3e-3}}']
 *     [--preset mini] [--train-episodes 4] [--test-episodes 1] [--data DIR] [--seed 0]
 *
 * `--preset mini` starts from `miniStageConfigs.warmup` (what the quickstart runs); `--config` is merged over
 * it (deeply), `--steps` overrides its step count. The MiniCraft dataset (the quickstart's size by default) is
 * generated once and reused from --data (default: a per-size folder under the OS temp dir).
 *
 * It ends with the margins (swapped − own, repeat − own, absolute and relative) and the index usage
 * (distinct indices, perplexity = 2^entropy of the index distribution over all test codes).
 *
 * Findings (2026-11-25, 2-core shared CPU, native backend; details and every trial in ../NOTES-collapse.md):
 * the old mini preset collapsed (2–35 indices, own = swapped ≈ repeat) because the pre-FSQ latents drift to
 * one saturated value before the decoder reads them. The mini preset now has latentNorm "batch" and
 * flowWarp, and the mini warm-up runs 800 steps at lr 1e-3: test own .0229 < swapped .0236 (3 %), repeat
 * .0220; train-moving own .0349 < swapped .0358 < repeat .0373; 34 distinct indices, perplexity 15.5.
 * Own codes are still worse than repeat on held-out test domains: a decoder fed the future features directly
 * is too (NOTES-collapse.md, L1), so that bar is appearance generalisation at the mini budget.
 */
import { runStageDirect } from "@vw2/core"
import { Dataset, DatasetClips, generateMiniCraftStage } from "@vw2/data"
import * as tf from "@tensorflow/tfjs"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { loadDldm, miniStageConfigs, warmupStage, type Dldm } from "../src/index.ts"
import { deepMerge, type Json } from "./internal/json.ts"

const { values: args } = parseArgs({
  options: {
    steps: { type: "string" },
    config: { type: "string", default: "{}" },
    preset: { type: "string", default: "mini" },
    "train-episodes": { type: "string", default: "4" },
    "test-episodes": { type: "string", default: "1" },
    data: { type: "string" },
    seed: { type: "string", default: "0" }
  }
})


/** Runs a stage the way an executor would (core's runStageDirect) and returns its output root and logs. */
async function runStage(stage: typeof warmupStage | typeof generateMiniCraftStage, config: unknown, inputs: Record<string, string>, seed: number) {
  const run = await runStageDirect(stage, config, inputs, { seed })
  return { outputRoot: run.outputRoot, logs: run.logs }
}

const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

/** Per-clip mean |a − b| over frames 1..T−1 of [B, T, H, W, 3] tensors. */
function perClipL1(a: tf.Tensor, b: tf.Tensor): number[] {
  return tf.tidy(() => {
    const t = a.shape[1]!
    const d = tf.abs(tf.sub(tf.slice(a, [0, 1], [-1, t - 1]), tf.slice(b, [0, 1], [-1, t - 1])))
    return Array.from(tf.mean(tf.reshape(d, [a.shape[0]!, -1]), 1).dataSync())
  })
}

function evaluate(model: Dldm, clips: DatasetClips, limit = Infinity) {
  const n = Math.min(clips.count, limit)
  // evenly spread over the split when limited
  const all = Array.from({ length: n }, (_, i) => clips.read(Math.floor((i * clips.count) / n)))
  const [t, h, w] = [model.config.frames, model.config.height, model.config.width]
  const video = tf.tensor5d(Float32Array.from(all.flatMap((c) => Array.from(c.frames))), [n, t, h, w, 3])
  // partner: the nearest clip (in index order, half the set away) from a different episode
  const partner = all.map((c, i) => {
    for (let k = 0; k < n; k++) {
      const j = (i + Math.floor(n / 2) + k) % n
      if (all[j]!.ref.episodeId !== c.ref.episodeId) return j
    }
    return (i + 1) % n
  })
  const result = tf.tidy(() => {
    const indices = model.encode(video)
    const first = tf.slice(video, [0, 0], [-1, 1])
    const own = model.decodeLowFi(first, indices)
    const swapped = model.decodeLowFi(first, tf.gather(indices, partner))
    const repeat = tf.tile(first, [1, t, 1, 1, 1])
    return {
      own: perClipL1(own, video),
      swapped: perClipL1(swapped, video),
      repeat: perClipL1(repeat, video),
      indices: indices.arraySync() as number[][][]
    }
  })
  video.dispose()
  return result
}

function usage(indices: number[][][]): { position: string; distinct: number; entropy: number }[] {
  const j = indices[0]!.length
  const q = indices[0]![0]!.length
  const rows: { position: string; distinct: number; entropy: number }[] = []
  for (let a = 0; a < j; a++)
    for (let b = 0; b < q; b++) {
      const counts = new Map<number, number>()
      for (const clip of indices) counts.set(clip[a]![b]!, (counts.get(clip[a]![b]!) ?? 0) + 1)
      const entropy = -[...counts.values()].reduce((s, c) => s + (c / indices.length) * Math.log2(c / indices.length), 0)
      rows.push({ position: `t${a}q${b}`, distinct: counts.size, entropy })
    }
  return rows
}

/** 2^entropy of the index distribution: the number of equally used codes it is worth */
function perplexity(indices: ReadonlyArray<number>): number {
  const counts = new Map<number, number>()
  for (const i of indices) counts.set(i, (counts.get(i) ?? 0) + 1)
  const h = -[...counts.values()].reduce((s, c) => s + (c / indices.length) * Math.log2(c / indices.length), 0)
  return 2 ** h
}

const seed = Number(args.seed)
const trainEps = Number(args["train-episodes"])
const testEps = Number(args["test-episodes"])
const dataDir = args.data ?? path.join(os.tmpdir(), `vw2-code-usefulness-minicraft-${trainEps}-${testEps}`)
if (!fs.existsSync(path.join(dataDir, "dataset", "dataset.json"))) {
  fs.rmSync(dataDir, { recursive: true, force: true })
  const generated = await runStage(generateMiniCraftStage, { trainEpisodesPerTask: trainEps, testEpisodesPerTask: testEps }, {}, 0)
  fs.mkdirSync(dataDir, { recursive: true })
  fs.renameSync(path.join(generated.outputRoot, "dataset"), path.join(dataDir, "dataset")) // kept for the next run
  fs.rmSync(path.dirname(generated.outputRoot), { recursive: true, force: true })
}
const dataset = path.join(dataDir, "dataset")

if (args.preset !== "mini") throw new Error(`--preset ${args.preset}: only "mini" runs on this machine`)
let config = deepMerge(structuredClone(miniStageConfigs.warmup) as Json, JSON.parse(args.config) as Json)
if (args.steps !== undefined) config = { ...config, steps: Number(args.steps) }

const cpu0 = process.cpuUsage()
const t0 = performance.now()
const { outputRoot: out, logs } = await runStage(warmupStage, config, { dataset }, seed)
const cpu = process.cpuUsage(cpu0)
try {
  const { model } = await loadDldm(path.join(out, "checkpoint"))
  const test = new DatasetClips(Dataset.open(dataset), { length: model.config.frames, stride: model.config.frames - 1 }, { filter: { split: "test" } })
  const train = new DatasetClips(Dataset.open(dataset), { length: model.config.frames, stride: model.config.frames - 1 }, { filter: { split: "train" } })
  const r = evaluate(model, test)
  const rTrain = evaluate(model, train, 64)
  const movingHalf = (repeat: number[]) =>
    repeat
      .map((v, i) => [v, i] as const)
      .sort((a, b) => a[0] - b[0])
      .slice(Math.floor(repeat.length / 2))
      .map(([, i]) => i)
  const moving = movingHalf(r.repeat)
  const pick = (xs: number[], idx: number[]) => idx.map((i) => xs[i]!)
  const u = usage(r.indices)
  const allIndices = r.indices.flat(2)
  console.log(`config ${JSON.stringify(config)}`)
  console.log(logs.filter((l) => l.startsWith("warmup: loss") || l.startsWith("tfjs backend")).join("\n"))
  console.log(`train ${((performance.now() - t0) / 1000).toFixed(0)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(0)} s cpu; ${test.count} test clips of ${model.config.frames} frames`)
  const fmt = (x: number) => x.toFixed(4)
  console.log(`test    own ${fmt(mean(r.own))}  swapped ${fmt(mean(r.swapped))}  repeat ${fmt(mean(r.repeat))}`)
  console.log(`test-moving  own ${fmt(mean(pick(r.own, moving)))}  swapped ${fmt(mean(pick(r.swapped, moving)))}  repeat ${fmt(mean(pick(r.repeat, moving)))}`)
  const movingTrain = movingHalf(rTrain.repeat)
  console.log(`train-moving own ${fmt(mean(pick(rTrain.own, movingTrain)))}  swapped ${fmt(mean(pick(rTrain.swapped, movingTrain)))}  repeat ${fmt(mean(pick(rTrain.repeat, movingTrain)))}  (${rTrain.own.length} train clips)`)
  const margin = (own: number[], other: number[]) => `${fmt(mean(other) - mean(own))} (${(100 * (1 - mean(own) / mean(other))).toFixed(1)} %)`
  console.log(`margins test: swapped − own ${margin(r.own, r.swapped)}, repeat − own ${margin(r.own, r.repeat)}; train-moving: swapped − own ${margin(pick(rTrain.own, movingTrain), pick(rTrain.swapped, movingTrain))}, repeat − own ${margin(pick(rTrain.own, movingTrain), pick(rTrain.repeat, movingTrain))}`)
  console.log(`usage   ${new Set(allIndices).size} distinct of ${model.geo.vocabulary}, perplexity ${perplexity(allIndices).toFixed(1)} over the ${allIndices.length} test codes`)
  console.log(
    `codes   per position distinct/entropy(bits): ` +
      u.map((p) => `${p.position} ${p.distinct}/${p.entropy.toFixed(1)}`).join(" ")
  )
  model.dispose()
} finally {
  fs.rmSync(path.dirname(out), { recursive: true, force: true }) // runStageDirect's temporary root
}
