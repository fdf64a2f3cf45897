/**
 * The step-state classifier of the craft judge (docs/paper.md "Evaluation": step-wise success is judged by a
 * classifier on generated frames). One MiniCraft frame of a known task → which state it shows (0..steps
 * steps completed, or `other`: no state of this task — off-trajectory, mid-action, another task, noise) and
 * where the hand is (a per-pixel hand mask: the hand-motion rule follows its tip).
 *
 * Reads top-down: Conv2d → the shared conv trunk (stride-2 stages down to 4×4) → a linear layer →
 * per-task state logits (tasks × classes, softmax within a task); two convs on the half-resolution map give
 * the hand mask at half resolution (dense labels: it learns in a few hundred steps where a pooled head would not).
 */
import * as tf from "@tensorflow/tfjs"
import { ConfigField } from "@vw2/core"
import { Initializers, Linear, Module, type InitContext, type Param } from "@vw2/nn"
import { Schema } from "effect"

const { positiveInt } = ConfigField

export const StepClassifierConfig = Schema.Struct({
  /** channels of the first conv; each stride-2 stage doubles it up to maxChannels */
  channels: positiveInt(16),
  maxChannels: positiveInt(64),
  /** width of the layer shared by the heads */
  hidden: positiveInt(128)
})
export type StepClassifierConfig = typeof StepClassifierConfig.Type

/** Everything the weights depend on: saved as the checkpoint's config.json. */
export interface StepClassifierArchitecture extends StepClassifierConfig {
  readonly height: number
  readonly width: number
  /** task names, in head order */
  readonly tasks: ReadonlyArray<string>
  /** steps of each task (same order) */
  readonly steps: ReadonlyArray<number>
}

/** Classes per task head: states 0..maxSteps, then `other`. */
export const classCount = (arch: Pick<StepClassifierArchitecture, "steps">): number => Math.max(...arch.steps) + 2
/** The `other` class index (the last one). */
export const otherClass = (arch: Pick<StepClassifierArchitecture, "steps">): number => classCount(arch) - 1

/** 3×3 (or k×k) convolution, "same" padding, with bias; He-normal weights (ReLU follows). */
export class Conv2d extends Module {
  readonly weight: Param
  readonly bias: Param
  readonly stride: number

  constructor(init: InitContext, inChannels: number, outChannels: number, options: { kernel?: number; stride?: number } = {}) {
    super(init)
    const k = options.kernel ?? 3
    this.stride = options.stride ?? 1
    this.weight = this.param("weight", [k, k, inChannels, outChannels], Initializers.normal(Math.sqrt(2 / (k * k * inChannels))))
    this.bias = this.param("bias", [outChannels], Initializers.zeros)
  }

  /** x [B, H, W, in] → [B, ceil(H / stride), ceil(W / stride), out] */
  call(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.add(tf.conv2d(x, this.weight.v as tf.Tensor4D, this.stride, "same"), this.bias.v) as tf.Tensor4D)
  }
}

export interface StepClassifierOutput {
  /** [B, tasks, classes] */
  readonly logits: tf.Tensor3D
  /** [B, ceil(H / 2), ceil(W / 2)]: hand-mask logits at half resolution */
  readonly hand: tf.Tensor3D
}

export class StepClassifier extends Module {
  readonly arch: StepClassifierArchitecture
  readonly convs: ReadonlyArray<Conv2d>
  readonly features: number
  readonly fc: Linear
  readonly states: Linear
  /** 3×3 conv + ReLU, then 1×1 conv, from the half-resolution map to the hand mask */
  readonly handConv: Conv2d
  readonly handOut: Conv2d

  constructor(init: InitContext, arch: StepClassifierArchitecture) {
    super(init)
    if (arch.tasks.length === 0 || arch.tasks.length !== arch.steps.length) throw new Error(`step classifier: ${arch.tasks.length} tasks but ${arch.steps.length} step counts`)
    this.arch = arch
    // stem at full resolution, then stride-2 stages until the map is at most 4×4 (32 px: 3 stages, 64 px: 4)
    const convs: Conv2d[] = [new Conv2d(init, 3, arch.channels)]
    let channels = arch.channels
    let h = arch.height
    let w = arch.width
    while (Math.max(h, w) > 4) {
      const next = Math.min(arch.maxChannels, channels * 2)
      convs.push(new Conv2d(init, channels, next, { stride: 2 }))
      channels = next
      h = Math.ceil(h / 2)
      w = Math.ceil(w / 2)
    }
    this.convs = this.moduleList("convs", convs)
    this.features = h * w * channels
    this.fc = this.module("fc", new Linear(init, this.features, arch.hidden))
    this.states = this.module("states", new Linear(init, arch.hidden, arch.tasks.length * classCount(arch)))
    if (convs.length < 2) throw new Error(`step classifier: frames of ${arch.height}×${arch.width} are too small (need > 4 px)`)
    this.handConv = this.module("hand_conv", new Conv2d(init, convs[1]!.weight.shape[3]!, 16))
    this.handOut = this.module("hand_out", new Conv2d(init, 16, 1, { kernel: 1 }))
  }

