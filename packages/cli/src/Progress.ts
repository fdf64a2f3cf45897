/**
 * Run progress as SchedulerObservers: a live, redrawn table on a TTY (log-update), plain timestamped lines
 * otherwise (CI logs, pipes). Both show per-invocation status, elapsed time and the latest metrics.
 */
import type { InvocationStatus, PlannedInvocation, RunSummary, SchedulerObserver } from "@vw2/core"
import { createLogUpdate } from "log-update"

interface Row {
  readonly inv: PlannedInvocation
  status: InvocationStatus
  startedAt?: number
  endedAt?: number
  progress?: { done: number; total: number; message: string | undefined }
  metrics: Record<string, number>
  note?: string
  gpus?: ReadonlyArray<string>
}

const icons: Record<InvocationStatus, string> = {
  pending: "·",
  waiting: "…",
  running: "▶",
  cached: "≡",
  done: "✓",
  failed: "✗",
  skipped: "-",
  interrupted: "■"
}

export const formatMs = (ms: number): string => (ms < 1000 ? `${ms}ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`)

export const formatMetrics = (metrics: Readonly<Record<string, number>>, max = 3): string =>
  Object.entries(metrics).slice(0, max).map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toPrecision(4)}`).join(" ")

const label = (inv: PlannedInvocation) => `${inv.step} ${inv.hash.slice(0, 8)}${inv.trials.length > 1 ? ` (${inv.trials.length} trials)` : ` ${inv.trials[0]}`}`

/** Live table for terminals; redraws at most every 100 ms. */
export const ttyProgress = (stream: NodeJS.WriteStream): SchedulerObserver & { readonly stop: () => void } => {
  const log = createLogUpdate(stream, { showCursor: true })
  const rows = new Map<string, Row>()
  const started = Date.now()
  let timer: NodeJS.Timeout | undefined
  const render = () => {
    const now = Date.now()
    const all = [...rows.values()]
    const counts = new Map<InvocationStatus, number>()
    for (const r of all) counts.set(r.status, (counts.get(r.status) ?? 0) + 1)
    const budget = Math.max(5, (stream.rows ?? 30) - 4)
    // running first, then recently finished, then the rest: what matters fits on screen
    const order: Record<InvocationStatus, number> = { running: 0, waiting: 1, failed: 2, done: 3, interrupted: 4, skipped: 5, cached: 6, pending: 7 }
    const shown = all.slice().sort((a, b) => order[a.status] - order[b.status]).slice(0, budget)
    const lines = shown.map((r) => {
      const elapsed = r.startedAt === undefined ? "" : formatMs((r.endedAt ?? now) - r.startedAt)
      const progress = r.progress === undefined || r.status !== "running" ? "" : ` ${Math.round((100 * r.progress.done) / Math.max(1, r.progress.total))}%${r.progress.message ? ` ${r.progress.message}` : ""}`
      const gpus = r.gpus !== undefined && r.gpus.length > 0 ? ` gpu ${r.gpus.join(",")}` : ""
      return `${icons[r.status]} ${label(r.inv).padEnd(34)} ${r.status.padEnd(11)} ${elapsed.padStart(7)}${gpus}${progress}  ${formatMetrics(r.metrics)}`
    })
    if (all.length > shown.length) lines.push(`  … ${all.length - shown.length} more`)
    lines.push(`${formatMs(now - started)}  ` + [...counts.entries()].map(([s, n]) => `${s} ${n}`).join(" · "))
    log(lines.join("\n"))
  }
  const schedule = () => {
    timer ??= setTimeout(() => {
      timer = undefined
      render()
    }, 100)
  }
  const ticker = setInterval(render, 1000)
  ticker.unref()
  let stopped = false
  const stop = () => {
    if (stopped) return
    stopped = true
    clearInterval(ticker)
    if (timer !== undefined) clearTimeout(timer)
    render()
    log.done()
  }
  return {
    onStatus: (inv, status, detail) => {
      const row = rows.get(inv.hash) ?? { inv, status, metrics: {} }
      row.status = status
      if (status === "running") row.startedAt = Date.now()
      if (["done", "failed", "interrupted"].includes(status)) row.endedAt = Date.now()
      if (detail.gpus !== undefined) row.gpus = detail.gpus
      if (detail.note !== undefined) row.note = detail.note
      rows.set(inv.hash, row)
      schedule()
    },
    onProgress: (inv, done, total, message) => {
      const row = rows.get(inv.hash)
      if (row !== undefined) row.progress = { done, total, message }
      schedule()
    },
    onMetrics: (inv, values) => {
      const row = rows.get(inv.hash)
      if (row !== undefined) Object.assign(row.metrics, values)
      schedule()
    },
    onEnd: () => stop(),
    stop
  }
}

/** One line per event worth keeping in a log: status changes, throttled metrics, stage log lines. */
export const lineProgress = (write: (line: string) => void, options: { readonly stageLogs: boolean } = { stageLogs: true }): SchedulerObserver => {
  const started = Date.now()
  const lastMetricsLine = new Map<string, number>()
  const runningSince = new Map<string, number>()
  const stamp = () => `[${formatMs(Date.now() - started).padStart(7)}]`
  return {
    onStatus: (inv, status, detail) => {
      if (status === "pending") return
      if (status === "running") runningSince.set(inv.hash, Date.now())
      const since = runningSince.get(inv.hash)
      const parts = [stamp(), icons[status], label(inv), status]
      if (detail.gpus !== undefined && detail.gpus.length > 0) parts.push(`CUDA_VISIBLE_DEVICES=${detail.gpus.join(",")}`)
      if ((status === "done" || status === "failed") && since !== undefined) parts.push(formatMs(Date.now() - since))
      if (detail.note !== undefined) parts.push(`(${detail.note})`)
      if (detail.error !== undefined) parts.push(`: ${detail.error}`)
      write(parts.join(" "))
    },
    onMetrics: (inv, values, step) => {
      const last = lastMetricsLine.get(inv.hash) ?? 0
      if (Date.now() - last < 1000) return
      lastMetricsLine.set(inv.hash, Date.now())
      write(`${stamp()}   ${inv.step} step ${step}: ${formatMetrics(values, 6)}`)
    },
    onLog: (inv, message) => {
      if (options.stageLogs) write(`${stamp()}   ${inv.step} | ${message}`)
    }
  }
}

export const combineObservers = (...observers: ReadonlyArray<SchedulerObserver>): SchedulerObserver => ({
  onStart: (plan, id) => observers.forEach((o) => o.onStart?.(plan, id)),
  onStatus: (inv, status, detail) => observers.forEach((o) => o.onStatus?.(inv, status, detail)),
  onProgress: (inv, done, total, message) => observers.forEach((o) => o.onProgress?.(inv, done, total, message)),
  onMetrics: (inv, values, step) => observers.forEach((o) => o.onMetrics?.(inv, values, step)),
  onLog: (inv, message) => observers.forEach((o) => o.onLog?.(inv, message)),
  onEnd: (summary: RunSummary) => observers.forEach((o) => o.onEnd?.(summary))
})
