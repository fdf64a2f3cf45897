/**
 * 3D rotary position embedding of the Cosmos-Predict2 DiT ("rope3d"): each head's channels are split into
 * (frames, rows, cols) bands of widths (hd − 2·⌊hd/6⌋·2, ⌊hd/6⌋·2, ⌊hd/6⌋·2); each band rotates channel pairs
 * (i, i + hd/2) by position × θ_axis^(−2k/d_axis) (NeoX "rotate-half" layout), θ_axis = 10000 ·
 * ratio^(d/(d−2)) (NTK extrapolation). Query–key products then depend only on relative positions.
 */
import * as tf from "@tensorflow/tfjs"

export interface Rope3DOptions {
  /** NTK extrapolation ratios per axis (Cosmos rope_{t,h,w}_extrapolation_ratio) */
  readonly extrapolation: { readonly t: number; readonly h: number; readonly w: number }
  /** temporal positions are multiplied by this (Cosmos fps modulation: base_fps / fps) */
  readonly temporalScale: number
}

export interface RopeAngles {
  /** [N, hd/2] */
  readonly cos: tf.Tensor2D
  readonly sin: tf.Tensor2D
}

export const ropeBands = (headDim: number): { t: number; h: number; w: number } => {
  const h = Math.floor(headDim / 6) * 2
  const t = headDim - 2 * h
  if (h < 2 || t < 2 || t % 2 !== 0) throw new Error(`rope3d: head width ${headDim} cannot be split into even (t, h, w) bands`)
  return { t, h, w: h }
}

/** Angles for the Tn × rows × cols token grid (row-major tokens within a frame, frames outermost). */
export const rope3dAngles = (frames: number, rows: number, cols: number, headDim: number, o: Rope3DOptions): RopeAngles => {
  const bands = ropeBands(headDim)
  const freqs = (d: number, ratio: number) => {
    const theta = 10000 * ratio ** (d / (d - 2))
    return Array.from({ length: d / 2 }, (_, k) => 1 / theta ** ((2 * k) / d))
  }
  const ft = freqs(bands.t, o.extrapolation.t)
  const fh = freqs(bands.h, o.extrapolation.h)
  const fw = freqs(bands.w, o.extrapolation.w)
  const half = headDim / 2
  const n = frames * rows * cols
  const cos = new Float32Array(n * half)
  const sin = new Float32Array(n * half)
  for (let i = 0; i < n; i++) {
    const f = Math.floor(i / (rows * cols)) * o.temporalScale
    const r = Math.floor(i / cols) % rows
    const c = i % cols
    const angles = [...ft.map((x) => f * x), ...fh.map((x) => r * x), ...fw.map((x) => c * x)]
    angles.forEach((a, k) => {
      cos[i * half + k] = Math.cos(a)
      sin[i * half + k] = Math.sin(a)
    })
  }
  return { cos: tf.tensor2d(cos, [n, half]), sin: tf.tensor2d(sin, [n, half]) }
}

/** x [B, H, N, hd] rotated: first half x1·cos − x2·sin, second half x1·sin + x2·cos. */
export const applyRope = (x: tf.Tensor4D, angles: RopeAngles): tf.Tensor4D =>
  tf.tidy(() => {
    const half = x.shape[3] / 2
    const x1 = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, half])
    const x2 = tf.slice(x, [0, 0, 0, half], [-1, -1, -1, half])
    const { cos, sin } = angles
    return tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x1, sin), tf.mul(x2, cos))], 3) as tf.Tensor4D
  })
