/**
 * Run progress as observers of the run-event stream (core's RunEvent.ts): a live, redrawn table on a TTY
 * (log-update), plain timestamped lines otherwise (CI logs, pipes). Both show per-invocation status, elapsed
 * time, a progress bar with an ETA where the stage reports steps, and its headline metrics.
 */
import type { InvocationStatus, PlannedInvocation, RunEvent, RunObserver } from "@vw2/core"
import { rankMetricKeys } from "@vw2/tracking"
import { Effect } from "effect"
import { createLogUpdate } from "log-update"
import { isTensorflowNoise } from "./TfBackend.ts"

const icons: Record<InvocationStatus, string> = {
  pending: "·",
  waiting: "…",
  running: "▶",
  cached: "≡",
  done: "✓",
  failed: "✗",
  skipped: "-",
  interrupted: "■",
  paused: "‖",
  stopped: "◌"
}

export const formatMs = (ms: number): string => {
  const rounded = Math.round(ms)
  if (rounded < 1000) return `${rounded}ms`
  if (rounded < 60_000) return `${(rounded / 1000).toFixed(1)}s`
  const seconds = Math.round(rounded / 1000)
  return seconds < 3600 ? `${Math.floor(seconds / 60)}m${seconds % 60}s` : `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`
}

const formatValue = (v: number) => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : v.toPrecision(4))

/**
 * The metrics worth a glance, at most `max`: bookkeeping series (step time, learning rate, gradient norm)
 * left out, the rest ranked as `vw2 runs` ranks them (shallow keys with telling names first, then in the
 * order the stage logged them), the stage's own prefix (`<step>/` or `<stage>/`) dropped since the row names
 * the step.
 */
export const headlineMetrics = (
  metrics: Readonly<Record<string, number>>,
  owner: { readonly step: string; readonly stage: string; readonly headline?: ReadonlyArray<string> },
  max = 3
): Array<readonly [string, number]> => {
  const strip = (key: string) => (key.startsWith(`${owner.step}/`) ? key.slice(owner.step.length + 1) : key.startsWith(`${owner.stage}/`) ? key.slice(owner.stage.length + 1) : key)
  const byShown = new Map(Object.entries(metrics).map(([key, value]) => [strip(key), value]))
  // the stage's declared headline first (in its order), then the ranking fills what room is left
  const declared = (owner.headline ?? []).map(strip).filter((key) => byShown.has(key))
  const rest = rankMetricKeys([...byShown.keys()]).filter((key) => !declared.includes(key))
  return [...declared, ...rest].slice(0, max).map((key) => [key, byShown.get(key)!] as const)
}

export const formatMetrics = (
  metrics: Readonly<Record<string, number>>,
  owner: { readonly step: string; readonly stage: string; readonly headline?: ReadonlyArray<string> },
  max = 3
): string =>
  headlineMetrics(metrics, owner, max).map(([k, v]) => `${k}=${formatValue(v)}`).join(" ")

const label = (inv: PlannedInvocation) => `${inv.step} ${inv.hash.slice(0, 8)}${inv.trials.length > 1 ? ` (${inv.trials.length} trials)` : ` ${inv.trials[0]}`}`

/**
 * One invocation's progress as the stage reports it (`done` of `total`): the shown fraction never goes down
 * (a stage with sub-phases that each count from 0 stays at its highest point instead of jumping back), and
 * the ETA extrapolates the rate since the first report (so start-up time does not count as slow steps).
 */
export class ProgressTrack {
  #fraction = 0
  #first?: { readonly at: number; readonly fraction: number }
  #last?: { readonly at: number; readonly fraction: number }
  message: string | undefined
  done = 0
  total = 0

