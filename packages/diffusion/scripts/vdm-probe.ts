/**
 * Pretrain the mini DiT on MiniCraft clips and report its x0 error at σ = 0.2 / 1 / 3 on held-out (test
 * split) clips against repeat-the-first-frame, plus the step time. Exploration tool for the mini preset:
 *   npx node scripts/vdm-probe.ts <dataset dir> [json overrides: {"steps":300,"batch":4,"lr":2e-3,"model":{...},"objective":{...}}]
 */
import * as tf from "@tensorflow/tfjs"
import * as fs from "node:fs"
import * as path from "node:path"
import { AdamW, describeBackend, Init, selectBackend, trainStep, warmupCosine } from "@vw2/nn"
import { repeatFirstFrameError, x0Error } from "../src/DenoiseProbe.ts"
import { rectifiedFlowLoss } from "../src/Objective.ts"
import { miniFlowObjective } from "../src/RectifiedFlow.ts"
import { VideoDiT } from "../src/VideoDiT.ts"
import { miniDiT } from "../src/VideoDiTConfig.ts"

const dir = process.argv[2]!
const over = JSON.parse(process.argv[3] ?? "{}")
const steps: number = over.steps ?? 300
const batchSize: number = over.batch ?? 4
const lr: number = over.lr ?? 2e-3
const model = { ...miniDiT, control: { ...miniDiT.control, enabled: false }, ...(over.model ?? {}) }
const objective = { ...miniFlowObjective, ...(over.objective ?? {}) }
console.log(describeBackend(await selectBackend()), JSON.stringify({ steps, batchSize, lr, model, objective }))

// the episode layout read directly (frames.npy: uint8 [T, H, W, 3]), so this tool does not depend on @vw2/data's generators
const manifest = JSON.parse(fs.readFileSync(path.join(dir, "dataset.json"), "utf8")) as { height: number; width: number; splits: Record<string, string[]> }
const readFrames = (id: string): Uint8Array => {
  const buf = fs.readFileSync(path.join(dir, "episodes", id, "frames.npy"))
  const headerLen = buf.readUInt16LE(8)
  return new Uint8Array(buf.buffer, buf.byteOffset + 10 + headerLen)
}
const T = 9
const frameSize = manifest.height * manifest.width * 3
const clipsOf = (split: string, stride: number): Uint8Array[] =>
  (manifest.splits[split] ?? []).flatMap((id) => {
    const f = readFrames(id)
    const n = f.length / frameSize
    const out: Uint8Array[] = []
    for (let s = 0; s + T <= n; s += stride) out.push(f.subarray(s * frameSize, (s + T) * frameSize))
    return out
  })
const train = clipsOf("train", over.stride ?? 3)
const test = clipsOf("test", 3)
let rng = 12345
const rand = () => ((rng = (rng * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
const toModel = (clips: Uint8Array[]) =>
  tf.tidy(() => {
    const data = new Float32Array(clips.length * T * frameSize)
    clips.forEach((c, i) => c.forEach((v, j) => (data[i * T * frameSize + j] = (v / 255) * 2 - 1)))
    return tf.tensor(data, [clips.length, T, manifest.height, manifest.width, 3])
  })
const testBatch = toModel(Array.from({ length: 16 }, (_, i) => test[Math.floor((i * test.length) / 16)]!))
const batches = { next: () => ({ value: toModel(Array.from({ length: batchSize }, () => train[Math.floor(rand() * train.length)]!)) }) }
console.log(`train ${train.length} clips, test ${test.length}`)

const dit = new VideoDiT(Init.seeded(0), model)
const opt = new AdamW({ lr, beta1: 0.9, beta2: 0.99, weightDecay: over.wd ?? 0.01 })
const schedule = warmupCosine({ peakLr: lr, warmupSteps: over.warmup ?? 20, totalSteps: steps })
const probe = (label: string) => {
  const errs = [0.2, 1, 3].map((s) => x0Error(dit, testBatch, s, { objective, seed: 5 }))
  const rep = repeatFirstFrameError(testBatch)
  console.log(`${label}: x0 l1 σ=.2/1/3 ${errs.map((e) => e.l1.toFixed(4)).join(" / ")} repeat ${rep.l1.toFixed(4)} | mse ${errs.map((e) => e.mse.toFixed(5)).join(" / ")} repeat ${rep.mse.toFixed(5)}`)
}
probe("init")
const t0 = performance.now()
let sumLoss = 0
for (let step = 0; step < steps; step++) {
  const x0 = batches.next().value
  const r = trainStep({
    variables: dit.trainableVariables(),
    optimizer: opt,
    lr: schedule(step),
    clipNorm: 1,
    lossFn: () => rectifiedFlowLoss(dit, x0, undefined, undefined, { seed: step * 7 + 1, objective }).loss
  })
  x0.dispose()
  sumLoss += r.loss
  if ((step + 1) % (over.every ?? 100) === 0) {
    console.log(`step ${step + 1} loss ${(sumLoss / (over.every ?? 100)).toFixed(4)} ${((performance.now() - t0) / (step + 1)).toFixed(0)} ms/step`)
    sumLoss = 0
    probe(`step ${step + 1}`)
  }
}
console.log(`train ${((performance.now() - t0) / 1000).toFixed(1)} s`)
