/**
 * Finite Scalar Quantization (Mentzer et al. 2023) exactly as in the VideoWorld 2 release:
 *   half = (L−1)(1+1e−3)/2, offset = 0.5 if L even else 0, shift = atanh(offset/half),
 *   bounded = tanh(z + shift)·half − offset, q = round_ste(bounded), codes = q / (L // 2);
 *   index = Σ (codes·(L//2) + L//2)·basis, basis = exclusive cumprod(levels) (e.g. [1, 8, 40, 200]).
 * No commitment loss.
 */
import * as tf from "@tensorflow/tfjs"
import { stopGradient } from "./ops.ts"

/** round(x) forward, identity gradient backward (straight-through estimator). */
export function roundSte<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.add(x, stopGradient(tf.sub(tf.round(x), x))) as T)
}

export class FSQ {
  readonly levels: ReadonlyArray<number>
  readonly dim: number
  readonly codebookSize: number
  /** exclusive cumulative product of levels */
  readonly basis: number[]
  private readonly halfWidth: number[]
  private readonly eps: number

  constructor(levels: ReadonlyArray<number>, eps = 1e-3) {
    if (levels.length === 0 || levels.some((l) => !Number.isInteger(l) || l < 2)) {
      throw new Error(`FSQ: levels must be integers ≥ 2, got [${levels.join(", ")}]`)
    }
    this.levels = [...levels]
    this.dim = levels.length
    this.eps = eps
    this.codebookSize = levels.reduce((a, b) => a * b, 1)
    const basis: number[] = []
    let acc = 1
    for (const l of levels) {
      basis.push(acc)
      acc *= l
    }
    this.basis = basis
    this.halfWidth = levels.map((l) => Math.floor(l / 2))
  }

  /** z [..., dim] → bounded values in (−L/2, L/2) (before rounding). */
  bound(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      this.checkLastAxis(z)
      const half = this.levels.map((l) => ((l - 1) * (1 + this.eps)) / 2)
      const offset = this.levels.map((l) => (l % 2 === 0 ? 0.5 : 0))
      const shift = offset.map((o, i) => Math.atanh(o / half[i]!))
      return tf.sub(tf.mul(tf.tanh(tf.add(z, tf.tensor1d(shift))), tf.tensor1d(half)), tf.tensor1d(offset))
    })
  }

  /** z [..., dim] → quantized codes [..., dim] on the normalised grid (straight-through gradient). */
  quantize(z: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.div(roundSte(this.bound(z)), tf.tensor1d(this.halfWidth)))
  }

  /** codes [..., dim] → int32 indices [...] in [0, codebookSize). */
  codesToIndices(codes: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      this.checkLastAxis(codes)
      const hw = tf.tensor1d(this.halfWidth)
      const digits = tf.round(tf.add(tf.mul(codes, hw), hw)) // [..., dim] in [0, L)
      return tf.cast(tf.sum(tf.mul(digits, tf.tensor1d(this.basis)), -1), "int32")
    })
  }

  /** int32 indices [...] → codes [..., dim]. */
  indicesToCodes(indices: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const idx = tf.expandDims(tf.cast(indices, "int32"), -1) // [..., 1]
      const digits = tf.mod(tf.floorDiv(idx, tf.tensor1d(this.basis, "int32")), tf.tensor1d([...this.levels], "int32"))
      const hw = tf.tensor1d(this.halfWidth)
      return tf.div(tf.sub(tf.cast(digits, "float32"), hw), hw)
    })
  }

  private checkLastAxis(x: tf.Tensor): void {
    if (x.shape[x.rank - 1] !== this.dim) {
      throw new Error(`FSQ: last axis ${x.shape[x.rank - 1]} must equal the number of levels ${this.dim} ([${this.levels.join(", ")}])`)
    }
  }
}
