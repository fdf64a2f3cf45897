/** The table printed when a run ends. */
import type { RunSummary } from "@vw2/core"
import Table from "cli-table3"
import { formatMetrics, formatMs } from "./Progress.ts"

export interface SummaryOptions {
  /** where an invocation's log was written, if anywhere */
  readonly logFile?: (step: string, hash: string) => string | undefined
}

export const renderSummary = (summary: RunSummary, options: SummaryOptions = {}): string => {
  const table = new Table({ head: ["step", "hash", "trials", "status", "time", "metrics"], style: { head: [], border: [], compact: true } })
  for (const r of summary.results) {
    table.push([r.step, r.hash.slice(0, 10), String(r.trials.length), r.status, r.durationMs === undefined ? "" : formatMs(r.durationMs), formatMetrics(r.metrics, 4)])
  }
  const count = (s: string) => summary.results.filter((r) => r.status === s).length
  const lines = [table.toString()]
  for (const r of summary.results) {
    if (r.status !== "failed" && r.status !== "skipped") continue
    lines.push(`${r.status} ${r.step} ${r.hash.slice(0, 10)}: ${r.error ?? ""}`)
    const tail = (r.stderrTail ?? "").split("\n").filter((l) => l.trim() !== "").slice(-8)
    for (const line of tail) lines.push(`    ${line}`)
    const log = options.logFile?.(r.step, r.hash)
    if (r.status === "failed" && log !== undefined) lines.push(`    full log: ${log}`)
  }
  lines.push(
    `${summary.status.toUpperCase()} in ${formatMs(summary.durationMs)}: ${count("done")} ran, ${count("cached")} cached, ${count("failed")} failed, ${count("skipped")} skipped${count("interrupted") > 0 ? `, ${count("interrupted")} interrupted` : ""}`
  )
  return lines.join("\n")
}
