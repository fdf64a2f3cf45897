/**
 * Why do the warm-up's FSQ codes collapse? A warm-up loop on MiniCraft train clips that, every `--every`
 * steps, measures on a fixed batch of 16 train clips:
 *   l1 own / swapped / repeat   reconstruction L1 ([0, 1] units, frames 1..T−1) with the clip's own codes,
 *                               with the next clip's codes, and of repeating frame 0
 *   distinct                    FSQ indices used over the batch's 16·J·N codes
 *   zStd                        std over the batch of the pre-quantisation latents z (after latentNorm; mean
 *                               over positions and dims)
 *   boundStd                    the same after FSQ's tanh bound (a code changes when this moves by ~1)
 *   grad norms                  encoder / qformer / decoder code path (code_embed) / rest of the decoder
 * and at the end the held-out test-domain own / swapped / repeat L1 (all clips, and the moving half).
 *
 *   nice -n 19 npx node packages/dldm/scripts/collapse-probe.ts --steps 300 [--lr 1e-3] [--batch 4]
 *     [--model '{"latentNorm":"none"}'] [--loss '{"motionWeight":4}'] [--data DIR]
 *     [--synthetic (random moving squares)] [--oracle (decoder fed the true displacement, no encoder)]
 */
import { Dataset, DatasetClips } from "@vw2/data"
import { AdamW, Init, clipByGlobalNorm, computeGradients, selectBackend } from "@vw2/nn"
import * as tf from "@tensorflow/tfjs"
import * as path from "node:path"
import * as os from "node:os"
import { parseArgs } from "node:util"
import { Dldm, DldmConfigSchema, LowFiDecoder, batchTensor, endlessBatches, openClips, type DldmConfig } from "../src/index.ts"
import { Schema } from "effect"
import { panningTextures, randomMovingSquares } from "../test/fixtures.ts"
import { colourAugment } from "../src/train/augment.ts"

const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "300" },
    every: { type: "string", default: "50" },
    lr: { type: "string", default: "1e-3" },
    batch: { type: "string", default: "4" },
    model: { type: "string", default: "{}" },
    loss: { type: "string", default: "{}" },
    data: { type: "string", default: path.join(os.tmpdir(), "vw2-code-usefulness-minicraft-4-1", "dataset") },
    seed: { type: "string", default: "0" },
    synthetic: { type: "boolean", default: false },
    panning: { type: "boolean", default: false },
    fixed: { type: "boolean", default: false },
    oracle: { type: "boolean", default: false },
    "leak-features": { type: "boolean", default: false },
    augment: { type: "string", default: "0" }
  }
})

await selectBackend()
const config = Schema.decodeUnknownSync(DldmConfigSchema)(JSON.parse(args.model)) as DldmConfig
const lossOptions = JSON.parse(args.loss) as Record<string, number>
const seed = Number(args.seed)
const model = new Dldm(Init.seeded(seed), config)
const optimizer = new AdamW({ lr: Number(args.lr), beta1: 0.9, beta2: 0.99, weightDecay: 0.1 })
const synthetic = args.synthetic
const batches = synthetic ? undefined : endlessBatches(openClips(args.data, config, { split: "train" }), Number(args.batch), seed)
/** oracle codes (synthetic only): per transition the square's displacement over its frames, /6, in code dims 0, 1 */
const oracleCodes = new WeakMap<tf.Tensor, tf.Tensor4D>()
const squares = (n: number, s: number): tf.Tensor5D => {
  if (args.panning) return panningTextures(n, config.frames, s)
  const positions: number[][][] = []
  const video = randomMovingSquares(n, config.frames, s, 32, positions)
  const tc = config.temporalCompression
  const j = (config.frames - 1) / tc
  const codes = positions.map((p) =>
    Array.from({ length: j }, (_, t) => {
      const [a, b] = [p[Math.max(0, t * tc)]!, p[(t + 1) * tc]!]
      const d = [(b[0]! - a[0]!) / 6, (b[1]! - a[1]!) / 6, 0, 0].slice(0, config.fsqLevels.length)
      return Array.from({ length: config.queries }, () => d)
    })
  )
  oracleCodes.set(video, tf.tensor4d(codes))
  return video
}
const nextBatch = (step: number): tf.Tensor5D =>
  batches === undefined ? squares(Number(args.batch), args.fixed ? 4242 : 1000 + step) : batchTensor(batches.next().value!)

