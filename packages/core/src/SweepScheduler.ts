/**
 * Runs a sweep with early stopping (`sweep.scheduler`, EarlyStopping.ts) from outside the Scheduler: one
 * `runPlan` per rung on a sub-plan whose swept-step invocations carry `pauseAtStep`, then one for the survivors
 * to the end. docs/engine.md, "Early stopping".
 *
 *   rung i: the alive trials' swept invocations (and whatever they depend on: ordinary cached invocations, so
 *           shared upstream stages run once) train to r_i and pause (status `paused`, checkpoint in resumeDir)
 *        → each one's metric at r_i is written to sweeps/<configHash>/reports/<i>-<hash>.json as it pauses
 *        → the decision (EarlyStopping.decideRung) goes to sweeps/<configHash>/decisions.json; the stopped
 *          trials' resume dirs are dropped and they are `stopped` (not failed, never published)
 *   final:  the promoted trials run without pauseAtStep: they resume from their last rung checkpoint, finish,
 *           and publish like any invocation.
 * A rerun replays every recorded decision and report instead of training: a finished sweep is all cache hits.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ArtifactStore } from "./ArtifactStore.ts"
import type { EarlyStoppingPlan, RungReport } from "./EarlyStopping.ts"
import { decideRung, valueAtRung } from "./EarlyStopping.ts"
import type { Executor } from "./Executor.ts"
import type { Plan, PlannedInvocation } from "./Planner.ts"
import type { RunObserver } from "./RunEvent.ts"
import type { InvocationResult, PlanRejected, RunOptions, RunSummary } from "./Scheduler.ts"
import { runPlan } from "./Scheduler.ts"
import { rolledUpKey } from "./SweepRollup.ts"
import type { Tracker } from "./Tracker.ts"

export interface RungRecord {
  readonly rung: number
  readonly reports: ReadonlyArray<RungReport>
  /** swept invocation hashes, best first */
  readonly promoted: ReadonlyArray<string>
  readonly stopped: ReadonlyArray<string>
  readonly decidedAt: string
}

/** `sweeps/<configHash>/decisions.json` */
export interface SweepDecisions {
  readonly format: 1
  readonly experiment: string
  readonly configHash: string
  readonly scheduler: Pick<EarlyStoppingPlan, "kind" | "metric" | "mode" | "reductionFactor" | "rungs">
  readonly rungs: ReadonlyArray<RungRecord>
}

export interface SweepSummary extends RunSummary {
  /** the rung decisions, replayed or made by this run */
  readonly decisions: ReadonlyArray<RungRecord>
  /** `runPlan` phases this run started (0 rung phases on a full replay, plus the final one) */
  readonly phases: ReadonlyArray<string>
}

export const sweepDir = (storeRoot: string, configHash: string): string => path.join(storeRoot, "sweeps", configHash)

const writeJsonAtomic = (file: string, value: unknown) => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n")
  fs.renameSync(tmp, file)
}

const readJson = <A>(file: string): A | undefined => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as A
  } catch {
    return undefined
  }
}

/** The recorded decisions of a sweep, when they were made under the same scheduler (else none: decide afresh). */
export const readSweepDecisions = (storeRoot: string, plan: Plan): SweepDecisions | undefined => {
  const es = plan.earlyStopping
  if (es === undefined) return undefined
  const recorded = readJson<SweepDecisions>(path.join(sweepDir(storeRoot, plan.configHash), "decisions.json"))
  if (recorded?.format !== 1 || recorded.configHash !== plan.configHash) return undefined
  const same = recorded.scheduler.kind === es.kind && recorded.scheduler.metric === es.metric && recorded.scheduler.mode === es.mode &&
    recorded.scheduler.reductionFactor === es.reductionFactor && recorded.rungs.every((r, i) => r.rung === es.rungs[i])
  return same ? recorded : undefined
}

/** The swept invocations (one per distinct config of the swept step), in plan order, with their first trial. */
const unitsOf = (plan: Plan, es: EarlyStoppingPlan): Array<PlannedInvocation> => {
  const hashes = new Set(plan.trials.map((t) => t.invocations[es.step]!))
  return plan.invocations.filter((inv) => hashes.has(inv.hash))
}

/**
 * The part of `plan` that the trials using `units` need. `rungOnly`: only the units and what they depend on
 * (a rung phase), each unit carrying `pauseAtStep`; otherwise those trials' whole pipelines.
 */
