/**
 * `vw2 plan` output: the JSON document tools read (docs/plan-json.md) and the human table.
 */
import { type EarlyStoppingPlan, redactConfig, type Plan, type SweepDecisions } from "@vw2/core"
import Table from "cli-table3"

export type PredictedStatus = "cached" | "to-run"

/** an unpublished invocation's last durable mid-stage checkpoint: the next run resumes there */
export interface Resumable {
  readonly step: number
  readonly total: number
}

/** What the store knows besides published entries (docs/plan-json.md, "Invocation", "Early stopping"). */
export interface PlanStoreView {
  /** the last checkpoint noted for an unpublished invocation (ArtifactStore.resumeProgress) */
  readonly resumeProgress?: (hash: string) => { readonly at: number; readonly total: number } | undefined
  /** the sweep's recorded early-stopping decisions (readSweepDecisions) */
  readonly decisions?: SweepDecisions
}

/** The rung schedule and, where recorded, each rung's decision (trial ids, best first). */
export interface EarlyStoppingView extends EarlyStoppingPlan {
  readonly decided: ReadonlyArray<{ readonly rung: number; readonly promoted: ReadonlyArray<string>; readonly stopped: ReadonlyArray<string> }>
}

export interface PlanDocument {
  readonly format: "vw2.plan/1"
  readonly experiment: string
  readonly file: string
  readonly store: string
  readonly configHash: string
  /** the preset chosen (--preset, else the file's defaultPreset); absent for a file with one size */
  readonly preset?: string
  /** the tfjs backend this machine's stages select, e.g. "tensorflow (native, libtensorflow 2.21.0)" */
  readonly tfBackend?: string
  readonly steps: ReadonlyArray<string>
  /** the resolved config, secrets masked */
  readonly config: Plan["config"]
  /** sweep axes a `--set` pinned to one value (docs/engine.md, "Overrides and sweeps") */
  readonly pinnedAxes: Plan["pinnedAxes"]
  readonly trials: Plan["trials"]
  readonly invocations: ReadonlyArray<Plan["invocations"][number] & { readonly status: PredictedStatus; readonly resumable?: Resumable }>
  /** `sweep.scheduler`: the rungs, trials per rung, and the decisions recorded so far */
  readonly earlyStopping?: EarlyStoppingView
  readonly summary: {
    readonly trials: number
    readonly invocations: number
    /** stage runs the trials would need without sharing (trials × steps) */
    readonly trialSteps: number
    readonly cached: number
    readonly toRun: number
    /** of `toRun`, how many resume from a mid-stage checkpoint */
    readonly resumable: number
  }
}

export const planDocument = (plan: Plan, file: string, store: string, isPublished: (hash: string) => boolean, view: PlanStoreView = {}): PlanDocument => {
  const invocations = plan.invocations.map((inv) => {
    if (isPublished(inv.hash)) return { ...inv, status: "cached" as PredictedStatus }
    const progress = view.resumeProgress?.(inv.hash)
    return { ...inv, status: "to-run" as PredictedStatus, ...(progress === undefined ? {} : { resumable: { step: progress.at, total: progress.total } }) }
  })
  const cached = invocations.filter((i) => i.status === "cached").length
  const trialOf = new Map(plan.invocations.map((inv) => [inv.hash, inv.trials[0] ?? inv.hash.slice(0, 10)]))
  const earlyStopping: EarlyStoppingView | undefined = plan.earlyStopping === undefined ? undefined : {
    ...plan.earlyStopping,
    decided: (view.decisions?.rungs ?? []).map((r) => ({
      rung: r.rung,
      promoted: r.promoted.map((h) => trialOf.get(h) ?? h),
      stopped: r.stopped.map((h) => trialOf.get(h) ?? h)
    }))
  }
  return {
    format: "vw2.plan/1",
    experiment: plan.experiment,
    file,
    store,
    configHash: plan.configHash,
    steps: plan.steps,
    config: redactConfig(plan.config) as Plan["config"],
    pinnedAxes: plan.pinnedAxes,
    trials: plan.trials,
    invocations,
    ...(earlyStopping === undefined ? {} : { earlyStopping }),
    summary: {
      trials: plan.trials.length,
      invocations: invocations.length,
      trialSteps: plan.trials.length * plan.steps.length,
      cached,
      toRun: invocations.length - cached,
      resumable: invocations.filter((i) => i.resumable !== undefined).length
    }
  }
}

const maxTrialRows = 40

