/**
 * Video ↔ patch tokens over (frames × patches), and the orthonormal 3D Haar patch transform the authors'
 * encoder uses ("3D Haar patching"): a fixed, invertible change of basis of each patch vector.
 */
import * as tf from "@tensorflow/tfjs"

export interface PatchSize {
  /** frames per temporal patch */
  readonly t: number
  /** pixels per spatial patch side (square) */
  readonly s: number
}

/** Shape bookkeeping of a patchified video. */
export interface PatchGrid {
  readonly frames: number // T / pt
  readonly rows: number // H / ps
  readonly cols: number // W / ps
  readonly patchDim: number // pt·ps·ps·C
}

export function patchGrid(shape: ReadonlyArray<number>, p: PatchSize): PatchGrid {
  const [, t, h, w, c] = shape as [number, number, number, number, number]
  if (shape.length !== 5) throw new Error(`patchify: video must be [B, T, H, W, C], got [${shape.join(", ")}]`)
  if (t % p.t !== 0 || h % p.s !== 0 || w % p.s !== 0) {
    throw new Error(`patchify: [T=${t}, H=${h}, W=${w}] must be divisible by patch [t=${p.t}, s=${p.s}]`)
  }
  return { frames: t / p.t, rows: h / p.s, cols: w / p.s, patchDim: p.t * p.s * p.s * c }
}

/**
 * x [B, T, H, W, C] → [B, T/pt, (H/ps)(W/ps), pt·ps·ps·C]; the patch vector is ordered (pt, ps_y, ps_x, C),
 * tokens within a frame are row-major.
 */
export function patchify(x: tf.Tensor, p: PatchSize): tf.Tensor4D {
  return tf.tidy(() => {
    const g = patchGrid(x.shape, p)
    const [b, , , , c] = x.shape as [number, number, number, number, number]
    // [B, Tn, pt, Hn, ps, Wn, ps, C] → [B, Tn, Hn, Wn, pt, ps, ps, C]
    const r = tf.reshape(x, [b, g.frames, p.t, g.rows, p.s, g.cols, p.s, c])
    const t = tf.transpose(r, [0, 1, 3, 5, 2, 4, 6, 7])
    return tf.reshape(t, [b, g.frames, g.rows * g.cols, g.patchDim]) as tf.Tensor4D
  })
}

/** Inverse of `patchify`: [B, Tn, Hn·Wn, pt·ps·ps·C] → [B, Tn·pt, Hn·ps, Wn·ps, C]. */
export function unpatchify(tokens: tf.Tensor, p: PatchSize, grid: { rows: number; cols: number; channels: number }): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, tn, n, d] = tokens.shape as [number, number, number, number]
    if (n !== grid.rows * grid.cols || d !== p.t * p.s * p.s * grid.channels) {
      throw new Error(`unpatchify: tokens [${tokens.shape.join(", ")}] do not match grid ${grid.rows}×${grid.cols}, patch ${p.t}×${p.s}×${p.s}×${grid.channels}`)
    }
    const r = tf.reshape(tokens, [b, tn, grid.rows, grid.cols, p.t, p.s, p.s, grid.channels])
    const t = tf.transpose(r, [0, 1, 4, 2, 5, 3, 6, 7]) // [B, Tn, pt, Hn, ps, Wn, ps, C]
    return tf.reshape(t, [b, tn * p.t, grid.rows * p.s, grid.cols * p.s, grid.channels]) as tf.Tensor5D
  })
}

/** Orthonormal Haar matrix of size n (a power of two), rows = basis functions, row-major. */
export function haarMatrix(n: number): Float32Array {
  if (!Number.isInteger(n) || n < 1 || (n & (n - 1)) !== 0) throw new Error(`haarMatrix: size ${n} must be a power of two`)
  let h = new Float64Array([1])
  let m = 1
  while (m < n) {
    const next = new Float64Array(4 * m * m)
    const s = Math.SQRT1_2
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        // top half: H_m ⊗ [1, 1]; bottom half: I_m ⊗ [1, −1]
        next[i * 2 * m + 2 * j] = h[i * m + j]! * s
        next[i * 2 * m + 2 * j + 1] = h[i * m + j]! * s
      }
      next[(m + i) * 2 * m + 2 * i] = s
      next[(m + i) * 2 * m + 2 * i + 1] = -s
    }
    h = next
    m *= 2
  }
  return Float32Array.from(h)
}

