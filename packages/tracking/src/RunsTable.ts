/**
 * `vw2 runs <experiment>`: a comparison table read straight from MLflow — one row per trial (or per
 * stage run), the params whose values differ between rows, and the metrics (latest values). The JSON form
 * has every param and metric; the text table shows the differing params and a few headline metrics
 * (or exactly the `--metric` patterns) so it fits a terminal.
 */
import { rolledUpKey } from "@vw2/core"
import { Effect } from "effect"
import { makeMlflowClient, type Run } from "./MlflowClient.ts"

export interface RunsTableOptions {
  readonly trackingUri: string
  /** "trial" (default): one row per trial, metrics of its stage runs as `<step>/<metric>`;
   * "stage": one row per stage run with its own params and metrics */
  readonly level?: "trial" | "stage"
  /** metric keys to show (exact, or a prefix ending in `*`); default: all */
  readonly metrics?: ReadonlyArray<string>
  /** include FAILED/KILLED runs (default true) */
  readonly includeUnfinished?: boolean
}

export interface RunsTableRow {
  readonly runId: string
  readonly runName: string
  readonly status: string
  readonly startTime: number
  /** id of the `vw2 run` (experiment-level MLflow run) this row belongs to */
  readonly parentRunId: string | undefined
  /** stage level: the row's pipeline step */
  readonly step?: string
  readonly params: Readonly<Record<string, string>>
  readonly metrics: Readonly<Record<string, number>>
}

export interface RunsTable {
  readonly experiment: string
  readonly experimentId: string | undefined
  readonly level: "trial" | "stage"
  /** params whose value is not the same in every row (stage level: in every row of the same step) */
  readonly differingParams: ReadonlyArray<string>
  /** every metric key of the rows (those matching `metrics` when given) */
  readonly metricKeys: ReadonlyArray<string>
  /** the metric columns of the text table: the `metrics` patterns' matches, else a few headline metrics */
  readonly shownMetrics: ReadonlyArray<string>
  /** `metrics` patterns that matched no key (a typo: `vw2 runs` exits 2) */
  readonly unmatchedMetrics: ReadonlyArray<string>
  readonly rows: ReadonlyArray<RunsTableRow>
}

const matches = (pattern: string, key: string) => (pattern.endsWith("*") ? key.startsWith(pattern.slice(0, -1)) : key === pattern)
const selected = (patterns: ReadonlyArray<string> | undefined, key: string) =>
  patterns === undefined || patterns.length === 0 || patterns.some((p) => matches(p, key))

/**
 * A stage metric's key on its trial: `<step>/<metric>`, except that a metric the stage already named with
 * its step keeps its key (`ar` logging `ar/loss` → `ar/loss`, not `ar/ar/loss`). The engine rolls trial
 * metrics up under the same rule (core's `rolledUpKey`); this one reads runs recorded before it did.
 */
/** a stage run's metric as its trial run carries it: the scheduler's roll-up rule (`ar` + `ar/loss` → `ar/loss`) */
export const stepMetricKey = rolledUpKey

/** Bookkeeping series: logged, never a headline (step time, learning rate, gradient norm, wall time, system/*). */
const bookkeeping = /(?:^|\/)(?:step_ms|lr|grad_norm|\w+_seconds)$|(?:^|\/)system\//

/** Headline-ish metric names, most telling first; a step with many metrics shows these. */
const telling = ["loss", "avg_len", "success", "acc", "top1", "nll", "judge", "ssim", "lpips", "l2", "l1", "err", "mse", "perplexity", "gain"]

/**
 * Orders metric keys for a glance: fewer path segments first (`ar/loss` before `craft/fold/step_3`), then
 * by the first telling word the last segment contains, then as given. Bookkeeping series are left out.
 */