/** upper bound: the decoder starts from every latent frame's own encoder features (sees the future), no codes */
function leakForward(video: tf.Tensor5D): tf.Tensor {
  return tf.tidy(() => {
    const dec = model.decoder
    if (!(dec instanceof LowFiDecoder)) throw new Error("--leak-features probes the token decoder: pass --config with decoder.kind \"tokens\"")
    const features = model.encoder.call(video)
    const k = features.shape[1]
    let h = tf.add(dec.fromFeatures.call(features), dec.spatialPos.v)
    h = tf.add(h, tf.expandDims(dec.temporalPos.v, 1))
    const context = tf.zeros([features.shape[0], 1, config.decoder.width]) as tf.Tensor3D
    let x = h as tf.Tensor4D
    for (const block of dec.blocks) x = block.call(x, context, tf.ones([k * features.shape[2], 1], "bool"))
    const out = dec.normOut.call(x)
    const patches = model.encoder.patchTransform.projectOut(out, dec.toPatch) as tf.Tensor4D
    return model.toVideo(dec.toFlow === undefined ? patches : (tf.concat([patches, dec.toFlow.call(out)], 3) as tf.Tensor4D), video)
  })
}

// `--augment s`: the warm-up's colourAugment (src/train/augment.ts) — does appearance variety help the held-out
// test domains? (A1: no)

/** the training forward (latentNorm on batch statistics), or the decoder fed oracle codes */
function forward(video: tf.Tensor5D): tf.Tensor {
  return tf.tidy(() => {
    if (args["leak-features"]) return leakForward(video)
    if (!args.oracle) return model.forward(video, true).recon
    return model.reconstruct(video, oracleCodes.get(video)!, true)
  })
}
const variables = model.trainableVariables()

const probeClips = new DatasetClips(Dataset.open(args.data), { length: config.frames, stride: config.frames - 1 }, { filter: { split: "train" } })
const stack = (c: DatasetClips, n: number) => {
  const all = Array.from({ length: n }, (_, i) => c.read(Math.floor((i * c.count) / n)))
  return tf.tensor5d(Float32Array.from(all.flatMap((x) => Array.from(x.frames))), [n, config.frames, config.height, config.width, 3])
}
const probe = synthetic ? squares(args.fixed ? Number(args.batch) : 16, 4242) : stack(probeClips, 16)

const l1After0 = (a: tf.Tensor, b: tf.Tensor): number[] =>
  tf.tidy(() => {
    const t = a.shape[1]!
    const d = tf.abs(tf.sub(tf.slice(a, [0, 1], [-1, t - 1]), tf.slice(b, [0, 1], [-1, t - 1])))
    return Array.from(tf.mean(tf.reshape(d, [a.shape[0]!, -1]), 1).dataSync())
  })
const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

function measure(video: tf.Tensor5D) {
  return tf.tidy(() => {
    const n = video.shape[0]
    const { latents: z, codes: own0, indices } = model.codesOf(video) // inference: running statistics
    const bounded = model.fsq.bound(z)
    const first = tf.slice(video, [0, 0], [-1, 1])
    const partner = Array.from({ length: n }, (_, i) => (i + 1) % n)
    const codes = args.oracle ? oracleCodes.get(video)! : own0
    const own = l1After0(args["leak-features"] ? leakForward(video) : model.decodeLowFi(first, codes), video)
    const swapped = l1After0(model.decodeLowFi(first, tf.gather(codes, partner)), video)
    const repeat = l1After0(tf.tile(first, [1, config.frames, 1, 1, 1]), video)
    const std = (x: tf.Tensor) => tf.mean(tf.sqrt(tf.moments(x, 0).variance)).dataSync()[0]!
    return { own, swapped, repeat, distinct: new Set(indices.dataSync()).size, zStd: std(z), boundStd: std(bounded), zAbs: tf.mean(tf.abs(z)).dataSync()[0]! }
  })
}