  update(done: number, total: number, message: string | undefined, now: number): void {
    const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0
    this.message = message
    if (fraction < this.#fraction) return
    this.#fraction = fraction
    this.done = done
    this.total = total
    this.#first ??= { at: now, fraction }
    this.#last = { at: now, fraction }
  }

  get fraction(): number {
    return this.#fraction
  }

  /** milliseconds left at the rate seen so far; undefined until the rate is known */
  etaMs(now: number): number | undefined {
    const first = this.#first
    const last = this.#last
    if (first === undefined || last === undefined || last.fraction <= first.fraction || this.#fraction >= 1) return undefined
    const rate = (last.fraction - first.fraction) / Math.max(1, last.at - first.at)
    // time already spent since the last report counts against the estimate
    return Math.max(0, (1 - this.#fraction) / rate - (now - last.at))
  }
}

/** `[████████░░░░] 67% ETA 1m2s` */
export const formatProgress = (track: ProgressTrack, now: number, barWidth = 12): string => {
  const filled = Math.round(track.fraction * barWidth)
  const eta = track.etaMs(now)
  return `${"█".repeat(filled)}${"░".repeat(barWidth - filled)} ${String(Math.floor(100 * track.fraction)).padStart(3)}%${eta === undefined ? "" : ` ETA ${formatMs(eta)}`}`
}

/**
 * Follows a run's events for an observer that works per invocation: learns the plan's invocations from
 * `run-started`, and hands every later event that is about one of them to `on` with that invocation.
 */
export const perInvocation = (
  on: (event: RunEvent, inv: PlannedInvocation | undefined) => void
): ((event: RunEvent) => void) => {
  let byHash = new Map<string, PlannedInvocation>()
  return (event) => {
    if (event.type === "run-started") byHash = new Map(event.plan.invocations.map((inv) => [inv.hash, inv]))
    const hash = "invocation" in event ? event.invocation : undefined
    on(event, hash === undefined ? undefined : byHash.get(hash))
  }
}

/** An observer from a synchronous handler (terminal output, files). */
const syncObserver = (handle: (event: RunEvent) => void): RunObserver => ({ onEvent: (event) => Effect.sync(() => handle(event)) })

interface Row {
  readonly inv: PlannedInvocation
  status: InvocationStatus
  startedAt?: number
  endedAt?: number
  progress?: ProgressTrack
  metrics: Record<string, number>
  note?: string
  gpus?: ReadonlyArray<string>
}

/** Cuts a line to the terminal width (log-update cannot erase a line the terminal wrapped). */
const fit = (line: string, width: number) => (line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`)

/**
 * Live table for terminals; redraws at most every 100 ms. Nothing is drawn before the scheduler's first
 * event, so whatever starts the run (the tracker, the executor) can print first; `print` puts a line above
 * the table without leaving a stale copy of it behind.
 */
export const ttyProgress = (stream: NodeJS.WriteStream): RunObserver & {
  readonly stop: () => void
  readonly print: (line: string) => void
  /** shows the tracker's delivery state (MLflow starting / up / spooling / degraded) in the footer */
  readonly watchTracker: (state: () => string | undefined) => void
} => {
  const log = createLogUpdate(stream, { showCursor: true })
  const rows = new Map<string, Row>()
  let started: number | undefined
  let timer: NodeJS.Timeout | undefined
  let ticker: NodeJS.Timeout | undefined
  let stopped = false
  let trackerState: (() => string | undefined) | undefined
  const render = () => {
    if (started === undefined) return
    const now = Date.now()
    const width = Math.max(40, (stream.columns ?? 100) - 1)
    const all = [...rows.values()]
    const counts = new Map<InvocationStatus, number>()
    for (const r of all) counts.set(r.status, (counts.get(r.status) ?? 0) + 1)
    const budget = Math.max(5, (stream.rows ?? 30) - 4)
    // running first, then recently finished, then the rest: what matters fits on screen
    const order: Record<InvocationStatus, number> = { running: 0, waiting: 1, failed: 2, done: 3, paused: 4, interrupted: 5, stopped: 6, skipped: 7, cached: 8, pending: 9 }
    const shown = all.slice().sort((a, b) => order[a.status] - order[b.status]).slice(0, budget)
    const labelWidth = Math.min(34, Math.floor(width / 3), Math.max(...shown.map((r) => label(r.inv).length), 10))
    // most telling first, so a narrow terminal cuts the stage's message, not the bar
    const lines = shown.map((r) => {
      const elapsed = r.startedAt === undefined ? "" : formatMs((r.endedAt ?? now) - r.startedAt)
      const running = r.progress !== undefined && r.status === "running"
      const bar = running ? `  ${formatProgress(r.progress!, now)}` : ""
      const message = running && r.progress!.message ? `  ${r.progress!.message}` : ""
      const gpus = r.gpus !== undefined && r.gpus.length > 0 ? ` gpu ${r.gpus.join(",")}` : ""
      const metrics = formatMetrics(r.metrics, r.inv)
      return fit(`${icons[r.status]} ${fit(label(r.inv), labelWidth).padEnd(labelWidth)} ${r.status.padEnd(8)} ${elapsed.padStart(7)}${gpus}${bar}${metrics === "" ? "" : `  ${metrics}`}${message}`, width)
    })
    if (all.length > shown.length) lines.push(`  … ${all.length - shown.length} more`)
    const tracking = trackerState?.()
    lines.push(fit(`${formatMs(now - started)}  ` + [...counts.entries()].map(([s, n]) => `${s} ${n}`).join(" · ") + (tracking === undefined ? "" : ` · MLflow ${tracking}`), width))
    log(lines.join("\n"))
  }
  const begin = () => {
    if (started !== undefined || stopped) return
    started = Date.now()
    ticker = setInterval(render, 1000)
    ticker.unref()
  }
  const schedule = () => {
    begin()
    timer ??= setTimeout(() => {
      timer = undefined
      render()
    }, 100)
  }
  const stop = () => {
    if (stopped) return
    stopped = true
    if (ticker !== undefined) clearInterval(ticker)
    if (timer !== undefined) clearTimeout(timer)
    render()
    if (started !== undefined) log.done()
  }
  const handle = perInvocation((event, inv) => {
    switch (event.type) {
      case "run-started":
        return schedule()
      case "run-ended":
        return stop()
      case "status": {
        if (inv === undefined) return
        const row = rows.get(inv.hash) ?? { inv, status: event.status, metrics: {} }
        row.status = event.status
        if (event.status === "running") row.startedAt = Date.now()
        if (["done", "failed", "interrupted", "paused"].includes(event.status)) row.endedAt = Date.now()
        if (event.gpus !== undefined) row.gpus = event.gpus
        if (event.note !== undefined) row.note = event.note
        rows.set(inv.hash, row)
        return schedule()
      }
      case "progress": {
        const row = inv === undefined ? undefined : rows.get(inv.hash)
        if (row !== undefined) (row.progress ??= new ProgressTrack()).update(event.done, event.total, event.message, Date.now())
        return schedule()
      }
      case "metrics": {
        const row = inv === undefined ? undefined : rows.get(inv.hash)
        if (row !== undefined) Object.assign(row.metrics, event.values)
        return schedule()
      }
      default:
        return
    }
  })
  return {
    ...syncObserver(handle),
    stop,
    watchTracker: (state) => {
      trackerState = state
    },
    print: (line) => {
      if (started === undefined || stopped) return void stream.write(`${line}\n`)
      log.clear()
      stream.write(`${line}\n`)
      render()
    }
  }
}

export interface LineProgressOptions {
  /** print the stages' log lines (default true) */
  readonly stageLogs?: boolean
  /** keep TensorFlow's native notices among them (default false: `--verbose` turns them on) */
  readonly verbose?: boolean
  /** at most one progress line per invocation this often (default 10 s) */
  readonly progressEveryMs?: number
}

/** One line per event worth keeping in a log: status changes, throttled metrics and progress, stage log lines. */
export const lineProgress = (write: (line: string) => void, options: LineProgressOptions = {}): RunObserver => {
  const started = Date.now()
  const lastMetricsLine = new Map<string, number>()
  const lastProgressLine = new Map<string, number>()
  const tracks = new Map<string, ProgressTrack>()
  const runningSince = new Map<string, number>()
  const stamp = () => `[${formatMs(Date.now() - started).padStart(7)}]`
  return syncObserver(perInvocation((event, inv) => {
    if (inv === undefined) return
    switch (event.type) {
      case "status": {
        const { status } = event
        if (status === "pending") return
        if (status === "running") runningSince.set(inv.hash, Date.now())
        const since = runningSince.get(inv.hash)
        const parts = [stamp(), icons[status], label(inv), status]
        if (event.gpus !== undefined && event.gpus.length > 0) parts.push(`CUDA_VISIBLE_DEVICES=${event.gpus.join(",")}`)
        if ((status === "done" || status === "failed") && since !== undefined) parts.push(formatMs(Date.now() - since))
        if (event.note !== undefined) parts.push(`(${event.note})`)
        if (event.error !== undefined) parts.push(`: ${event.error}`)
        return write(parts.join(" "))
      }
      case "progress": {
        const now = Date.now()
        const track = tracks.get(inv.hash) ?? new ProgressTrack()
        tracks.set(inv.hash, track)
        track.update(event.done, event.total, event.message, now)
        const last = lastProgressLine.get(inv.hash)
        if (last !== undefined && now - last < (options.progressEveryMs ?? 10_000) && track.fraction < 1) return
        lastProgressLine.set(inv.hash, now)
        return write(`${stamp()}   ${inv.step} ${formatProgress(track, now)}${track.message ? ` ${track.message}` : ""}`)
      }
      case "metrics": {
        const last = lastMetricsLine.get(inv.hash) ?? 0
        if (Date.now() - last < 1000) return
        lastMetricsLine.set(inv.hash, Date.now())
        return write(`${stamp()}   ${inv.step} step ${event.step}: ${formatMetrics(event.values, inv, 6)}`)
      }
      case "log": {
        if (options.stageLogs === false) return
        if (options.verbose !== true && isTensorflowNoise(event.message)) return
        return write(`${stamp()}   ${inv.step} | ${event.message}`)
      }
      default:
        return
    }
  }))
}

/** One observer that hands each event to `observers` in turn (the run feeds a list of observers itself; this is for callers that hold one). */
export const combineObservers = (...observers: ReadonlyArray<RunObserver>): RunObserver => ({
  onEvent: (event) => Effect.forEach(observers, (o) => o.onEvent(event), { discard: true })
})