function kron(a: Float32Array, an: number, b: Float32Array, bn: number): Float32Array {
  const n = an * bn
  const out = new Float32Array(n * n)
  for (let i = 0; i < an; i++)
    for (let j = 0; j < an; j++) {
      const v = a[i * an + j]!
      if (v === 0) continue
      for (let k = 0; k < bn; k++) for (let l = 0; l < bn; l++) out[(i * bn + k) * n + j * bn + l] = v * b[k * bn + l]!
    }
  return out
}

/**
 * The 3D Haar transform of a (pt, ps, ps, C) patch vector: M = H_pt ⊗ H_ps ⊗ H_ps ⊗ I_C, orthonormal, so
 * `haarForward(tokens) = tokens · Mᵀ` and its inverse is `· M`. Returned as a [D, D] matrix Mᵀ.
 */
export function haarPatchMatrix(p: PatchSize, channels: number): tf.Tensor2D {
  const eye = new Float32Array(channels * channels)
  for (let i = 0; i < channels; i++) eye[i * channels + i] = 1
  let m = kron(haarMatrix(p.t), p.t, haarMatrix(p.s), p.s)
  m = kron(m, p.t * p.s, haarMatrix(p.s), p.s)
  m = kron(m, p.t * p.s * p.s, eye, channels)
  const d = p.t * p.s * p.s * channels
  return tf.tidy(() => tf.transpose(tf.tensor2d(m, [d, d])) as tf.Tensor2D)
}

/** Orthonormal Haar along the last axis (length a power of two), O(n log n): same basis as `haarMatrix`. */
function haarLastAxis(x: tf.Tensor): tf.Tensor {
  const n = x.shape[x.rank - 1]!
  if (n === 1) return x
  const lead = x.shape.slice(0, -1)
  const pairs = tf.reshape(x, [...lead, n / 2, 2])
  const [even, odd] = tf.unstack(pairs, x.rank) as [tf.Tensor, tf.Tensor]
  const avg = tf.mul(tf.add(even, odd), Math.SQRT1_2)
  const detail = tf.mul(tf.sub(even, odd), Math.SQRT1_2)
  return tf.concat([haarLastAxis(avg), detail], -1)
}

function inverseHaarLastAxis(y: tf.Tensor): tf.Tensor {
  const n = y.shape[y.rank - 1]!
  if (n === 1) return y
  const lead = y.shape.slice(0, -1)
  const avg = inverseHaarLastAxis(tf.slice(y, [...lead.map(() => 0), 0], [...lead, n / 2]))
  const detail = tf.slice(y, [...lead.map(() => 0), n / 2], [...lead, n / 2])
  const even = tf.mul(tf.add(avg, detail), Math.SQRT1_2)
  const odd = tf.mul(tf.sub(avg, detail), Math.SQRT1_2)
  return tf.reshape(tf.stack([even, odd], y.rank), [...lead, n])
}

/** Apply `f` (a last-axis transform) along `axis` of x. */
function alongAxis(x: tf.Tensor, axis: number, f: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i)
  perm[axis] = x.rank - 1
  perm[x.rank - 1] = axis
  return tf.transpose(f(tf.transpose(x, perm)), perm) // the swap is its own inverse
}

/**
 * Fast 3D Haar of patch vectors: tokens [..., pt·ps·ps·C] (ordered (pt, ps_y, ps_x, C) as `patchify` makes
 * them) → coefficients [..., same], equal to `tokens · haarPatchMatrix(p, C)` in O(D log D) per token.
 */
export function haarPatches(tokens: tf.Tensor, p: PatchSize, channels: number): tf.Tensor {
  return tf.tidy(() => transformPatches(tokens, p, channels, haarLastAxis))
}

/** Inverse of `haarPatches`. */
export function inverseHaarPatches(coeffs: tf.Tensor, p: PatchSize, channels: number): tf.Tensor {
  return tf.tidy(() => transformPatches(coeffs, p, channels, inverseHaarLastAxis))
}

function transformPatches(x: tf.Tensor, p: PatchSize, channels: number, f: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const d = p.t * p.s * p.s * channels
  if (x.shape[x.rank - 1] !== d) throw new Error(`haar: last axis ${x.shape[x.rank - 1]} ≠ patch size ${p.t}·${p.s}·${p.s}·${channels}`)
  const lead = x.shape.slice(0, -1)
  let v = tf.reshape(x, [-1, p.t, p.s, p.s, channels])
  for (const axis of [1, 2, 3]) if (v.shape[axis]! > 1) v = alongAxis(v, axis, f)
  return tf.reshape(v, [...lead, d])
}
