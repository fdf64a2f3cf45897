/**
 * Early stopping for sweeps (`sweep.scheduler`): the rung schedule and the decision at each rung, as pure
 * functions of the trials' reported metric values. The engine that runs the rungs is SweepScheduler.ts; the
 * design is in docs/engine.md, "Early stopping".
 *
 * Synchronous successive halving (ASHA's synchronous form, Li et al. 2020): every trial of the swept step
 * trains to rung r_0 and pauses there (ctx.pauseAtStep); the best ⌊n/η⌋ (at least one) by the metric's last
 * value at a step ≤ r_0 are promoted and resume from their r_0 checkpoint to r_1, and so on; after the last
 * rung the survivors run to the end and publish. The median rule stops, at each rung, every trial whose value
 * is worse than the median of the other trials' values at that rung.
 * Ties and missing values are broken deterministically: a trial that reported no value ranks last, equal
 * values rank by trial id, so the same reports always give the same decision.
 */
import { Schema } from "effect"

const positiveInt = Schema.Int.check(Schema.isGreaterThan(0))

/** `sweep.scheduler` as an experiment writes it. */
export const EarlyStoppingConfig = Schema.Struct({
  kind: Schema.Literals(["asha", "median"]),
  /** `<step>/<metric>`: a metric the swept step reports with ctx.metrics */
  metric: Schema.String,
  mode: Schema.Literals(["min", "max"]),
  /** the steps where trials pause and are compared, strictly increasing */
  rungs: Schema.optionalKey(Schema.Array(positiveInt)),
  /** instead of `rungs`: the first rung; the next ones are grace·η^k below `maxSteps` */
  grace: Schema.optionalKey(positiveInt),
  /** with `grace`: the swept stage's total steps (rungs stop below it) */
  maxSteps: Schema.optionalKey(positiveInt),
  /** η: asha keeps the best 1/η at each rung (default 2; the median rule ignores it) */
  reductionFactor: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(2)))
})
export type EarlyStoppingConfig = typeof EarlyStoppingConfig["Type"]

/** The checked scheduler, as the plan carries it. */
export interface EarlyStoppingPlan {
  readonly kind: "asha" | "median"
  readonly metric: string
  /** the swept step whose invocations pause at the rungs */
  readonly step: string
  /** the metric key that step reports */
  readonly key: string
  readonly mode: "min" | "max"
  readonly reductionFactor: number
  readonly rungs: ReadonlyArray<number>
  /** trials alive at each rung and how many asha keeps (the median rule's count is only known once it ran) */
  readonly schedule: ReadonlyArray<{ readonly rung: number; readonly trials: number; readonly keep?: number }>
}

/** Rungs from `rungs`, or grace·η^k below maxSteps; undefined with the reason when neither is usable. */
export const rungsOf = (config: EarlyStoppingConfig): { readonly rungs: ReadonlyArray<number> } | { readonly problem: string; readonly path: string } => {
  const eta = config.reductionFactor ?? 2
  if (config.rungs !== undefined) {
    if (config.grace !== undefined || config.maxSteps !== undefined) return { problem: "give either rungs or grace with maxSteps, not both", path: "rungs" }
    if (config.rungs.length === 0) return { problem: "expected at least one rung", path: "rungs" }
    for (let i = 1; i < config.rungs.length; i++) {
      if (config.rungs[i]! <= config.rungs[i - 1]!) return { problem: `rungs must increase strictly (rungs[${i}] = ${config.rungs[i]} ≤ ${config.rungs[i - 1]})`, path: `rungs[${i}]` }
    }
    return { rungs: config.rungs }
  }
  if (config.grace === undefined || config.maxSteps === undefined) return { problem: "give rungs: [r0, r1, …], or grace and maxSteps", path: "rungs" }
  if (config.grace >= config.maxSteps) return { problem: `grace (${config.grace}) must be below maxSteps (${config.maxSteps})`, path: "grace" }
  const rungs: Array<number> = []
  for (let r = config.grace; r < config.maxSteps; r *= eta) rungs.push(r)
  return { rungs }
}

