/**
 * Conv U-Net low-fidelity decoder (ours; `decoder.kind: "conv-unet"`, see docs/paper.md "dLDM"): for each
 * transition j it renders the tc frames of latent frame j+1 from the PREVIOUS frame x_{tc·j}, FiLM-conditioned
 * at every level on that transition's N codes, with a gated copy output
 *   x̂ = g·x_prev + (1 − g)·rgb        (g = 1 − sigmoid(gate); or x̂ = x_prev + residual)
 * so static pixels are copied exactly and the codes only have to say what moves. Measured in the PyTorch
 * reference (../NOTES-collapse.md, issue 13): the authors' token decoder at mini widths ignores its codes,
 * this decoder reads them. Causality holds by construction: transition j sees codes of transition j only and
 * a frame ≤ tc·j.
 *
 * Axis legend (NHWC): M = B·J decoded transitions, H, W pixels, C channels, Z = N·levels code values.
 */
import * as tf from "@tensorflow/tfjs"
import { Initializers, Linear, Module, type InitContext, type Param } from "@vw2/nn"

/** 2D convolution, NHWC, "same" padding; weight [k, k, in, out]. */
export class Conv2d extends Module {
  readonly weight: Param
  readonly bias: Param
  readonly stride: number

  constructor(init: InitContext, inChannels: number, outChannels: number, kernel: number, o: { stride?: number; zeroInit?: boolean } = {}) {
    super(init)
    this.stride = o.stride ?? 1
    const w = o.zeroInit === true ? Initializers.zeros : Initializers.normal(1 / Math.sqrt(kernel * kernel * inChannels))
    this.weight = this.param("weight", [kernel, kernel, inChannels, outChannels], w)
    this.bias = this.param("bias", [outChannels], Initializers.zeros)
  }

  /** x [M, H, W, Cin] → [M, H/stride, W/stride, Cout] */
  call(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.add(tf.conv2d(x, this.weight.v as tf.Tensor4D, this.stride, "same"), this.bias.v) as tf.Tensor4D)
  }
}

/** GroupNorm over (H, W, channels of a group), with a per-channel affine. */
export class GroupNorm extends Module {
  readonly groups: number
  readonly weight: Param
  readonly bias: Param

  constructor(init: InitContext, channels: number, groups: number) {
    super(init)
    if (channels % groups !== 0) throw new Error(`GroupNorm: ${channels} channels not divisible by ${groups} groups`)
    this.groups = groups
    this.weight = this.param("weight", [channels], Initializers.ones)
    this.bias = this.param("bias", [channels], Initializers.zeros)
  }

  call(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [m, h, w, c] = x.shape
      const g = tf.reshape(x, [m, h, w, this.groups, c / this.groups]) // split channels into groups
      const { mean, variance } = tf.moments(g, [1, 2, 4], true)
      const y = tf.reshape(tf.mul(tf.sub(g, mean), tf.rsqrt(tf.add(variance, 1e-5))), [m, h, w, c])
      return tf.add(tf.mul(y, this.weight.v), this.bias.v) as tf.Tensor4D
    })
  }
}

/** conv → GN → FiLM(z) → SiLU, then a residual conv → GN → SiLU; optional ×2 nearest up-sampling first. */
export class FiLMBlock extends Module {
  readonly conv: Conv2d
  readonly norm: GroupNorm
  readonly film: Linear
  readonly conv2: Conv2d
  readonly norm2: GroupNorm
  readonly up: boolean

  constructor(init: InitContext, o: { inChannels: number; outChannels: number; codeDim: number; groups: number; down?: boolean; up?: boolean }) {
    super(init)
    this.up = o.up ?? false
    const down = o.down ?? false
    this.conv = this.module("conv", new Conv2d(init, o.inChannels, o.outChannels, down ? 4 : 3, { stride: down ? 2 : 1 }))
    this.norm = this.module("norm", new GroupNorm(init, o.outChannels, o.groups))
    this.film = this.module("film", new Linear(init, o.codeDim, 2 * o.outChannels))
    this.conv2 = this.module("conv2", new Conv2d(init, o.outChannels, o.outChannels, 3))
    this.norm2 = this.module("norm2", new GroupNorm(init, o.outChannels, o.groups))
  }

  /** x [M, H, W, Cin], z [M, Z] → [M, H', W', Cout] */
  call(x: tf.Tensor4D, z: tf.Tensor2D): tf.Tensor4D {
    return tf.tidy(() => {
      let input = x
      if (this.up) input = tf.image.resizeNearestNeighbor(x, [x.shape[1] * 2, x.shape[2] * 2])
      const h0 = this.norm.call(this.conv.call(input))
      const c = h0.shape[3]
      const film = this.film.call(z) // [M, 2·Cout]: scale, shift
      const scale = tf.reshape(tf.slice(film, [0, 0], [-1, c]), [-1, 1, 1, c])
      const shift = tf.reshape(tf.slice(film, [0, c], [-1, c]), [-1, 1, 1, c])
      const h = silu(tf.add(tf.mul(h0, tf.add(scale, 1)), shift)) as tf.Tensor4D
      return tf.add(silu(this.norm2.call(this.conv2.call(h))), h) as tf.Tensor4D
    })
  }
}

