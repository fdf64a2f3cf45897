import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { classifySteps, loadOnnxModel, videoLpips } from "../src/OnnxModel.ts"
import { videoSsim } from "../src/Ssim.ts"
import { makeVideo, type RgbVideo } from "../src/Video.ts"
import { lpipsLikeWeights, writeChannelClassifier, writeLpipsLikeModel } from "./support/onnxNetworks.ts"

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "vw2-eval-"))

const noiseVideo = (frames: number, h: number, w: number, seed: number): RgbVideo => {
  let s = seed >>> 0
  const data = new Uint8Array(frames * h * w * 3)
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    data[i] = s >>> 24
  }
  return makeVideo(data, frames, h, w)
}

const solid = (frames: number, h: number, w: number, rgb: readonly [number, number, number]): RgbVideo => {
  const data = new Uint8Array(frames * h * w * 3)
  for (let p = 0; p < frames * h * w; p++) data.set(rgb, p * 3)
  return makeVideo(data, frames, h, w)
}

describe("SSIM", () => {
  it("is 1 for identical videos and lower for unrelated ones", () => {
    const a = noiseVideo(3, 16, 16, 1)
    expect(videoSsim(a, a)).toBeCloseTo(1, 10)
    const b = noiseVideo(3, 16, 16, 2)
    expect(videoSsim(a, b)).toBeLessThan(0.2)
  })

  it("rejects videos of different frame sizes", () => {
    expect(() => videoSsim(noiseVideo(1, 8, 8, 1), noiseVideo(1, 8, 12, 1))).toThrow(/equal frame sizes/)
  })
})

describe("LPIPS through onnxruntime", () => {
  it("is unavailable without a model file, naming the config path", async () => {
    const none = await loadOnnxModel(undefined, "eval.lpipsModel")
    expect(none).toEqual({ _tag: "unavailable", reason: "no model file given (set eval.lpipsModel)" })
    const missing = await loadOnnxModel("/nonexistent/lpips.onnx", "eval.lpipsModel")
    expect(missing._tag).toBe("unavailable")
    if (missing._tag === "unavailable") expect(missing.reason).toMatch(/eval\.lpipsModel: file not found/)
  })

  it("runs a test-built network: 0 on identical videos, the hand-computed value otherwise", async () => {
    const file = path.join(tmp(), "lpips.onnx")
    writeLpipsLikeModel(file, 8, 8)
    const loaded = await loadOnnxModel(file, "eval.lpipsModel")
    if (loaded._tag !== "available") throw new Error(loaded.reason)
    const a = noiseVideo(2, 8, 8, 3)
    expect(await videoLpips(loaded.value, a, a)).toBeCloseTo(0, 6)
    // solid colours: each feature is constant, so the distance is the mean of two squared differences
    const red = solid(1, 8, 8, [255, 0, 0])
    const blue = solid(1, 8, 8, [0, 0, 255])
    const signedDiff = [2, 0, -2] // red − blue in [-1, 1] space per channel
    const [w0, w1, w2, v0, v1, v2] = lpipsLikeWeights
    const f1 = w0 * signedDiff[0]! + w1 * signedDiff[1]! + w2 * signedDiff[2]!
    const f2 = v0 * signedDiff[0]! + v1 * signedDiff[1]! + v2 * signedDiff[2]!
    expect(await videoLpips(loaded.value, red, blue)).toBeCloseTo((f1 * f1 + f2 * f2) / 2, 5)
    // frames of another size are resized to the model's static 8×8 input
    expect(await videoLpips(loaded.value, solid(1, 4, 4, [255, 0, 0]), solid(1, 4, 4, [0, 0, 255]))).toBeCloseTo((f1 * f1 + f2 * f2) / 2, 5)
    await loaded.value.release()
  })
})

describe("step classifier through onnxruntime", () => {
  it("returns the argmax class per frame", async () => {
    const file = path.join(tmp(), "classifier.onnx")
    writeChannelClassifier(file)
    const loaded = await loadOnnxModel(file, "eval.stepClassifierModel")
    if (loaded._tag !== "available") throw new Error(loaded.reason)
    const frames = new Uint8Array([...solid(1, 4, 4, [200, 10, 10]).data, ...solid(1, 4, 4, [0, 0, 90]).data, ...solid(1, 4, 4, [5, 60, 0]).data])
    expect(await classifySteps(loaded.value, makeVideo(frames, 3, 4, 4))).toEqual([0, 2, 1])
    await loaded.value.release()
  })
})
