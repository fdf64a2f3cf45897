/**
 * Sampling one clip's codes from the AR transformer: temperature, top-k, a KV cache (default) or full
 * recomputation at every token (the reference the cache is tested against). The stream grammar is
 * enforced while sampling: the clip's `codesPerClip` positions draw only FSQ codes, the position after
 * them draws only NEXT or EOS.
 */
import * as tf from "@tensorflow/tfjs"
import { specialTokens } from "./ArConfig.ts"
import { type ArTransformer, disposeCache, type KvCache } from "./ArTransformer.ts"
import type { Rng } from "./internal/nn.ts"

export interface SamplingOptions {
  /** 0 = greedy (argmax) */
  readonly temperature: number
  /** keep only the k most likely tokens (0 = all) */
  readonly topK: number
  readonly useKvCache: boolean
}

export interface SampledClip {
  readonly codes: Int32Array
  /** true when the model closed the clip with EOS (task done) */
  readonly done: boolean
}

/** Draw one token from `logits` restricted to [lo, hi). */
export const drawToken = (logits: Float32Array, lo: number, hi: number, options: SamplingOptions, rng: Rng): number => {
  const ids: Array<number> = []
  for (let i = lo; i < hi; i++) ids.push(i)
  if (options.temperature <= 0) return ids.reduce((best, i) => (logits[i]! > logits[best]! ? i : best), ids[0]!)
  ids.sort((a, b) => logits[b]! - logits[a]!)
  const kept = options.topK > 0 ? ids.slice(0, options.topK) : ids
  const max = logits[kept[0]!]!
  const weights = kept.map((i) => Math.exp((logits[i]! - max) / options.temperature))
  const total = weights.reduce((s, w) => s + w, 0)
  let u = rng.next() * total
  for (let j = 0; j < kept.length; j++) {
    u -= weights[j]!
    if (u <= 0) return kept[j]!
  }
  return kept[kept.length - 1]!
}

export interface ClipContext {
  /** instruction ids [maxTextTokens] */
  readonly text: Int32Array
  /** start frame in [0, 1], [H, W, 3] */
  readonly frame: Float32Array
  /** BOS + history (see CodeStream.historyStream) */
  readonly stream: ReadonlyArray<number>
}

export const sampleClip = (model: ArTransformer, context: ClipContext, options: SamplingOptions, rng: Rng): SampledClip => {
  const { codeVocab, codesPerClip, height, width } = model.arch
  const t = specialTokens(codeVocab)
  const text = tf.tensor2d(context.text, [1, context.text.length], "int32")
  const frame = tf.tensor4d(context.frame, [1, height, width, 3])
  const stream = [...context.stream]
  const codes = new Int32Array(codesPerClip)
  let done = false
  let cache: KvCache | undefined
  try {
    let logits: tf.Tensor2D | undefined
    for (let i = 0; i <= codesPerClip; i++) {
      if (options.useKvCache) {
        const input = cache === undefined ? tf.tensor2d(stream, [1, stream.length], "int32") : tf.tensor2d([stream[stream.length - 1]!], [1, 1], "int32")
        const step = cache === undefined ? model.prefill({ text, frame, stream: input }) : model.extend(input, cache)
        input.dispose()
        cache = step.cache
        logits = step.logits
      } else {
        logits = tf.tidy(() => {
          const all = model.call({ text, frame, stream: tf.tensor2d(stream, [1, stream.length], "int32") })
          return tf.squeeze(tf.slice(all, [0, stream.length - 1, 0], [1, 1, -1]), [0, 1]).expandDims(0) as tf.Tensor2D
        })
      }
      const values = logits.dataSync() as Float32Array
      logits.dispose()
      if (i < codesPerClip) {
        const code = drawToken(values, 0, codeVocab, options, rng)
        codes[i] = code
        stream.push(code)
      } else {
        done = drawToken(values, t.NEXT, t.EOS + 1, options, rng) === t.EOS
      }
    }
  } finally {
    text.dispose()
    frame.dispose()
    disposeCache(cache)
  }
  return { codes, done }
}