  /** frames [B, H, W, 3] in [0, 1] → state logits [B, tasks, classes] and fingertip [B, 2] */
  call(frames: tf.Tensor4D): StepClassifierOutput {
    const [b, h, w, c] = frames.shape
    if (h !== this.arch.height || w !== this.arch.width || c !== 3) {
      throw new Error(`step classifier: frames [${frames.shape.join(", ")}], expected [B, ${this.arch.height}, ${this.arch.width}, 3] (the judge was trained at this size; train one for the dataset's resolution)`)
    }
    return tf.tidy(() => {
      // standardise each frame (mean 0, std 1 over its pixels): a global brightness or gain change is gone before the first conv
      const { mean, variance } = tf.moments(frames, [1, 2, 3], true)
      let x: tf.Tensor4D = tf.div(tf.sub(frames, mean), tf.sqrt(tf.add(variance, 1e-4)))
      let half: tf.Tensor4D | undefined
      this.convs.forEach((conv, i) => {
        x = tf.relu(conv.call(x))
        if (i === 1) half = x
      })
      const hidden = tf.relu(this.fc.call(tf.reshape(x, [b, this.features]))) // [B, hidden]
      const logits = tf.reshape(this.states.call(hidden), [b, this.arch.tasks.length, classCount(this.arch)]) as tf.Tensor3D
      const mask = this.handOut.call(tf.relu(this.handConv.call(half!)))
      return { logits, hand: tf.reshape(mask, [b, mask.shape[1], mask.shape[2]]) as tf.Tensor3D }
    })
  }
}

/** Weight of a hand pixel against a background pixel in the mask loss. */
const HAND_PIXEL_WEIGHT = 5

/**
 * A full-resolution mask [H, W] → half resolution [ceil(H / 2), ceil(W / 2)] (into `out`): a cell is hand
 * when any of its 2×2 pixels is (a thin arm one pixel wide must not fade to half a hand).
 */
export const halfMask = (mask: ArrayLike<number>, height: number, width: number, out = new Float32Array(Math.ceil(height / 2) * Math.ceil(width / 2))): Float32Array => {
  const w2 = Math.ceil(width / 2)
  out.fill(0)
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) out[(y >> 1) * w2 + (x >> 1)] = Math.max(out[(y >> 1) * w2 + (x >> 1)]!, mask[y * width + x]!)
  return out
}

export interface ClassifierTargets {
  /** [B, tasks] int32: the class each task head should give, or −1 where it is not scored */
  readonly labels: tf.Tensor2D
  /** [B, tasks] float32 weights of each head's cross-entropy */
  readonly weights: tf.Tensor2D
  /** [B, ceil(H / 2), ceil(W / 2)] hand-mask targets in [0, 1] (halfMask) and [B] weights (0: mask unknown) */
  readonly hand: tf.Tensor3D
  readonly handWeights: tf.Tensor1D
}

/**
 * Weighted cross-entropy over every task head (the frame's own task: its state; the other heads: `other`)
 * plus the hand mask's per-pixel binary cross-entropy scaled by `handWeight`.
 */
export const classifierLoss = (model: StepClassifier, frames: tf.Tensor4D, targets: ClassifierTargets, handWeight: number): { loss: tf.Scalar; aux: Record<string, tf.Scalar> } => {
  const { logits, hand } = model.call(frames)
  const classes = classCount(model.arch)
  const logp = tf.logSoftmax(logits, -1)
  const valid = tf.cast(tf.greaterEqual(targets.labels, 0), "float32")
  const oneHot = tf.oneHot(tf.maximum(targets.labels, tf.zerosLike(targets.labels)) as tf.Tensor2D, classes) // [B, tasks, classes]
  const nll = tf.neg(tf.sum(tf.mul(logp, oneHot), -1)) // [B, tasks]
  const w = tf.mul(targets.weights, valid)
  const ce = tf.div(tf.sum(tf.mul(nll, w)), tf.maximum(tf.sum(w), 1e-6)) as tf.Scalar
  // stable BCE with logits: max(z, 0) − z·y + log(1 + e^−|z|), mean per frame
  const bce = tf.add(tf.sub(tf.relu(hand), tf.mul(hand, targets.hand)), tf.log1p(tf.exp(tf.neg(tf.abs(hand)))))
  // hand pixels are a few % of the image: weigh them up so the mask does not settle on "no hand"
  const perFrame = tf.mean(tf.mul(bce, tf.add(1, tf.mul(targets.hand, HAND_PIXEL_WEIGHT - 1))), [1, 2]) // [B]
  const handLoss = tf.div(tf.sum(tf.mul(perFrame, targets.handWeights)), tf.maximum(tf.sum(targets.handWeights), 1e-6)) as tf.Scalar
  return { loss: tf.add(ce, tf.mul(handLoss, handWeight)) as tf.Scalar, aux: { ce, hand: handLoss } }
}
