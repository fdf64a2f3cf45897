import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { type ArArchitecture, outputVocab, specialTokens } from "../src/ArConfig.ts"
import { ArTransformer } from "../src/ArTransformer.ts"
import { type CodeEpisode, historyStream, streamExample } from "../src/CodeStream.ts"
import { trainStep } from "@vw2/nn"
import { AdamW, Init, Rng } from "../src/internal/nn.ts"
import { sampleClip } from "../src/Sampler.ts"
import { type ArBatch, batchLoss } from "../src/Train.ts"

await tf.setBackend("cpu")

const arch: ArArchitecture = {
  dim: 32, depth: 2, heads: 4, mlpRatio: 2, patchSize: 4, historyClips: 1,
  codeVocab: 16, codesPerClip: 4, textVocab: 6, maxTextTokens: 3, height: 8, width: 8
}
const streamLength = 1 + (arch.historyClips + 1) * (arch.codesPerClip + 1)

const frameOf = (seed: number) => Float32Array.from({ length: arch.height * arch.width * 3 }, (_, i) => ((i * 7 + seed * 13) % 17) / 17)

const episode: CodeEpisode = { id: "e0", task: "t", instruction: "fold", codes: Int32Array.from([3, 1, 4, 1, 5, 9, 2, 6]), clips: 2 }

const batchOf = (examples: ReadonlyArray<{ k: number; frameSeed: number }>): ArBatch => {
  const text = new Int32Array(examples.length * arch.maxTextTokens)
  const frames = new Float32Array(examples.length * arch.height * arch.width * 3)
  const stream = new Int32Array(examples.length * streamLength)
  const targets = new Int32Array(examples.length * streamLength)
  examples.forEach(({ k, frameSeed }, b) => {
    text.set([2, 3, 0], b * arch.maxTextTokens)
    frames.set(frameOf(frameSeed), b * frames.length / examples.length)
    const ex = streamExample(episode, k, { codesPerClip: arch.codesPerClip, historyClips: arch.historyClips, codeVocab: arch.codeVocab, length: streamLength })
    stream.set(ex.stream, b * streamLength)
    targets.set(ex.targets, b * streamLength)
  })
  return { text, frames, stream, targets, batch: examples.length, streamLength }
}

const train = (model: ArTransformer, batch: ArBatch, steps: number) => {
  const optimizer = new AdamW({ lr: 3e-3, beta2: 0.98, weightDecay: 0 })
  const losses: Array<number> = []
  for (let i = 0; i < steps; i++) losses.push(trainStep({ variables: model.trainableVariables(), optimizer, lossFn: () => batchLoss(model, batch) }).loss)
  optimizer.dispose()
  return losses
}

describe("AR transformer", () => {
  it("gives logits of shape [B, S, codes + 3]", () => {
    const model = new ArTransformer(Init.seeded(0), arch)
    const b = batchOf([{ k: 0, frameSeed: 0 }, { k: 1, frameSeed: 1 }])
    const logits = model.call({
      text: tf.tensor2d(b.text, [2, arch.maxTextTokens], "int32"),
      frame: tf.tensor4d(b.frames, [2, arch.height, arch.width, 3]),
      stream: tf.tensor2d(b.stream, [2, streamLength], "int32")
    })
    expect(logits.shape).toEqual([2, streamLength, outputVocab(arch.codeVocab)])
    tf.dispose(logits)
    model.dispose()
  })

  it("next-code loss falls on a fixed batch, and greedy sampling reproduces the memorised codes", () => {
    const model = new ArTransformer(Init.seeded(1), arch)
    const batch = batchOf([{ k: 0, frameSeed: 0 }, { k: 1, frameSeed: 1 }])
    const losses = train(model, batch, 60)
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! * 0.1)
    const t = specialTokens(arch.codeVocab)
    const greedy = { temperature: 0, topK: 0, useKvCache: true }
    const first = sampleClip(model, { text: Int32Array.from([2, 3, 0]), frame: frameOf(0), stream: [t.BOS] }, greedy, new Rng(0))
    expect([...first.codes]).toEqual([3, 1, 4, 1])
    expect(first.done).toBe(false)
    const second = sampleClip(model, { text: Int32Array.from([2, 3, 0]), frame: frameOf(1), stream: historyStream(first.codes, 4, 1, 1, arch.codeVocab) }, greedy, new Rng(0))
    expect([...second.codes]).toEqual([5, 9, 2, 6])
    expect(second.done).toBe(true)
    model.dispose()
  })

  it("is causal: changing a later stream token leaves earlier logits unchanged", () => {
    const model = new ArTransformer(Init.seeded(2), arch)
    const b = batchOf([{ k: 1, frameSeed: 0 }])
    const run = (stream: Int32Array) =>
      tf.tidy(() => model.call({ text: tf.tensor2d(b.text, [1, 3], "int32"), frame: tf.tensor4d(b.frames, [1, 8, 8, 3]), stream: tf.tensor2d(stream, [1, streamLength], "int32") }).arraySync())[0]!
    const changed = Int32Array.from(b.stream)
    changed[6] = (changed[6]! + 5) % arch.codeVocab
    const a = run(b.stream)
    const c = run(changed)
    for (let i = 0; i < 6; i++) expect(c[i]).toEqual(a[i])
    expect(c[6]).not.toEqual(a[6])
    model.dispose()
  })

  it("KV-cache sampling equals full recomputation, token for token", () => {
    const model = new ArTransformer(Init.seeded(3), arch)
    const t = specialTokens(arch.codeVocab)
    const context = { text: Int32Array.from([1, 4, 5]), frame: frameOf(3), stream: [t.BOS, 7, 7, 2, 9, t.NEXT] }
    for (const temperature of [0, 1.5]) {
      const cached = sampleClip(model, context, { temperature, topK: 5, useKvCache: true }, new Rng(11))
      const full = sampleClip(model, context, { temperature, topK: 5, useKvCache: false }, new Rng(11))
      expect([...cached.codes]).toEqual([...full.codes])
      expect(cached.done).toBe(full.done)
    }
    model.dispose()
  })

  it("does not leak tensors across a training step", () => {
    const model = new ArTransformer(Init.seeded(4), arch)
    const batch = batchOf([{ k: 0, frameSeed: 0 }])
    const optimizer = new AdamW({ lr: 1e-3 })
    const step = () => trainStep({ variables: model.trainableVariables(), optimizer, lossFn: () => batchLoss(model, batch) })
    step()
    const before = tf.memory().numTensors
    step()
    expect(tf.memory().numTensors).toBe(before)
    optimizer.dispose()
    model.dispose()
  })
})