/** How many of `n` trials asha keeps at a rung: ⌊n/η⌋, at least one. */
export const ashaKeep = (n: number, reductionFactor: number): number => Math.max(1, Math.floor(n / reductionFactor))

/** Trials alive at each rung (asha: known up front; median: every trial, as an upper bound). */
export const scheduleOf = (kind: "asha" | "median", rungs: ReadonlyArray<number>, trials: number, reductionFactor: number): EarlyStoppingPlan["schedule"] => {
  let alive = trials
  return rungs.map((rung) => {
    if (kind === "median") return { rung, trials: alive }
    const keep = ashaKeep(alive, reductionFactor)
    const row = { rung, trials: alive, keep }
    alive = keep
    return row
  })
}

/** One trial's report at a rung: `value` is the metric's last value at a step ≤ the rung (absent: never reported). */
export interface RungReport {
  /** the swept invocation's hash: what pauses, resumes and is stopped */
  readonly hash: string
  /** its first trial id: the deterministic tie-breaker */
  readonly trial: string
  readonly value?: number
}

export interface RungDecision {
  readonly promoted: ReadonlyArray<string>
  readonly stopped: ReadonlyArray<string>
}

/** best first: a missing or non-finite value ranks last, equal values by trial id */
const compareReports = (mode: "min" | "max") => (a: RungReport, b: RungReport): number => {
  const va = a.value !== undefined && Number.isFinite(a.value) ? a.value : undefined
  const vb = b.value !== undefined && Number.isFinite(b.value) ? b.value : undefined
  if (va === undefined || vb === undefined) {
    if (va !== vb) return va === undefined ? 1 : -1
  } else if (va !== vb) return mode === "min" ? va - vb : vb - va
  return a.trial < b.trial ? -1 : a.trial > b.trial ? 1 : 0
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * The decision at one rung over the trials alive there (hashes, in ranking order for `promoted`).
 * asha: the best ⌊n/η⌋ are promoted. median: a trial is stopped when its value is worse than the median of
 * the others' values (or it has none while some other has one).
 */
export const decideRung = (plan: Pick<EarlyStoppingPlan, "kind" | "mode" | "reductionFactor">, reports: ReadonlyArray<RungReport>): RungDecision => {
  const ranked = [...reports].sort(compareReports(plan.mode))
  if (plan.kind === "asha") {
    const keep = ashaKeep(ranked.length, plan.reductionFactor)
    return { promoted: ranked.slice(0, keep).map((r) => r.hash), stopped: ranked.slice(keep).map((r) => r.hash) }
  }
  const promoted: Array<string> = []
  const stopped: Array<string> = []
  for (const report of ranked) {
    const others = ranked.filter((r) => r !== report && r.value !== undefined && Number.isFinite(r.value)).map((r) => r.value!)
    const value = report.value !== undefined && Number.isFinite(report.value) ? report.value : undefined
    const worse = others.length === 0
      ? false
      : value === undefined || (plan.mode === "min" ? value > median(others) : value < median(others))
    ;(worse ? stopped : promoted).push(report.hash)
  }
  // the median rule never stops every trial: with all of them worse than their peers' median (impossible for
  // finite values) or none reporting, the best ranked one goes on
  if (promoted.length === 0 && ranked.length > 0) return { promoted: [ranked[0]!.hash], stopped: stopped.filter((h) => h !== ranked[0]!.hash) }
  return { promoted, stopped }
}

/** The metric's value a rung compares: its last value at a step ≤ the rung. */
export const valueAtRung = (history: ReadonlyArray<{ readonly step: number; readonly value: number }>, rung: number): number | undefined => {
  let best: { step: number; value: number } | undefined
  for (const point of history) {
    if (point.step <= rung && (best === undefined || point.step >= best.step)) best = point
  }
  return best?.value
}
