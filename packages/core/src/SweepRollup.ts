/**
 * How a sweep is made comparable in the run tree (docs/engine.md, "Observers and tracking"):
 *   - each trial gets a label from its swept assignments and seed (`lr=0.001 seed=1`); stage runs are
 *     named `<step> · <label>` and trial runs by the label;
 *   - a trial run carries the final metrics of its stages under `<step>/<metric>` (`rolledUpKey`);
 *   - trials that differ only in their seed form a trial group; the experiment run carries, per group and
 *     rolled-up key, n, mean, std and a bootstrap 95 % CI under `<step>/<metric>/<group>/<stat>`, and the
 *     same numbers with labels and trial ids as `rollup.json`.
 * Pure functions over the plan and the final metric values; the run tree (RunTree.ts) does the logging.
 */
import { canonicalJson } from "./Canonical.ts"
import type { PlannedTrial } from "./Planner.ts"
import type { BootstrapOptions } from "./Statistics.ts"
import { defaultBootstrap, summarize } from "./Statistics.ts"

const valueText = (value: unknown): string => (typeof value === "string" ? value : canonicalJson(value))

/** Short names for swept paths: the last segment (`mlp.learningRate` → `learningRate`) unless two paths share it. */
const shortNames = (paths: ReadonlyArray<string>): ReadonlyMap<string, string> => {
  const last = (p: string) => p.slice(p.lastIndexOf(".") + 1)
  const counts = new Map<string, number>()
  for (const p of paths) counts.set(last(p), (counts.get(last(p)) ?? 0) + 1)
  return new Map(paths.map((p) => [p, counts.get(last(p)) === 1 ? last(p) : p]))
}

const sweptPaths = (trials: ReadonlyArray<PlannedTrial>): Array<string> => [...new Set(trials.flatMap((t) => Object.keys(t.assignments)))]

/** `lr=0.001 hidden=[16,16]` for a trial's assignments ("" without a sweep). */
const assignmentsLabel = (assignments: Readonly<Record<string, unknown>>, names: ReadonlyMap<string, string>): string =>
  Object.entries(assignments).map(([p, v]) => `${names.get(p) ?? p}=${valueText(v)}`).join(" ")

/**
 * trial id → label: its assignments, plus `seed=N` when the experiment has more than one seed. A single-trial
 * experiment gets "" (its runs need no label).
 */
export const trialLabels = (trials: ReadonlyArray<PlannedTrial>): ReadonlyMap<string, string> => {
  if (trials.length <= 1) return new Map(trials.map((t) => [t.id, ""]))
  const names = shortNames(sweptPaths(trials))
  const severalSeeds = new Set(trials.map((t) => t.seed)).size > 1
  return new Map(trials.map((t) => {
    const label = [assignmentsLabel(t.assignments, names), severalSeeds ? `seed=${t.seed}` : ""].filter((s) => s !== "").join(" ")
    return [t.id, label === "" ? t.id : label]
  }))
}

/** `<step> · <label>`, or the bare step for a single-trial experiment. */
export const stageRunName = (step: string, label: string): string => (label === "" ? step : `${step} · ${label}`)

/**
 * The key a stage's metric gets on its trial run (and in roll-ups): `<step>/<metric>`, except that a metric
 * the stage already prefixed with its own step name keeps its key (`ar` logging `ar/loss` → `ar/loss`, not
 * `ar/ar/loss`). A prefix naming something else stays (`ar-calvin` logging `ar/loss` → `ar-calvin/ar/loss`),
 * since two steps may run the same stage.
 */
export const rolledUpKey = (step: string, metric: string): string => (metric.startsWith(`${step}/`) ? metric : `${step}/${metric}`)

/** A trial's final metrics, step → (metric → last value), as one record under rolled-up keys. */
export const trialMetrics = (byStep: Readonly<Record<string, Readonly<Record<string, number>>>>): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const [step, metrics] of Object.entries(byStep)) {
    for (const [metric, value] of Object.entries(metrics)) out[rolledUpKey(step, metric)] = value
  }
  return out
}

export interface TrialGroup {
  /** the trials' id without the seed part (`p1` for `p1-s0`, `p1-s1`) */
  readonly id: string
  /** the swept assignments ("" without a sweep) */
  readonly label: string
  readonly assignments: Readonly<Record<string, unknown>>
  readonly trials: ReadonlyArray<PlannedTrial>
}

/** Trials with the same assignments (differing only in the seed), in plan order. */
export const trialGroups = (trials: ReadonlyArray<PlannedTrial>): Array<TrialGroup> => {
  const names = shortNames(sweptPaths(trials))
  const byKey = new Map<string, { assignments: Readonly<Record<string, unknown>>; trials: Array<PlannedTrial> }>()
  for (const t of trials) {
    const key = canonicalJson(t.assignments)
    const group = byKey.get(key) ?? { assignments: t.assignments, trials: [] }
    group.trials.push(t)
    byKey.set(key, group)
  }
  const used = new Set<string>()
  return [...byKey.values()].map((g, index) => {
    const fromTrial = g.trials[0]!.id.replace(/-s-?\d+$/, "")
    const id = used.has(fromTrial) || fromTrial === g.trials[0]!.id ? `g${index}` : fromTrial
    used.add(id)
    return { id, label: assignmentsLabel(g.assignments, names), assignments: g.assignments, trials: g.trials }
  })
}