export const rankMetricKeys = (keys: ReadonlyArray<string>): Array<string> => {
  const score = (key: string) => {
    const name = key.slice(key.lastIndexOf("/") + 1)
    const i = telling.findIndex((word) => name.includes(word))
    return [key.split("/").length, i < 0 ? telling.length : i] as const
  }
  return keys
    .filter((key) => !bookkeeping.test(key))
    .map((key, order) => ({ key, order, score: score(key) }))
    .sort((a, b) => a.score[0] - b.score[0] || a.score[1] - b.score[1] || a.order - b.order)
    .map((e) => e.key)
}

const maxHeadlineMetrics = 8

/**
 * The default metric columns: bookkeeping and constant columns left out (they compare nothing), then per
 * step (in the order steps ran) the keys its stage declared as headline (`defineStage({ headline })`, the
 * stage runs' `vw2.headline` tag), then its most telling, shallowest keys — one per step when many steps have
 * metrics, two otherwise — at most `maxHeadlineMetrics`.
 */
export const headlineColumns = (
  rows: ReadonlyArray<RunsTableRow>,
  keys: ReadonlyArray<string>,
  stepOrder: ReadonlyArray<string>,
  declared: ReadonlyArray<string> = []
): Array<string> => {
  const varies = (key: string) => rows.length < 2 || new Set(rows.map((r) => r.metrics[key] ?? "∅")).size > 1
  const candidates = keys.filter(varies)
  const stepOf = (key: string) => stepOrder.find((s) => key.startsWith(`${s}/`)) ?? key.split("/")[0]!
  const bySteps = new Map<string, Array<string>>()
  for (const key of candidates) bySteps.set(stepOf(key), [...(bySteps.get(stepOf(key)) ?? []), key])
  const order = [...bySteps.keys()].sort((a, b) => (stepOrder.indexOf(a) + 1 || Infinity) - (stepOrder.indexOf(b) + 1 || Infinity))
  const perStep = order.length > maxHeadlineMetrics / 2 ? 1 : 2
  // later steps are evaluations: when there are more steps than columns, keep the last ones
  const pick = (stepKeys: ReadonlyArray<string>) => {
    const first = declared.filter((key) => stepKeys.includes(key))
    return [...first, ...rankMetricKeys(stepKeys.slice().sort()).filter((key) => !first.includes(key))]
  }
  return order.flatMap((step) => pick(bySteps.get(step)!).slice(0, perStep)).slice(-maxHeadlineMetrics)
}