export const subPlan = (plan: Plan, step: string, units: ReadonlySet<string>, pauseAtStep?: number): Plan => {
  const trials = plan.trials.filter((t) => units.has(t.invocations[step]!))
  const trialIds = new Set(trials.map((t) => t.id))
  const byHash = new Map(plan.invocations.map((inv) => [inv.hash, inv]))
  const needed = new Set<string>()
  const add = (hash: string) => {
    if (needed.has(hash)) return
    needed.add(hash)
    for (const dep of byHash.get(hash)!.dependsOn) add(dep)
  }
  if (pauseAtStep !== undefined) for (const unit of units) add(unit)
  else for (const trial of trials) for (const hash of Object.values(trial.invocations)) add(hash)
  return {
    ...plan,
    trials: trials.map((t) => ({ ...t, invocations: Object.fromEntries(Object.entries(t.invocations).filter(([, h]) => needed.has(h))) })),
    invocations: plan.invocations.filter((inv) => needed.has(inv.hash)).map((inv) => ({
      ...inv,
      trials: inv.trials.filter((id) => trialIds.has(id)),
      ...(pauseAtStep !== undefined && units.has(inv.hash) ? { pauseAtStep } : {})
    }))
  }
}

/**
 * Runs `options.plan`; with `plan.earlyStopping` rung by rung as described above, else it is `runPlan`.
 * The returned summary has one result per invocation of the whole plan: the stopped trials' invocations `stopped`.
 */
