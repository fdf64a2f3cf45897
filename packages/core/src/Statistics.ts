/**
 * The few statistics a sweep roll-up needs (docs/engine.md, "Observers and tracking"): mean, sample standard
 * deviation and a percentile-bootstrap confidence interval of the mean. Pure and deterministic: the
 * bootstrap draws from a seeded PRNG, so a rerun over the same values reports the same bounds.
 */
import { mulberry32 } from "./Sweep.ts"

export const mean = (values: ReadonlyArray<number>): number => values.reduce((s, v) => s + v, 0) / values.length

/** Sample standard deviation (n − 1 in the denominator, as numpy's `std(ddof=1)`); undefined below two values. */
export const sampleStd = (values: ReadonlyArray<number>): number | undefined => {
  if (values.length < 2) return undefined
  const m = mean(values)
  return Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (values.length - 1))
}

/** The q-quantile of ascending `sorted` with linear interpolation (numpy's default, R type 7). */
export const quantileSorted = (sorted: ReadonlyArray<number>, q: number): number => {
  if (sorted.length === 0) return NaN
  const position = (sorted.length - 1) * q
  const below = Math.floor(position)
  const above = Math.min(below + 1, sorted.length - 1)
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below)
}

export interface BootstrapOptions {
  readonly resamples: number
  readonly confidence: number
  readonly seed: number
}

export const defaultBootstrap: BootstrapOptions = { resamples: 1000, confidence: 0.95, seed: 20_240_601 }

/**
 * Percentile bootstrap CI of the mean: resample the values with replacement `resamples` times, and take
 * the (1 − confidence)/2 and (1 + confidence)/2 quantiles of the resampled means. Each call starts its own
 * PRNG from `seed`, so the bounds depend only on the values (not on which other keys were rolled up first).
 */
export const bootstrapMeanCi = (values: ReadonlyArray<number>, options: BootstrapOptions = defaultBootstrap): readonly [number, number] => {
  const n = values.length
  if (n === 0) return [NaN, NaN]
  const random = mulberry32(options.seed)
  const means = new Float64Array(options.resamples)
  for (let r = 0; r < options.resamples; r++) {
    let sum = 0
    for (let i = 0; i < n; i++) sum += values[Math.floor(random() * n)]!
    means[r] = sum / n
  }
  means.sort()
  const sorted = Array.from(means)
  const tail = (1 - options.confidence) / 2
  return [quantileSorted(sorted, tail), quantileSorted(sorted, 1 - tail)]
}

export interface Summary {
  readonly n: number
  readonly mean: number
  /** undefined for a single value */
  readonly std: number | undefined
  /** undefined for a single value (a bootstrap of one value says nothing) */
  readonly ci: readonly [number, number] | undefined
}

export const summarize = (values: ReadonlyArray<number>, options: BootstrapOptions = defaultBootstrap): Summary => ({
  n: values.length,
  mean: mean(values),
  std: sampleStd(values),
  ci: values.length < 2 ? undefined : bootstrapMeanCi(values, options)
})