export const runsTable = async (experiment: string, options: RunsTableOptions): Promise<RunsTable> => {
  const level = options.level ?? "trial"
  const empty = { differingParams: [], metricKeys: [], shownMetrics: [], unmatchedMetrics: [], rows: [] }
  const client = makeMlflowClient({ trackingUri: options.trackingUri })
  try {
    const found = await Effect.runPromise(client.getExperimentByName(experiment))
    if (found === undefined) return { experiment, experimentId: undefined, level, ...empty }
    const runs = await Effect.runPromise(client.searchRuns({ experimentIds: [found.experimentId], orderBy: ["attributes.start_time ASC"] }))
    const byId = new Map(runs.map((r) => [r.info.runId, r]))
    const parentOf = (run: Run) => run.tags["mlflow.parentRunId"]
    const isStage = (run: Run) => run.tags["vw2.stage"] !== undefined
    const isTrial = (run: Run) => !isStage(run) && run.tags["vw2.trial"] !== undefined
    const stepOf = (run: Run) => run.tags["vw2.step"] ?? run.info.runName
    const values = (run: Run) => Object.fromEntries(Object.entries(run.metrics).map(([key, m]) => [key, m.value]))

    // A cache hit that carries no metrics of its own (recorded before hits got the producer's copied): show
    // the producer's, looked up by id when it ran under another experiment.
    const producers = new Map<string, Run | undefined>()
    const metricsOf = async (run: Run): Promise<Record<string, number>> => {
      const own = values(run)
      const producer = /^hit:(.+)$/.exec(run.tags["vw2.cache"] ?? "")?.[1]
      if (Object.keys(own).length > 0 || producer === undefined) return own
      if (!producers.has(producer)) producers.set(producer, byId.get(producer) ?? (await Effect.runPromise(Effect.orElseSucceed(client.getRun(producer), () => undefined))))
      const source = producers.get(producer)
      return source === undefined ? own : values(source)
    }

    const stepOrder = [...new Set(runs.filter(isStage).map(stepOf))]
    // the stages' declared headline metrics, in the table's key space (trial rows: `<step>/<metric>`)
    const declared = [
      ...new Set(
        runs.filter(isStage).flatMap((run) =>
          (run.tags["vw2.headline"] ?? "").split(",").filter((key) => key !== "").map((key) => (level === "trial" ? stepMetricKey(stepOf(run), key) : key))
        )
      )
    ]
    const rows: Array<RunsTableRow> = []
    for (const run of runs.filter(level === "trial" ? isTrial : isStage)) {
      if (options.includeUnfinished === false && run.info.status !== "FINISHED") continue
      let metrics: Record<string, number> = {}
      let params: Record<string, string> = { ...run.params }
      let experimentRun = parentOf(run)
      if (level === "trial") {
        // the engine rolls its stages' final metrics up onto the trial run; older trial runs have none, so
        // read them from the stage runs under the same key rule
        metrics = values(run)
        if (Object.keys(metrics).length === 0) {
          for (const stage of runs) {
            if (!isStage(stage) || parentOf(stage) !== run.info.runId) continue
            for (const [key, value] of Object.entries(await metricsOf(stage))) {
              if (!key.startsWith("system/")) metrics[stepMetricKey(stepOf(stage), key)] = value
            }
          }
        }
        const parent = experimentRun === undefined ? undefined : byId.get(experimentRun)
        if (parent !== undefined) params = { ...parent.params, ...params }
      } else {
        metrics = await metricsOf(run)
        const trial = experimentRun === undefined ? undefined : byId.get(experimentRun)
        experimentRun = trial === undefined ? experimentRun : parentOf(trial)
      }
      rows.push({
        runId: run.info.runId,
        runName: run.info.runName,
        status: run.info.status,
        startTime: run.info.startTime,
        parentRunId: experimentRun,
        ...(level === "stage" ? { step: stepOf(run) } : {}),
        params,
        metrics: Object.fromEntries(Object.entries(metrics).filter(([key]) => selected(options.metrics, key)))
      })
    }
    // A param differs when rows that are comparable disagree on it: all rows at trial level, the rows of one
    // step at stage level (another step's config slice is not a difference).
    const bySteps = new Map<string, Array<RunsTableRow>>()
    for (const row of rows) bySteps.set(row.step ?? "", [...(bySteps.get(row.step ?? "") ?? []), row])
    const groups = level === "trial" ? [rows] : [...bySteps.values()]
    const paramKeys = [...new Set(rows.flatMap((r) => Object.keys(r.params)))].sort()
    const differingParams = paramKeys.filter((key) =>
      groups.some((group) => group.some((r) => key in r.params) && new Set(group.map((r) => r.params[key] ?? "∅")).size > 1)
    )
    const metricKeys = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].sort()
    const patterns = options.metrics ?? []
    const allKeys = new Set(rows.flatMap((r) => Object.keys(r.metrics)))
    const unmatchedMetrics = patterns.filter((p) => ![...allKeys].some((key) => matches(p, key)))
    const shownMetrics = patterns.length > 0 ? metricKeys : headlineColumns(rows, metricKeys, stepOrder, declared)
    // stage level with --metric: the stage runs that logged one of them (the other steps' runs are noise)
    const shownRows = level === "stage" && patterns.length > 0 ? rows.filter((r) => Object.keys(r.metrics).length > 0) : rows
    return { experiment, experimentId: found.experimentId, level, differingParams, metricKeys, shownMetrics, unmatchedMetrics, rows: shownRows }
  } finally {
    await Effect.runPromise(client.close())
  }
}

