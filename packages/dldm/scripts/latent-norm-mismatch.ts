/**
 * The latentNorm train/inference mismatch (issue 13): for pairs of held-out clips, the share of FSQ indices
 * that differ between the joint stage's training call (batch of 2, `train` = true) and inference (`encode`,
 * as tokenize and craft-eval call it), with latentNorm on batch statistics in training (before the fix) and
 * on its running statistics (the flag the warm-up now saves). The running statistics are reset before every
 * pair, so each pair sees the checkpoint's.
 *
 *   nice npx node packages/dldm/scripts/latent-norm-mismatch.ts <dldm-checkpoint dir> <video-dataset dir>
 */
import * as tf from "@tensorflow/tfjs"
import { Dataset, DatasetClips } from "@vw2/data"
import { selectBackend } from "@vw2/nn"
import { loadDldm } from "../src/index.ts"
await selectBackend()
const { model } = await loadDldm(process.argv[2]!)
const ds = Dataset.open(process.argv[3]!)
const c = new DatasetClips(ds, { length: model.config.frames, stride: 1 + model.config.temporalCompression }, { filter: { split: "test" } })
const n = c.count - (c.count % 2)
const { frames: T, height: H, width: W } = model.config
const norm = model.latentNorm
if (norm === undefined) throw new Error("this checkpoint has no latentNorm")
const mean0 = tf.clone(norm.runningMean.v)
const var0 = tf.clone(norm.runningVar.v)
for (const flag of [0, 1]) {
  norm.runningFlag.v.assign(tf.tensor1d([flag])) // 0: batch statistics in training (before the fix), 1: running ones
  let diff = 0
  let total = 0
  let clipsDiff = 0
  for (let i = 0; i < n; i += 2) {
    const video = tf.tensor5d(Float32Array.from([...c.read(i).frames, ...c.read(i + 1).frames]), [2, T, H, W, 3])
    norm.runningMean.v.assign(mean0)
    norm.runningVar.v.assign(var0)
    const inf = model.encode(video).dataSync()
    const tr = model.codesOf(video, true).indices.dataSync()
    let d = 0
    for (let k = 0; k < inf.length; k++) if (inf[k] !== tr[k]) d++
    diff += d
    total += inf.length
    if (d > 0) clipsDiff++
    video.dispose()
  }
  console.log(`runningInTrain ${flag}: ${(100 * diff / total).toFixed(1)} % of ${total} code indices differ between joint-stage training (batch 2, train=true) and inference; ${clipsDiff}/${n / 2} pairs affected`)
}
