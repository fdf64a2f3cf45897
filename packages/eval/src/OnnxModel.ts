/**
 * Perceptual metrics that need a learned network (LPIPS, the paper's step classifier) run through
 * onnxruntime-node from a model file the user supplies by config path. Nothing is downloaded and nothing
 * is substituted: without a file the metric is `unavailable`.
 *
 * Contracts (documented in docs/experiments.md):
 * - LPIPS model: two float32 inputs `[B, 3, H, W]` in [-1, 1] (reference, generated, in the model's input
 *   order); first output holds one distance per sample (`[B]`, `[B,1]` or `[B,1,1,1]`). Frames are resized
 *   bilinearly to the model's static H, W when it declares them.
 * - Step classifier: one float32 input `[B, 3, H, W]` in [0, 1]; first output `[B, K]` logits over
 *   "number of completed steps" 0..K−1.
 */
import * as fs from "node:fs"
import * as ort from "onnxruntime-node"
import { type Availability, available, unavailable } from "./Availability.ts"
import { frameAt, type RgbVideo } from "./Video.ts"

export interface OnnxImageModel {
  readonly path: string
  readonly session: ort.InferenceSession
  /** static [height, width] of the first input, if the model fixes it */
  readonly inputSize: readonly [number, number] | undefined
  readonly release: () => Promise<void>
}

const staticSize = (session: ort.InferenceSession): readonly [number, number] | undefined => {
  const meta = session.inputMetadata[0]
  if (meta === undefined || !meta.isTensor || meta.shape.length !== 4) return undefined
  const h = meta.shape[2]
  const w = meta.shape[3]
  return typeof h === "number" && typeof w === "number" && h > 0 && w > 0 ? [h, w] : undefined
}

/** Load a user-supplied ONNX file; `configPath` names the config key in errors ("eval.lpipsModel"). */
export const loadOnnxModel = async (
  path: string | undefined,
  configPath: string
): Promise<Availability<OnnxImageModel>> => {
  if (path === undefined || path === "") return unavailable(`no model file given (set ${configPath})`)
  if (!fs.existsSync(path)) return unavailable(`${configPath}: file not found: ${path}`)
  try {
    const session = await ort.InferenceSession.create(path)
    return available({ path, session, inputSize: staticSize(session), release: () => session.release() })
  } catch (e) {
    return unavailable(`${configPath}: cannot load ONNX model ${path}: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/** One RGB uint8 frame [H, W, 3] → float32 CHW, bilinearly resized, mapped by `scale`. */
export const frameToChw = (
  rgb: Uint8Array,
  height: number,
  width: number,
  outHeight: number,
  outWidth: number,
  scale: (byte: number) => number
): Float32Array => {
  const out = new Float32Array(3 * outHeight * outWidth)
  for (let y = 0; y < outHeight; y++) {
    // align-corners=false sampling, as torch's F.interpolate(mode="bilinear")
    const sy = Math.min(height - 1, Math.max(0, ((y + 0.5) * height) / outHeight - 0.5))
    const y0 = Math.floor(sy)
    const y1 = Math.min(height - 1, y0 + 1)
    const fy = sy - y0
    for (let x = 0; x < outWidth; x++) {
      const sx = Math.min(width - 1, Math.max(0, ((x + 0.5) * width) / outWidth - 0.5))
      const x0 = Math.floor(sx)
      const x1 = Math.min(width - 1, x0 + 1)
      const fx = sx - x0
      for (let c = 0; c < 3; c++) {
        const v00 = rgb[(y0 * width + x0) * 3 + c]!
        const v01 = rgb[(y0 * width + x1) * 3 + c]!
        const v10 = rgb[(y1 * width + x0) * 3 + c]!
        const v11 = rgb[(y1 * width + x1) * 3 + c]!
        const v = (v00 * (1 - fx) + v01 * fx) * (1 - fy) + (v10 * (1 - fx) + v11 * fx) * fy
        out[c * outHeight * outWidth + y * outWidth + x] = scale(v)
      }
    }
  }
  return out
}

const toSigned = (b: number) => (b / 255) * 2 - 1
const toUnit = (b: number) => b / 255

const batchTensor = (video: RgbVideo, indices: ReadonlyArray<number>, size: readonly [number, number], scale: (b: number) => number) => {
  const [h, w] = size
  const data = new Float32Array(indices.length * 3 * h * w)
  indices.forEach((t, i) => data.set(frameToChw(frameAt(video, t), video.height, video.width, h, w, scale), i * 3 * h * w))
  return new ort.Tensor("float32", data, [indices.length, 3, h, w])
}

const numbers = (tensor: ort.Tensor): ReadonlyArray<number> => Array.from(tensor.data as Float32Array, Number)

/** Mean LPIPS over the common frames of two videos (lower is closer). */
export const videoLpips = async (model: OnnxImageModel, reference: RgbVideo, generated: RgbVideo): Promise<number> => {
  if (model.session.inputNames.length < 2) throw new Error(`LPIPS model ${model.path} must take two image inputs, it takes ${model.session.inputNames.length}`)
  const n = Math.min(reference.frames, generated.frames)
  if (n === 0) throw new Error("LPIPS of an empty video is undefined")
  const size = model.inputSize ?? [reference.height, reference.width]
  const [nameA, nameB] = model.session.inputNames as [string, string]
  let total = 0
  for (let t = 0; t < n; t++) {
    const out = await model.session.run({
      [nameA]: batchTensor(reference, [t], size, toSigned),
      [nameB]: batchTensor(generated, [t], size, toSigned)
    })
    const first = out[model.session.outputNames[0]!]!
    const values = numbers(first)
    if (values.length !== 1) throw new Error(`LPIPS model ${model.path} returned ${values.length} values for one frame pair; expected 1`)
    total += values[0]!
  }
  return total / n
}

/** The classifier's predicted number of completed steps for each frame of a video. */
export const classifySteps = async (model: OnnxImageModel, video: RgbVideo): Promise<ReadonlyArray<number>> => {
  const size = model.inputSize ?? [video.height, video.width]
  const name = model.session.inputNames[0]!
  const result: Array<number> = []
  for (let t = 0; t < video.frames; t++) {
    const out = await model.session.run({ [name]: batchTensor(video, [t], size, toUnit) })
    const logits = numbers(out[model.session.outputNames[0]!]!)
    let best = 0
    for (let k = 1; k < logits.length; k++) if (logits[k]! > logits[best]!) best = k
    result.push(best)
  }
  return result
}
