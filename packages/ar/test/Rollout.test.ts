import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import type { ArArchitecture } from "../src/ArConfig.ts"
import { ArTransformer } from "../src/ArTransformer.ts"
import { Init, Rng } from "../src/internal/nn.ts"
import { type ClipDecoder, rollout } from "../src/Rollout.ts"

await tf.setBackend("cpu")

const arch: ArArchitecture = {
  dim: 16, depth: 1, heads: 2, mlpRatio: 2, patchSize: 4, historyClips: 2,
  codeVocab: 8, codesPerClip: 2, textVocab: 4, maxTextTokens: 2, height: 4, width: 4
}
const frameSize = 4 * 4 * 3

/**
 * A deterministic decoder: each next frame brightens the previous one by an amount set by the codes, so
 * every decoded clip ends on a frame that depends on its start frame and its codes.
 */
const brighteningDecoder = (framesPerClip: number, seen: Array<Float32Array>): ClipDecoder => ({
  framesPerClip,
  decode: async (start, codes) => {
    seen.push(Float32Array.from(start))
    const out = new Float32Array(framesPerClip * frameSize)
    out.set(start)
    for (let t = 1; t < framesPerClip; t++) {
      for (let i = 0; i < frameSize; i++) out[t * frameSize + i] = Math.min(1, out[(t - 1) * frameSize + i]! + 0.01 * (1 + codes[0]! + ((i + t) % 3)))
    }
    return out
  }
})

describe("long-horizon rollout", () => {
  it("starts every clip from the previous clip's last decoded frame", async () => {
    const model = new ArTransformer(Init.seeded(0), arch)
    const seen: Array<Float32Array> = []
    const initial = Float32Array.from({ length: frameSize }, (_, i) => (i % 5) / 10)
    const result = await rollout({
      model,
      decoder: brighteningDecoder(3, seen),
      text: Int32Array.from([1, 2]),
      initialFrame: initial,
      sampling: { temperature: 1, topK: 0, useKvCache: true },
      rng: new Rng(5),
      maxClips: 4,
      maxFrames: 1000,
      stopOnEos: false
    })
    const clips = result.clipCodes.length
    expect(clips).toBe(4)
    expect(result.frameCount).toBe(1 + clips * 2)
    expect([...result.startFrames[0]!]).toEqual([...initial])
    for (let k = 1; k < clips; k++) {
      // clip k−1 contributes frames 2k−1 and 2k; its last decoded frame is frame 2k of the video
      const lastOfPrevious = result.frames.subarray(2 * k * frameSize, (2 * k + 1) * frameSize)
      expect([...result.startFrames[k]!]).toEqual([...lastOfPrevious])
      expect([...seen[k]!]).toEqual([...lastOfPrevious])
      expect([...result.startFrames[k]!]).not.toEqual([...initial])
    }
    model.dispose()
  })

  it("stops at the frame budget", async () => {
    const model = new ArTransformer(Init.seeded(1), arch)
    const result = await rollout({
      model, decoder: brighteningDecoder(5, []), text: Int32Array.from([1, 0]), initialFrame: new Float32Array(frameSize),
      sampling: { temperature: 0, topK: 0, useKvCache: true }, rng: new Rng(0), maxClips: 10, maxFrames: 6, stopOnEos: false
    })
    expect(result.stoppedBy).toBe("max-frames")
    expect(result.frameCount).toBe(9)
    model.dispose()
  })
})