const trialHeading = (trial: PlanDocument["trials"][number]) =>
  Object.keys(trial.assignments).length === 0 ? trial.id : `${trial.id}\n${Object.entries(trial.assignments).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n")}`

/** widest line of a rendered table */
const widthOf = (text: string) => Math.max(...text.split("\n").map((l) => l.length))

export interface RenderPlanOptions {
  /** terminal columns (default: stdout's, else 100) */
  readonly width?: number
}

/**
 * Trials as rows and steps as columns when that fits the terminal; otherwise steps as rows and as many
 * trials as fit as columns (a long pipeline of one trial reads down the screen instead of wrapping).
 */
export const renderPlan = (doc: PlanDocument, options: RenderPlanOptions = {}): string => {
  const width = options.width ?? process.stdout.columns ?? 100
  const status = new Map(doc.invocations.map((i) => [i.hash, i.status]))
  const resumable = new Map(doc.invocations.flatMap((i) => (i.resumable === undefined ? [] : [[i.hash, i.resumable] as const])))
  const statusText = (hash: string) => {
    if (status.get(hash) === "cached") return "cached"
    const at = resumable.get(hash)
    return at === undefined ? "to run" : `resume ${at.step}/${at.total}`
  }
  const style = { head: [], border: [], compact: true }
  const byTrial = new Table({ head: ["trial", "seed", ...doc.steps], style })
  for (const trial of doc.trials.slice(0, maxTrialRows)) {
    byTrial.push([trialHeading(trial), String(trial.seed), ...doc.steps.map((step) => `${trial.invocations[step]!.slice(0, 10)}\n${statusText(trial.invocations[step]!)}`)])
  }
  let table = byTrial.toString()
  let shownTrials = Math.min(doc.trials.length, maxTrialRows)
  if (widthOf(table) > width) {
    const stepWidth = Math.max(4, ...doc.steps.map((s) => s.length)) + 3
    shownTrials = Math.max(1, Math.min(doc.trials.length, Math.floor((width - stepWidth) / 20)))
    const trials = doc.trials.slice(0, shownTrials)
    const byStep = new Table({ head: ["step", ...trials.map((t) => `${trialHeading(t)}\nseed ${t.seed}`)], style })
    for (const step of doc.steps) byStep.push([step, ...trials.map((t) => `${t.invocations[step]!.slice(0, 10)} ${statusText(t.invocations[step]!)}`)])
    table = byStep.toString()
  }
  const lines = [
    `experiment ${doc.experiment}${doc.preset === undefined ? "" : `  preset ${doc.preset}`}  (${doc.file})`,
    `config hash ${doc.configHash.slice(0, 16)}  store ${doc.store}${doc.tfBackend === undefined ? "" : `  tfjs ${doc.tfBackend}`}`,
    ...doc.pinnedAxes.map((axis) => `pinned by --set: ${axis}`),
    table
  ]
  if (doc.trials.length > shownTrials) lines.push(`… ${doc.trials.length - shownTrials} more trials (vw2 plan --json lists all)`)
  if (doc.earlyStopping !== undefined) lines.push(...renderEarlyStopping(doc.earlyStopping))
  const s = doc.summary
  lines.push(
    `${s.trials} trial(s) × ${doc.steps.length} step(s) = ${s.trialSteps} stage runs → ${s.invocations} distinct invocation(s): ${s.cached} cached, ${s.toRun} to run` +
      (s.resumable > 0 ? ` (${s.resumable} resumable from a checkpoint)` : "")
  )
  return lines.join("\n")
}

/** "early stopping: asha on ar/loss (min), η = 2" and one line per rung: its step, trials, and the decision if made. */
const renderEarlyStopping = (es: EarlyStoppingView): Array<string> => {
  const head = `early stopping: ${es.kind} on ${es.metric} (${es.mode})${es.kind === "asha" ? `, η = ${es.reductionFactor}` : ""}; ${es.step} pauses at each rung, then the rest run to the end`
  const rows = es.schedule.map((row, i) => {
    const decided = es.decided[i]
    const plan = row.keep === undefined ? `${row.trials} trial(s) → median rule` : `${row.trials} trial(s) → keep ${row.keep}`
    const outcome = decided === undefined ? "" : `  decided: promoted ${decided.promoted.join(", ")}; stopped ${decided.stopped.join(", ") || "none"}`
    return `  rung ${i} @ step ${row.rung}: ${plan}${outcome}`
  })
  return [head, ...rows]
}