export interface RollupStat {
  readonly n: number
  readonly mean: number
  /** sample standard deviation; absent for n = 1 */
  readonly std?: number
  /** percentile-bootstrap CI of the mean; absent for n = 1 */
  readonly ci95?: readonly [number, number]
  /** the trials' values, in the group's trial order (trials without the metric are left out) */
  readonly values: ReadonlyArray<number>
  readonly trials: ReadonlyArray<string>
}

export interface Rollup {
  readonly format: 1
  readonly experiment: string
  readonly configHash: string
  /** how the experiment run's metric keys are built from these numbers */
  readonly metricKeys: "<step>/<metric>/<group>/{n,mean,std,ci95_low,ci95_high}"
  readonly statistics: {
    readonly std: "sample (n - 1)"
    readonly ci: { readonly method: "percentile bootstrap of the mean"; readonly resamples: number; readonly confidence: number; readonly seed: number }
  }
  readonly groups: ReadonlyArray<{
    readonly id: string
    readonly label: string
    readonly assignments: Readonly<Record<string, unknown>>
    readonly trials: ReadonlyArray<{ readonly id: string; readonly seed: number; readonly runId?: string; readonly metrics: Readonly<Record<string, number>> }>
    /** rolled-up key (`<step>/<metric>`) → statistics over the group's trials */
    readonly metrics: Readonly<Record<string, RollupStat>>
  }>
}

export interface RollupInput {
  readonly experiment: string
  readonly configHash: string
  readonly trials: ReadonlyArray<PlannedTrial>
  /** trial id → its rolled-up final metrics (`trialMetrics`) */
  readonly metrics: ReadonlyMap<string, Readonly<Record<string, number>>>
  /** trial id → its tracked run */
  readonly runIds?: ReadonlyMap<string, string>
}

/** Per trial group and rolled-up key: n, mean, std, CI. Non-finite values (a NaN loss) are left out of the statistics. */
export const rollup = (input: RollupInput, bootstrap: BootstrapOptions = defaultBootstrap): Rollup => ({
  format: 1,
  experiment: input.experiment,
  configHash: input.configHash,
  metricKeys: "<step>/<metric>/<group>/{n,mean,std,ci95_low,ci95_high}",
  statistics: {
    std: "sample (n - 1)",
    ci: { method: "percentile bootstrap of the mean", resamples: bootstrap.resamples, confidence: bootstrap.confidence, seed: bootstrap.seed }
  },
  groups: trialGroups(input.trials).map((group) => {
    const keys = [...new Set(group.trials.flatMap((t) => Object.keys(input.metrics.get(t.id) ?? {})))].sort()
    const metrics: Record<string, RollupStat> = {}
    for (const key of keys) {
      const present = group.trials.flatMap((t) => {
        const value = input.metrics.get(t.id)?.[key]
        return value !== undefined && Number.isFinite(value) ? [{ trial: t.id, value }] : []
      })
      if (present.length === 0) continue
      const values = present.map((p) => p.value)
      const s = summarize(values, bootstrap)
      metrics[key] = {
        n: s.n,
        mean: s.mean,
        ...(s.std === undefined ? {} : { std: s.std }),
        ...(s.ci === undefined ? {} : { ci95: s.ci }),
        values,
        trials: present.map((p) => p.trial)
      }
    }
    return {
      id: group.id,
      label: group.label,
      assignments: group.assignments,
      trials: group.trials.map((t) => {
        const runId = input.runIds?.get(t.id)
        return { id: t.id, seed: t.seed, ...(runId === undefined ? {} : { runId }), metrics: input.metrics.get(t.id) ?? {} }
      }),
      metrics
    }
  })
})

/** The experiment run's metrics: `<step>/<metric>/<group>/<stat>` for every group and rolled-up key. */
export const rollupMetrics = (r: Rollup): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const group of r.groups) {
    for (const [key, stat] of Object.entries(group.metrics)) {
      const base = `${key}/${group.id}`
      out[`${base}/n`] = stat.n
      out[`${base}/mean`] = stat.mean
      if (stat.std !== undefined) out[`${base}/std`] = stat.std
      if (stat.ci95 !== undefined) {
        out[`${base}/ci95_low`] = stat.ci95[0]
        out[`${base}/ci95_high`] = stat.ci95[1]
      }
    }
  }
  return out
}

/** Tags that decode the group ids in the metric keys: `vw2.group.p1` = `learningRate=0.03`. */
export const rollupTags = (r: Rollup): Record<string, string> =>
  Object.fromEntries(r.groups.filter((g) => g.label !== "").map((g) => [`vw2.group.${g.id}`, g.label]))

export interface Objective {
  /** a rolled-up key, `<step>/<metric>` */
  readonly metric: string
  readonly mode: "min" | "max"
}

/** The group with the best mean of the objective (ties: the first in plan order); undefined when no group has it. */
export const bestGroup = (r: Rollup, objective: Objective): Rollup["groups"][number] | undefined => {
  let best: Rollup["groups"][number] | undefined
  for (const group of r.groups) {
    const mean = group.metrics[objective.metric]?.mean
    if (mean === undefined) continue
    const bestMean = best?.metrics[objective.metric]!.mean
    if (bestMean === undefined || (objective.mode === "min" ? mean < bestMean : mean > bestMean)) best = group
  }
  return best
}
