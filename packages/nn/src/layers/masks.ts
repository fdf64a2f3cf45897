/**
 * Boolean attention masks, `true` = may attend. Shape [Lq, Lk] (broadcast over batch and heads) or
 * [B, Lq, Lk]. Rows with no allowed key produce a zero attention output (not a uniform average).
 */
import * as tf from "@tensorflow/tfjs"

/** Mask from a predicate over (query index, key index). */
export function maskFrom(lq: number, lk: number, allow: (q: number, k: number) => boolean): tf.Tensor2D {
  const data = new Uint8Array(lq * lk)
  for (let q = 0; q < lq; q++) for (let k = 0; k < lk; k++) data[q * lk + k] = allow(q, k) ? 1 : 0
  return tf.tensor2d(data, [lq, lk], "bool")
}

/** Token q sees tokens k ≤ q. */
export function causalMask(length: number): tf.Tensor2D {
  return maskFrom(length, length, (q, k) => k <= q)
}

/** Tokens grouped into consecutive blocks of `blockSize`; a token sees every token of its own and earlier blocks. */
export function blockCausalMask(numBlocks: number, blockSize: number): tf.Tensor2D {
  const n = numBlocks * blockSize
  return maskFrom(n, n, (q, k) => Math.floor(k / blockSize) <= Math.floor(q / blockSize))
}

/**
 * General block rule: query token q belongs to block `queryBlock[q]`, key token k to `keyBlock[k]`;
 * `allow(qb, kb)` decides. Example: decoder latent frame i sees codes of transitions ≤ i−1:
 * `blockMask(frameOfToken, transitionOfCode, (i, j) => j <= i - 1)`.
 */
export function blockMask(
  queryBlock: ReadonlyArray<number>,
  keyBlock: ReadonlyArray<number>,
  allow: (qb: number, kb: number) => boolean
): tf.Tensor2D {
  return maskFrom(queryBlock.length, keyBlock.length, (q, k) => allow(queryBlock[q]!, keyBlock[k]!))
}

/** [0,0,..,1,1,..] : block id of each of `numBlocks·blockSize` tokens. */
export function blockIds(numBlocks: number, blockSize: number): number[] {
  return Array.from({ length: numBlocks * blockSize }, (_, i) => Math.floor(i / blockSize))
}