const formatNumber = (value: number | undefined) =>
  value === undefined ? "" : Number.isInteger(value) ? String(value) : Math.abs(value) >= 1e4 || Math.abs(value) < 1e-3 ? value.toExponential(3) : value.toPrecision(4)

/**
 * Column headers at most `max` characters that stay distinct. A long key is shortened to its step and last
 * segment (`calvin-head/…/avg_len`), else to its tail (`…fold-plane/step_1`: the distinguishing part of
 * `<step>/<group>/<name>` keys is at the end); a key whose short form would read like another's keeps more,
 * up to its full key. Headers are never cut blindly, so two columns never look the same.
 */
export const distinctHeaders = (keys: ReadonlyArray<string>, max: number): Array<string> => {
  const forms = (key: string): Array<string> => {
    if (key.length <= max) return [key]
    const parts = key.split("/")
    const stepAndLast = parts.length > 2 ? `${parts[0]}/…/${parts.at(-1)}` : undefined
    return [...(stepAndLast !== undefined && stepAndLast.length <= max ? [stepAndLast] : []), `…${key.slice(key.length - max + 1)}`, key]
  }
  const candidates = keys.map(forms)
  const level = keys.map(() => 0)
  // raise the level of every key whose current form collides, until none does (full keys are distinct)
  for (let changed = true; changed; ) {
    changed = false
    const count = new Map<string, number>()
    candidates.forEach((c, i) => count.set(c[level[i]!]!, (count.get(c[level[i]!]!) ?? 0) + 1))
    candidates.forEach((c, i) => {
      if (count.get(c[level[i]!]!)! > 1 && level[i]! < c.length - 1) {
        level[i]!++
        changed = true
      }
    })
  }
  return candidates.map((c, i) => c[level[i]!]!)
}

export interface FormatRunsTableOptions {
  /** metric columns (default: `table.shownMetrics`) */
  readonly metrics?: ReadonlyArray<string>
  /** longest header before it is shortened (default 24) */
  readonly maxHeader?: number
}

/** A plain-text table (fixed-width columns) of `table`: the differing params, then the metric columns. */
export const formatRunsTable = (table: RunsTable, options: FormatRunsTableOptions = {}): string => {
  if (table.experimentId === undefined) return `no MLflow experiment named ${JSON.stringify(table.experiment)}`
  if (table.rows.length === 0) return `experiment ${JSON.stringify(table.experiment)} has no ${table.level} runs yet`
  const metrics = options.metrics ?? table.shownMetrics
  const keys = [...table.differingParams, ...metrics]
  const header = ["run", "status", ...distinctHeaders(keys, options.maxHeader ?? 24)]
  const lines = table.rows.map((row) => [
    `${row.runName} (${row.runId.slice(0, 8)})`,
    row.status,
    ...table.differingParams.map((key) => row.params[key] ?? ""),
    ...metrics.map((key) => formatNumber(row.metrics[key]))
  ])
  // cells may be cut (…), headers never are: they were made short and distinct above
  const widths = header.map((h, i) => Math.max(h.length, Math.min(40, Math.max(...lines.map((l) => l[i]!.length)))))
  const cell = (text: string, i: number) => (text.length > widths[i]! ? `${text.slice(0, widths[i]! - 1)}…` : text.padEnd(widths[i]!))
  const render = (cells: ReadonlyArray<string>) => cells.map(cell).join("  ").trimEnd()
  const out = [render(header), render(widths.map((w) => "-".repeat(w))), ...lines.map(render)]
  const hidden = table.metricKeys.length - metrics.length
  if (hidden > 0) out.push(`(${metrics.length} of ${table.metricKeys.length} metrics shown; --metric 'step/*' picks others, --json has all)`)
  return out.join("\n")
}
