/**
 * `vw2 plan` output: the JSON document tools read (docs/plan-json.md) and the human table.
 */
import type { Plan } from "@vw2/core"
import Table from "cli-table3"

export type PredictedStatus = "cached" | "to-run"

export interface PlanDocument {
  readonly format: "vw2.plan/1"
  readonly experiment: string
  readonly file: string
  readonly store: string
  readonly configHash: string
  /** the tfjs backend this machine's stages select, e.g. "tensorflow (native, libtensorflow 2.21.0)" */
  readonly tfBackend?: string
  readonly steps: ReadonlyArray<string>
  readonly config: Plan["config"]
  readonly trials: Plan["trials"]
  readonly invocations: ReadonlyArray<Plan["invocations"][number] & { readonly status: PredictedStatus }>
  readonly summary: {
    readonly trials: number
    readonly invocations: number
    /** stage runs the trials would need without sharing (trials × steps) */
    readonly trialSteps: number
    readonly cached: number
    readonly toRun: number
  }
}

export const planDocument = (plan: Plan, file: string, store: string, isPublished: (hash: string) => boolean): PlanDocument => {
  const invocations = plan.invocations.map((inv) => ({ ...inv, status: (isPublished(inv.hash) ? "cached" : "to-run") as PredictedStatus }))
  const cached = invocations.filter((i) => i.status === "cached").length
  return {
    format: "vw2.plan/1",
    experiment: plan.experiment,
    file,
    store,
    configHash: plan.configHash,
    steps: plan.steps,
    config: plan.config,
    trials: plan.trials,
    invocations,
    summary: {
      trials: plan.trials.length,
      invocations: invocations.length,
      trialSteps: plan.trials.length * plan.steps.length,
      cached,
      toRun: invocations.length - cached
    }
  }
}

const maxTrialRows = 40

export const renderPlan = (doc: PlanDocument): string => {
  const status = new Map(doc.invocations.map((i) => [i.hash, i.status]))
  const table = new Table({ head: ["trial", "seed", ...doc.steps], style: { head: [], border: [], compact: true } })
  for (const trial of doc.trials.slice(0, maxTrialRows)) {
    table.push([
      Object.keys(trial.assignments).length === 0 ? trial.id : `${trial.id}\n${Object.entries(trial.assignments).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n")}`,
      String(trial.seed),
      ...doc.steps.map((step) => {
        const hash = trial.invocations[step]!
        return `${hash.slice(0, 10)}\n${status.get(hash) === "cached" ? "cached" : "to run"}`
      })
    ])
  }
  const lines = [
    `experiment ${doc.experiment}  (${doc.file})`,
    `config hash ${doc.configHash.slice(0, 16)}  store ${doc.store}${doc.tfBackend === undefined ? "" : `  tfjs ${doc.tfBackend}`}`,
    table.toString()
  ]
  if (doc.trials.length > maxTrialRows) lines.push(`… ${doc.trials.length - maxTrialRows} more trials (vw2 plan --json lists all)`)
  const s = doc.summary
  lines.push(
    `${s.trials} trial(s) × ${doc.steps.length} step(s) = ${s.trialSteps} stage runs → ${s.invocations} distinct invocation(s): ${s.cached} cached, ${s.toRun} to run`
  )
  return lines.join("\n")
}