export const runSweepWithEarlyStopping = (options: RunOptions): Effect.Effect<SweepSummary, PlanRejected, ArtifactStore | Executor | Tracker> =>
  Effect.gen(function*() {
    const { plan } = options
    const es = plan.earlyStopping
    if (es === undefined) return { ...(yield* runPlan(options)), decisions: [], phases: ["all"] }
    // a run tree records one run: the caller's records the final phase, each rung phase gets its own
    const { runTree: _finalRunTree, ...rungOptions } = options
    const store = yield* ArtifactStore
    const startedAt = Date.now()
    const dir = sweepDir(store.root, plan.configHash)
    const reportFile = (rungIndex: number, hash: string) => path.join(dir, "reports", `${rungIndex}-${hash}.json`)
    const recorded = readSweepDecisions(store.root, plan)
    const decisions: Array<RungRecord> = []
    const phases: Array<string> = []
    const units = unitsOf(plan, es)
    const unitTrial = new Map(units.map((u) => [u.hash, u.trials[0]!]))
    let alive = units.map((u) => u.hash)
    const stoppedAt = new Map<string, { rung: number; index: number; value?: number }>()
    // `metric` is the rolled-up name (`ar` reporting `ar/heldout/nll` rolls up as `ar/heldout/nll`): as sweep.objective and vw2 runs
    const metricOf = (values: Readonly<Record<string, number>> | undefined): number | undefined =>
      Object.entries(values ?? {}).find(([k]) => rolledUpKey(es.step, k) === es.metric)?.[1]
    const phaseResults: Array<InvocationResult> = []

    const save = () =>
      writeJsonAtomic(path.join(dir, "decisions.json"), {
        format: 1,
        experiment: plan.experiment,
        configHash: plan.configHash,
        scheduler: { kind: es.kind, metric: es.metric, mode: es.mode, reductionFactor: es.reductionFactor, rungs: es.rungs },
        rungs: decisions
      } satisfies SweepDecisions)

    for (const [index, rung] of es.rungs.entries()) {
      const replay = recorded?.rungs[index]
      if (replay !== undefined) {
        decisions.push(replay)
        const aliveSet = new Set(alive)
        for (const hash of replay.stopped) {
          const value = replay.reports.find((r) => r.hash === hash)?.value
          if (aliveSet.has(hash)) stoppedAt.set(hash, { rung, index, ...(value === undefined ? {} : { value }) })
        }
        alive = replay.promoted.filter((h) => aliveSet.has(h))
        continue
      }
      const reportOf = (hash: string): RungReport | undefined => readJson<RungReport>(reportFile(index, hash))
      // a trial that finished already (its stage ran to the end) is compared on its final value
      const fromManifest = (hash: string): RungReport | undefined => {
        const manifest = store.readManifest(hash)
        if (manifest === undefined || !store.isPublished(hash)) return undefined
        const value = metricOf(manifest.metrics)
        return { hash, trial: unitTrial.get(hash)!, ...(value === undefined ? {} : { value }) }
      }
      const toRun = alive.filter((h) => reportOf(h) === undefined && fromManifest(h) === undefined)
      if (toRun.length > 0) {
        const history = new Map<string, Array<{ step: number; value: number }>>()
        const running = new Set(toRun)
        const reporter: RunObserver = {
          onEvent: (event) =>
            Effect.sync(() => {
              if (event.type === "metrics" && event.invocation !== undefined && running.has(event.invocation)) {
                const value = metricOf(event.values)
                if (value !== undefined) history.set(event.invocation, [...(history.get(event.invocation) ?? []), { step: event.step, value }])
              }
              // the report is durable as soon as the trial pauses: a driver killed later in the rung keeps it
              if (event.type === "status" && event.status === "paused" && running.has(event.invocation)) {
                const value = valueAtRung(history.get(event.invocation) ?? [], rung)
                if (value !== undefined || reportOf(event.invocation) === undefined) {
                  writeJsonAtomic(reportFile(index, event.invocation), { hash: event.invocation, trial: unitTrial.get(event.invocation)!, ...(value === undefined ? {} : { value }) } satisfies RungReport)
                }
              }
            })
        }
        const phase = `rung ${index} (step ${rung}): ${toRun.length} trial(s)`
        phases.push(phase)
        const summary = yield* runPlan({ ...rungOptions, observers: [reporter, ...(options.observers ?? [])], plan: subPlan(plan, es.step, new Set(toRun), rung), tags: { ...options.tags, "vw2.sweep_phase": phase } })
        phaseResults.push(...summary.results)
        const unsettled = toRun.filter((h) => reportOf(h) === undefined && fromManifest(h) === undefined)
        if (summary.status !== "succeeded" || unsettled.length > 0) {
          // no decision on partial reports: a rerun resumes the rung (its paused trials return at once)
          save()
          return { ...summary, durationMs: Date.now() - startedAt, status: "failed" as const, decisions, phases }
        }
      }
      const reports = alive.map((h) => reportOf(h) ?? fromManifest(h)!)
      const decision = decideRung(es, reports)
      const record: RungRecord = { rung, reports, promoted: decision.promoted, stopped: decision.stopped, decidedAt: new Date().toISOString() }
      decisions.push(record)
      save()
      for (const hash of decision.stopped) {
        const value = reports.find((r) => r.hash === hash)?.value
        stoppedAt.set(hash, { rung, index, ...(value === undefined ? {} : { value }) })
        // a stopped trial is never resumed: its checkpoints go now (gc would only find them later)
        yield* store.dropResume(hash)
      }
      alive = [...decision.promoted]
    }
    if (recorded === undefined || recorded.rungs.length !== decisions.length) save()

    phases.push(`final: ${alive.length} trial(s) to the end`)
    const final = yield* runPlan({ ...options, plan: subPlan(plan, es.step, new Set(alive)), tags: { ...options.tags, "vw2.sweep_phase": "final" } })
    const byHash = new Map(final.results.map((r) => [r.hash, r]))
    const lastPhase = new Map(phaseResults.map((r) => [r.hash, r]))
    const stoppedTrials = new Map<string, { rung: number; index: number; value?: number }>()
    for (const trial of plan.trials) {
      const stop = stoppedAt.get(trial.invocations[es.step]!)
      if (stop !== undefined) stoppedTrials.set(trial.id, stop)
    }
    const results: Array<InvocationResult> = plan.invocations.map((inv) => {
      const ran = byHash.get(inv.hash)
      if (ran !== undefined) return ran
      const stop = inv.trials.map((t) => stoppedTrials.get(t)).find((s) => s !== undefined)
      const earlier = lastPhase.get(inv.hash)
      const value = stoppedAt.get(inv.hash)?.value
      return {
        hash: inv.hash,
        step: inv.step,
        stage: inv.stage,
        trials: inv.trials,
        headline: inv.headline,
        metrics: earlier?.metrics ?? (value === undefined ? {} : { [es.key]: value }),
        status: "stopped" as const,
        ...(stop === undefined ? {} : { error: `stopped by ${es.kind} at rung ${stop.index} (step ${stop.rung})${stop.value === undefined ? "" : `: ${es.metric} = ${stop.value}`}` })
      }
    })
    return { ...final, durationMs: Date.now() - startedAt, results, decisions, phases }
  })
