/**
 * `vw2 runs <experiment>`: a comparison table read straight from MLflow — one row per trial (or per
 * stage run), the params whose values differ between rows, and the chosen metrics (latest values).
 */
import { MlflowClient, type Run } from "./MlflowClient.ts"

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
  readonly params: Readonly<Record<string, string>>
  readonly metrics: Readonly<Record<string, number>>
}

export interface RunsTable {
  readonly experiment: string
  readonly experimentId: string | undefined
  readonly level: "trial" | "stage"
  /** params whose value is not the same in every row (the columns worth comparing) */
  readonly differingParams: ReadonlyArray<string>
  readonly metricKeys: ReadonlyArray<string>
  readonly rows: ReadonlyArray<RunsTableRow>
}

const selected = (patterns: ReadonlyArray<string> | undefined, key: string) =>
  patterns === undefined || patterns.length === 0 || patterns.some((p) => (p.endsWith("*") ? key.startsWith(p.slice(0, -1)) : key === p))

export const runsTable = async (experiment: string, options: RunsTableOptions): Promise<RunsTable> => {
  const level = options.level ?? "trial"
  const client = new MlflowClient({ trackingUri: options.trackingUri })
  try {
    const found = await client.getExperimentByName(experiment)
    if (found === undefined) return { experiment, experimentId: undefined, level, differingParams: [], metricKeys: [], rows: [] }
    const runs = await client.searchRuns({ experimentIds: [found.experimentId], orderBy: ["attributes.start_time ASC"] })
    const byId = new Map(runs.map((r) => [r.info.runId, r]))
    const parentOf = (run: Run) => run.tags["mlflow.parentRunId"]
    const isStage = (run: Run) => run.tags["vw2.stage"] !== undefined
    const isTrial = (run: Run) => !isStage(run) && run.tags["vw2.trial"] !== undefined

    // a cache hit logs nothing itself: show the metrics of the run that produced the reused output
    const metricsOf = (run: Run): Record<string, number> => {
      const producer = /^hit:(.+)$/.exec(run.tags["vw2.cache"] ?? "")?.[1]
      const source = producer === undefined ? run : byId.get(producer) ?? run
      return Object.fromEntries(Object.entries(source.metrics).map(([key, m]) => [key, m.value]))
    }
    const rows: Array<RunsTableRow> = []
    const candidates = runs.filter(level === "trial" ? isTrial : isStage)
    for (const run of candidates) {
      if (options.includeUnfinished === false && run.info.status !== "FINISHED") continue
      const metrics: Record<string, number> = {}
      let params: Record<string, string> = { ...run.params }
      let experimentRun = parentOf(run)
      if (level === "trial") {
        // a trial's metrics are its stage runs' (latest values), named by step
        for (const stage of runs) {
          if (!isStage(stage) || parentOf(stage) !== run.info.runId) continue
          for (const [key, value] of Object.entries(metricsOf(stage))) metrics[`${stage.tags["vw2.step"] ?? stage.info.runName}/${key}`] = value
        }
        const parent = experimentRun === undefined ? undefined : byId.get(experimentRun)
        if (parent !== undefined) params = { ...parent.params, ...params }
      } else {
        Object.assign(metrics, metricsOf(run))
        const trial = experimentRun === undefined ? undefined : byId.get(experimentRun)
        experimentRun = trial === undefined ? experimentRun : parentOf(trial)
      }
      rows.push({
        runId: run.info.runId,
        runName: run.info.runName,
        status: run.info.status,
        startTime: run.info.startTime,
        parentRunId: experimentRun,
        params,
        metrics: Object.fromEntries(Object.entries(metrics).filter(([key]) => selected(options.metrics, key)))
      })
    }
    const paramKeys = [...new Set(rows.flatMap((r) => Object.keys(r.params)))].sort()
    const differingParams = paramKeys.filter((key) => new Set(rows.map((r) => r.params[key] ?? "∅")).size > 1)
    const metricKeys = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].sort()
    return { experiment, experimentId: found.experimentId, level, differingParams, metricKeys, rows }
  } finally {
    await client.close()
  }
}

const formatNumber = (value: number | undefined) =>
  value === undefined ? "" : Number.isInteger(value) ? String(value) : Math.abs(value) >= 1e4 || Math.abs(value) < 1e-3 ? value.toExponential(3) : value.toPrecision(4)

/** A plain-text table (fixed-width columns) of `table`. */
export const formatRunsTable = (table: RunsTable): string => {
  if (table.experimentId === undefined) return `no MLflow experiment named ${JSON.stringify(table.experiment)}`
  if (table.rows.length === 0) return `experiment ${JSON.stringify(table.experiment)} has no ${table.level} runs yet`
  const header = ["run", "status", ...table.differingParams, ...table.metricKeys]
  const lines = table.rows.map((row) => [
    `${row.runName} (${row.runId.slice(0, 8)})`,
    row.status,
    ...table.differingParams.map((key) => row.params[key] ?? ""),
    ...table.metricKeys.map((key) => formatNumber(row.metrics[key]))
  ])
  const widths = header.map((h, i) => Math.min(40, Math.max(h.length, ...lines.map((l) => l[i]!.length))))
  const cell = (text: string, i: number) => (text.length > widths[i]! ? `${text.slice(0, widths[i]! - 1)}…` : text.padEnd(widths[i]!))
  const render = (cells: ReadonlyArray<string>) => cells.map(cell).join("  ").trimEnd()
  return [render(header), render(widths.map((w) => "-".repeat(w))), ...lines.map(render)].join("\n")
}
