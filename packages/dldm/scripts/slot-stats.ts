/**
 * Per-query latent statistics of a dLDM checkpoint on a dataset split: for each query slot n the mean / std of
 * its pre-quantisation latents z (after latentNorm) per code dimension, its own FSQ perplexity and distinct
 * indices, and the correlation between slots (mean over code dims of corr(z_n, z_m) across clips and
 * transitions). Slots with near-identical statistics and correlation ≈ 1 carry one code, not N.
 *
 *   nice npx node packages/dldm/scripts/slot-stats.ts --checkpoint DIR --data DATASET_DIR [--split test]
 */
import { Dataset, DatasetClips } from "@vw2/data"
import { selectBackend } from "@vw2/nn"
import * as tf from "@tensorflow/tfjs"
import { parseArgs } from "node:util"
import { loadDldm } from "../src/index.ts"

const { values: args } = parseArgs({
  options: { checkpoint: { type: "string" }, data: { type: "string" }, split: { type: "string", default: "test" } }
})
if (args.checkpoint === undefined || args.data === undefined) throw new Error("--checkpoint DIR --data DATASET_DIR")
await selectBackend()
const { model } = await loadDldm(args.checkpoint)
const c = model.config
const clips = new DatasetClips(Dataset.open(args.data), { length: c.frames, stride: c.frames - 1 }, { filter: { split: args.split } })
const zs: number[][] = [] // per (clip, transition): N·dim latents
const idx: number[][] = [] // per (clip, transition): N indices
for (let i = 0; i < clips.count; i += 32) {
  const n = Math.min(32, clips.count - i)
  const per = c.frames * c.height * c.width * 3
  const buf = new Float32Array(n * per)
  for (let k = 0; k < n; k++) buf.set(clips.read(i + k).frames, k * per)
  const video = tf.tensor5d(buf, [n, c.frames, c.height, c.width, 3])
  const { latents, indices, features, codes } = model.codesOf(video)
  const z = latents.arraySync() as number[][][][]
  const ix = indices.arraySync() as number[][][]
  for (let a = 0; a < n; a++) for (let j = 0; j < z[a]!.length; j++) { zs.push(z[a]![j]!.flat()); idx.push(ix[a]![j]!) }
  for (const t of [video, latents, indices, features, codes]) t.dispose()
}
const N = c.queries
const D = c.fsqLevels.length
const M = zs.length
const col = (k: number) => zs.map((r) => r[k]!)
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length
const std = (v: number[]) => {
  const m = mean(v)
  return Math.sqrt(mean(v.map((x) => (x - m) ** 2)))
}
const corr = (a: number[], b: number[]) => {
  const [ma, mb, sa, sb] = [mean(a), mean(b), std(a), std(b)]
  return mean(a.map((x, i) => (x - ma) * (b[i]! - mb))) / (sa * sb + 1e-12)
}
const ppl = (v: number[]) => {
  const counts = new Map<number, number>()
  for (const x of v) counts.set(x, (counts.get(x) ?? 0) + 1)
  let h = 0
  for (const k of counts.values()) h -= (k / v.length) * Math.log(k / v.length)
  return { distinct: counts.size, perplexity: Math.exp(h) }
}
console.log(`${M} transitions (${args.split}), ${N} slots × ${D} dims`)
for (let n = 0; n < N; n++) {
  const dims = Array.from({ length: D }, (_, d) => col(n * D + d))
  const u = ppl(idx.map((r) => r[n]!))
  console.log(`slot ${n}: mean ${dims.map((v) => mean(v).toFixed(2)).join(" ")}  std ${dims.map((v) => std(v).toFixed(2)).join(" ")}  distinct ${u.distinct} perplexity ${u.perplexity.toFixed(1)}`)
}
for (let n = 0; n < N; n++) {
  const row = Array.from({ length: N }, (_, m) => mean(Array.from({ length: D }, (_, d) => corr(col(n * D + d), col(m * D + d)))).toFixed(2))
  console.log(`corr slot ${n}: ${row.join(" ")}`)
}
const all = ppl(idx.flat())
console.log(`all slots: distinct ${all.distinct} perplexity ${all.perplexity.toFixed(1)}`)
model.dispose()