function probeLoss(video: tf.Tensor, recon: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const err = tf.sub(recon, video)
    const first = tf.slice(video, [0, 0], [-1, 1])
    const changed = tf.cast(tf.greater(tf.mean(tf.abs(tf.sub(video, first)), -1, true), 0.05), "float32")
    const w = tf.add(1, tf.mul(changed, lossOptions["motionWeight"] ?? 0))
    const l1 = tf.div(tf.sum(tf.mul(w, tf.abs(err))), tf.mul(tf.sum(w), 3))
    const mse = tf.div(tf.sum(tf.mul(w, tf.square(err))), tf.mul(tf.sum(w), 3))
    return tf.add(tf.mul(l1, 2 * (lossOptions["l1"] ?? 1)), tf.mul(mse, 4 * (lossOptions["mse"] ?? 0))) as tf.Scalar
  })
}

const group = (name: string) =>
  name.startsWith("encoder.") ? "enc" : name.startsWith("qformer.") ? "qf" : name.startsWith("decoder.code_") ? "dec.code" : "dec"
const fmt = (x: number) => x.toFixed(4)
const t0 = performance.now()
let lossAvg = 0
for (let step = 0; step < Number(args.steps); step++) {
  const raw = nextBatch(step)
  const video = colourAugment(raw, Number(args.augment), seed * 100003 + step)
  raw.dispose()
  const { loss, grads } = computeGradients(variables, () => probeLoss(video, forward(video)))
  const norms: Record<string, number> = {}
  tf.tidy(() => {
    for (const [name, g] of grads) norms[group(name)] = (norms[group(name)] ?? 0) + tf.sum(tf.square(g)).dataSync()[0]!
  })
  const clipped = clipByGlobalNorm(grads, 1)
  for (const g of grads.values()) g.dispose()
  optimizer.apply(variables, clipped.grads)
  for (const g of clipped.grads.values()) g.dispose()
  video.dispose()
  lossAvg += loss
  if ((step + 1) % Number(args.every) === 0 || step === 0) {
    const m = measure(probe)
    const gn = Object.entries(norms).map(([k, v]) => `${k} ${Math.sqrt(v).toExponential(1)}`).join(" ")
    console.log(
      `step ${step + 1} loss ${fmt(lossAvg / (step === 0 ? 1 : Number(args.every)))} | train16 own ${fmt(mean(m.own))} swap ${fmt(mean(m.swapped))} rep ${fmt(mean(m.repeat))} | distinct ${m.distinct} zStd ${m.zStd.toFixed(2)} |z| ${m.zAbs.toFixed(2)} boundStd ${m.boundStd.toFixed(2)} | grad ${gn} | ${((performance.now() - t0) / 1000).toFixed(0)} s`
    )
    lossAvg = 0
  }
}

const testClips = new DatasetClips(Dataset.open(args.data), { length: config.frames, stride: config.frames - 1 }, { filter: { split: "test" } })
const test = synthetic ? squares(64, 777) : stack(testClips, testClips.count)
const m = measure(test)
const moving = m.repeat.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]).slice(Math.floor(m.repeat.length / 2)).map(([, i]) => i)
const pick = (xs: number[]) => moving.map((i) => xs[i]!)
console.log(`test (${test.shape[0]} clips) own ${fmt(mean(m.own))} swap ${fmt(mean(m.swapped))} rep ${fmt(mean(m.repeat))} | moving half own ${fmt(mean(pick(m.own)))} swap ${fmt(mean(pick(m.swapped)))} rep ${fmt(mean(pick(m.repeat)))} | distinct ${m.distinct}`)