export interface ConvUNetOptions {
  readonly height: number
  readonly width: number
  /** frames rendered per transition (temporalCompression) */
  readonly framesPerTransition: number
  /** N·levels: the flattened code vector of one transition */
  readonly codeDim: number
  /** base channels; level i has channels·min(2^i, 4) */
  readonly channels: number
  /** down-sampling levels (each halves H and W) */
  readonly levels: number
  readonly output: "gated" | "residual"
}

export class ConvUNetDecoder extends Module {
  readonly o: ConvUNetOptions
  readonly inp: FiLMBlock
  readonly downs: ReadonlyArray<FiLMBlock>
  readonly mid: FiLMBlock
  readonly ups: ReadonlyArray<FiLMBlock>
  readonly out: Conv2d

  constructor(init: InitContext, o: ConvUNetOptions) {
    super(init)
    this.o = o
    const div = 2 ** o.levels
    if (o.height % div !== 0 || o.width % div !== 0) {
      throw new Error(`conv-unet decoder: ${o.levels} levels need height and width divisible by ${div}, got ${o.height}×${o.width}`)
    }
    const ch = (i: number) => o.channels * Math.min(2 ** i, 4)
    const block = (inC: number, outC: number, extra: { down?: boolean; up?: boolean } = {}) =>
      new FiLMBlock(init, { inChannels: inC, outChannels: outC, codeDim: o.codeDim, groups: gcdGroups(outC), ...extra })
    this.inp = this.module("inp", block(3, ch(0)))
    this.downs = this.moduleList("down", Array.from({ length: o.levels }, (_, i) => block(ch(i), ch(i + 1), { down: true })))
    this.mid = this.module("mid", block(ch(o.levels), ch(o.levels)))
    // up i: from level L−i to L−i−1, input = current ⊕ skip of level L−i
    this.ups = this.moduleList(
      "up",
      Array.from({ length: o.levels }, (_, i) => block(ch(o.levels - i) * 2, ch(o.levels - i - 1), { up: true }))
    )
    const perFrame = o.output === "gated" ? 4 : 3
    this.out = this.module("out", new Conv2d(init, ch(0) * 2, perFrame * o.framesPerTransition, 3, { zeroInit: true }))
    if (o.output === "gated" && !init.meta) {
      // start as an exact copy of the previous frame: gate logit −4 (content weight sigmoid(−4) ≈ 0.02)
      const bias = new Float32Array(perFrame * o.framesPerTransition)
      for (let f = 0; f < o.framesPerTransition; f++) bias[f * perFrame] = -4
      tf.tidy(() => this.out.bias.v.assign(tf.tensor1d(bias))) // tidy: the tensor1d is a temporary
    }
  }

  /** prev [M, H, W, 3] in [0, 1], z [M, Z] → next tc frames [M, tc, H, W, 3] (in [0, 1] when gated) */
  call(prev: tf.Tensor4D, z: tf.Tensor2D): tf.Tensor5D {
    return tf.tidy(() => {
      const [m, h, w] = prev.shape
      const tc = this.o.framesPerTransition
      let x = this.inp.call(tf.sub(tf.mul(prev, 2), 1) as tf.Tensor4D, z)
      const skips: tf.Tensor4D[] = [x]
      for (const d of this.downs) {
        x = d.call(x, z)
        skips.push(x)
      }
      x = this.mid.call(x, z)
      this.ups.forEach((u, i) => {
        x = u.call(tf.concat([x, skips[skips.length - 1 - i]!], 3) as tf.Tensor4D, z)
      })
      const raw = this.out.call(tf.concat([x, skips[0]!], 3) as tf.Tensor4D) // [M, H, W, tc·(4|3)]
      const prev5 = tf.expandDims(prev, 1) // [M, 1, H, W, 3]
      if (this.o.output === "residual") {
        const res = tf.transpose(tf.reshape(raw, [m, h, w, tc, 3]), [0, 3, 1, 2, 4]) // [M, tc, H, W, 3]
        return tf.add(prev5, res) as tf.Tensor5D
      }
      const o5 = tf.transpose(tf.reshape(raw, [m, h, w, tc, 4]), [0, 3, 1, 2, 4]) // [M, tc, H, W, gate+rgb]
      const content = tf.sigmoid(tf.mul(tf.slice(o5, [0, 0, 0, 0, 1], [-1, -1, -1, -1, 3]), 2))
      const mix = tf.sigmoid(tf.slice(o5, [0, 0, 0, 0, 0], [-1, -1, -1, -1, 1])) // weight of the new content
      return tf.add(tf.mul(tf.sub(1, mix), prev5), tf.mul(mix, content)) as tf.Tensor5D
    })
  }
}

const silu = (x: tf.Tensor): tf.Tensor => tf.mul(x, tf.sigmoid(x))

/** GroupNorm groups: 8 when the channels allow, else the largest divisor ≤ 8. */
function gcdGroups(c: number): number {
  for (let g = 8; g >= 1; g--) if (c % g === 0) return g
  return 1
}
