/** The table printed when a run ends: one row per invocation, fitted to the terminal's width. */
import { trialLabels, type InvocationResult, type PlannedTrial, type RunSummary } from "@vw2/core"
import Table from "cli-table3"
import { formatMetrics, formatMs } from "./Progress.ts"
import { isTensorflowNoise } from "./TfBackend.ts"

export interface SummaryOptions {
  /** where an invocation's log was written, if anywhere */
  readonly logFile?: (step: string, hash: string) => string | undefined
  /** the plan's trials, to label rows of a sweep by their assignments and seed */
  readonly trials?: ReadonlyArray<PlannedTrial>
  /** terminal columns (default 100) */
  readonly width?: number
  /** keep TensorFlow's native notices in failed stages' stderr tails */
  readonly verbose?: boolean
}

const trialsCell = (r: InvocationResult, trials: ReadonlyArray<PlannedTrial>, labels: ReadonlyMap<string, string>): string => {
  if (r.trials.length === trials.length) return r.trials.length === 1 ? "" : `all ${trials.length}`
  if (r.trials.length > 1) {
    // an invocation the trials of one seed share (a step the sweep does not touch): name that seed
    const seeds = new Set(trials.filter((t) => r.trials.includes(t.id)).map((t) => t.seed))
    const seed = new Set(trials.map((t) => t.seed)).size > 1 && seeds.size === 1 ? `seed=${[...seeds][0]} ` : ""
    return `${seed}(${r.trials.length} trials)`
  }
  const trial = trials.find((t) => t.id === r.trials[0])
  return trial === undefined ? (r.trials[0] ?? "") : labels.get(trial.id) ?? trial.id
}

export const renderSummary = (summary: RunSummary, options: SummaryOptions = {}): string => {
  const width = Math.max(60, options.width ?? 100)
  const trials = options.trials ?? []
  const swept = trials.length > 1
  const labels = trialLabels(trials)
  const rows = summary.results.map((r) => ({
    step: r.step,
    hash: r.hash.slice(0, 8),
    trial: swept ? trialsCell(r, trials, labels) : "",
    status: r.status,
    time: r.durationMs === undefined ? "" : formatMs(r.durationMs),
    metrics: formatMetrics(r.metrics, r, 4)
  }))
  const columns: Array<{ readonly head: string; readonly cell: (row: (typeof rows)[number]) => string }> = [
    { head: "step", cell: (row) => row.step },
    { head: "hash", cell: (row) => row.hash },
    ...(swept ? [{ head: "trial", cell: (row: (typeof rows)[number]) => row.trial }] : []),
    { head: "status", cell: (row) => row.status },
    { head: "time", cell: (row) => row.time },
    { head: "metrics", cell: (row) => row.metrics }
  ]
  // each column's content width + 2 padding; borders add columns + 1. The widest columns give way, last first.
  const natural = columns.map((c) => Math.max(c.head.length, ...rows.map((row) => c.cell(row).length)) + 2)
  const widths = [...natural]
  let excess = widths.reduce((a, b) => a + b, 0) + columns.length + 1 - width
  for (const i of [columns.length - 1, swept ? 2 : -1, 0]) {
    if (i < 0 || excess <= 0) continue
    const floor = Math.min(natural[i]!, i === columns.length - 1 ? 14 : 10)
    const give = Math.min(excess, widths[i]! - floor)
    widths[i] = widths[i]! - give
    excess -= give
  }
  const table = new Table({ head: columns.map((c) => c.head), colWidths: widths, wordWrap: false, style: { head: [], border: [], compact: true } })
  for (const row of rows) table.push(columns.map((c) => c.cell(row)))

  const fit = (line: string) => (line.length <= width ? line : `${line.slice(0, width - 1)}…`)
  const count = (s: string) => summary.results.filter((r) => r.status === s).length
  const lines = [table.toString()]
  for (const r of summary.results) {
    if (r.status !== "failed" && r.status !== "skipped") continue
    lines.push(fit(`${r.status} ${r.step} ${r.hash.slice(0, 10)}: ${r.error ?? ""}`))
    const tail = (r.stderrTail ?? "").split("\n").filter((l) => l.trim() !== "" && (options.verbose === true || !isTensorflowNoise(l))).slice(-8)
    for (const line of tail) lines.push(fit(`    ${line}`))
    const log = options.logFile?.(r.step, r.hash)
    if (r.status === "failed" && log !== undefined) lines.push(`    full log: ${log}`)
  }
  lines.push(
    `${summary.status.toUpperCase()} in ${formatMs(summary.durationMs)}: ${count("done")} ran, ${count("cached")} cached, ${count("failed")} failed, ${count("skipped")} skipped${(["paused", "stopped", "interrupted"] as const).map((status) => (count(status) > 0 ? `, ${count(status)} ${status}` : "")).join("")}`
  )
  return lines.join("\n")
}
