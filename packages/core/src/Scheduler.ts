/**
 * The scheduler: runs a Plan on the Executor, reusing what the ArtifactStore already holds. It keeps the DAG,
 * the cache, the locks and publishing, and reports everything as one ordered stream of RunEvents (RunEvent.ts):
 * its own life-cycle events, and the running stages' events stamped with their invocation. It never prints and
 * never calls the tracker: terminal progress, log files and the MLflow run tree (RunTree.ts) are observers of that
 * stream side by side (docs/engine.md, "The run-event stream").
 *
 * Per invocation (all invocations are started at once; each waits for its inputs, the executor queues
 * them by resources):
 *   inputs failed/skipped → skipped
 *   store entry verifies → cached (a corrupt entry is moved to trash/ and recomputed)
 *   otherwise: take the invocation lock (another vw2 process may be computing it; wait, then re-check),
 *   stage a temp dir, run on the executor, publish atomically, release the lock.
 * A failure marks only its dependents skipped; interruption kills running workers and discards staging dirs;
 * the run tree then ends every run it opened as KILLED.
 *
 * The one thing the scheduler needs back from tracking is the producer link a manifest records
 * (`tracking.runId`: a later cache hit names the run that made the entry): it asks the run tree, through
 * `RunLinks`, for the stage run it opened when the invocation started.
 */
import { Cause, Data, Deferred, Effect, Exit, Fiber, Queue } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Manifest } from "./ArtifactStore.ts"
import { ArtifactStore } from "./ArtifactStore.ts"
import { Executor } from "./Executor.ts"
import type { Plan, PlannedInvocation } from "./Planner.ts"
import { redactText } from "./Redaction.ts"
import type { InvocationEvent, InvocationStatus, RunEvent, RunObserver } from "./RunEvent.ts"
import type { RunLinks } from "./RunTree.ts"
import { makeRunTree } from "./RunTree.ts"
import type { InputArtifact } from "./Stage.ts"
import { trialMetrics } from "./SweepRollup.ts"
import { makeSystemSampler } from "./SystemMetrics.ts"
// issue 15: retries, time limits and early-stopping rungs (docs/engine.md, "Retries and time limits")
import { pausedAt, runAttempts } from "./StepPolicy.ts"
import { Tracker } from "./Tracker.ts"

export type { InvocationStatus } from "./RunEvent.ts"

export interface InvocationResult {
  readonly hash: string
  readonly step: string
  readonly stage: string
  readonly trials: ReadonlyArray<string>
  /** the stage's declared headline metrics */
  readonly headline: ReadonlyArray<string>
  readonly status: InvocationStatus
  readonly durationMs?: number
  readonly gpus?: ReadonlyArray<string>
  readonly error?: string
  /** last lines of a failed worker's stderr */
  readonly stderrTail?: string
  /** last value of each metric the stage reported */
  readonly metrics: Readonly<Record<string, number>>
  /** tracker run that produced the artifact (this run's, or the one recorded in the manifest for a cache hit) */
  readonly producedBy?: string
}

export interface RunSummary {
  readonly status: "succeeded" | "failed" | "interrupted"
  readonly experimentRunId: string
  readonly durationMs: number
  readonly results: ReadonlyArray<InvocationResult>
}

export interface RunOptions {
  readonly plan: Plan
  /** absolute path of the experiment file (workers import it) */
  readonly experimentFile: string
  /** who watches the run besides the run tree: progress, log files, tests; each sees every event, in order */
  readonly observers?: ReadonlyArray<RunObserver>
  /** the observer that records the run in the tracker and answers the producer link (default: a RunTree on the Tracker service) */
  readonly runTree?: RunObserver & RunLinks
  /** extra tags for the experiment run (command line, git commit) */
  readonly tags?: Readonly<Record<string, string>>
  /** a running stage's system metrics (CPU, memory, RSS, GPUs) are sampled this often (default 5 s), and once at its end */
  readonly systemMetricsMs?: number
  /** files for the experiment run's artifacts (resolved config, experiment file, git diff: cli RunContext.ts) */
  readonly artifacts?: ReadonlyArray<{ readonly localPath: string; readonly artifactPath: string }>
}

/** The plan cannot run on this executor (e.g. a stage needs more GPUs than it has); nothing was started. */
export class PlanRejected extends Data.TaggedError("PlanRejected")<{ readonly problems: ReadonlyArray<string> }> {
  override get message() {
    return `the plan cannot run on this executor:\n${this.problems.map((p) => `  ${p}`).join("\n")}`
  }
}

type Outcome = "ok" | "failed" | "skipped" | "interrupted" | "paused"

/** issue 15: an invocation paused at an early-stopping rung settled without failing (it is not published) */
const settledOk = (status: InvocationStatus | undefined): boolean => status === "done" || status === "cached" || status === "paused"

/** What a status event says besides the status (RunEvent.ts, `status`). */
type StatusDetail = Omit<Extract<RunEvent, { readonly type: "status" }>, "type" | "invocation" | "status" | "timestamp">

/** the finite values of a metrics record (what a manifest can hold: JSON has no NaN) */
const finiteMetrics = (metrics: Readonly<Record<string, unknown>> | undefined): Record<string, number> =>
  Object.fromEntries(Object.entries(metrics ?? {}).filter((e): e is [string, number] => typeof e[1] === "number" && Number.isFinite(e[1])))

/**
 * Feeds every observer the same events in emission order, each through its own queue and fiber, so a slow
 * observer (the tracker) never holds up the run or the others. An observer that fails is reported once on
 * stderr and keeps getting events: its failure never fails the run. `close` waits until each has seen all.
 */
export const feedObservers = (observers: ReadonlyArray<RunObserver>) =>
  Effect.gen(function*() {
    const feeds = yield* Effect.forEach(observers, (observer, index) =>
      Effect.gen(function*() {
        const queue = yield* Queue.unbounded<RunEvent, Cause.Done>()
        let warned = false
        const deliver = (event: RunEvent) =>
          Effect.suspend(() => observer.onEvent(event)).pipe(
            Effect.catchCause((cause) =>
              Effect.sync(() => {
                if (warned) return
                warned = true
                process.stderr.write(`vw2: run observer #${index + 1} failed on a ${event.type} event (the run goes on): ${Cause.pretty(cause).split("\n")[0]}\n`)
              })
            )
          )
        const drain = Effect.forever(Effect.flatMap(Queue.takeAll(queue), (batch) => Effect.forEach(batch, deliver, { discard: true })))
        // detached: the observers must see the end of an interrupted run too; `close` waits for them
        const fiber = yield* Effect.forkDetach(Effect.catch(drain, () => Effect.void))
        return { queue, fiber }
      }))
    return {
      emit: (event: RunEvent): void => {
        for (const feed of feeds) Queue.offerUnsafe(feed.queue, event)
      },
      close: Effect.forEach(feeds, (feed) => Effect.andThen(Queue.end(feed.queue), Fiber.await(feed.fiber)), { discard: true })
    }
  })

export const runPlan = (options: RunOptions): Effect.Effect<RunSummary, PlanRejected, ArtifactStore | Executor | Tracker> =>
  Effect.gen(function*() {
    const { plan } = options
    const store = yield* ArtifactStore
    const executor = yield* Executor
    const runTree = options.runTree ?? makeRunTree(yield* Tracker)
    const startedAt = Date.now()

    const problems = plan.invocations.flatMap((inv) => {
      const why = executor.canRun(inv.resources)
      return why === undefined ? [] : [`${inv.step} (${inv.hash.slice(0, 12)}): ${why}`]
    })
    if (problems.length > 0) return yield* new PlanRejected({ problems: [...new Set(problems)] })
    yield* store.cleanStaleStaging

    const observers = yield* feedObservers([runTree, ...(options.observers ?? [])])
    const emit = observers.emit
    /** a running stage's event, as observers see it: stamped with its invocation; log lines with secrets masked */
    const forward = (inv: PlannedInvocation, event: InvocationEvent) =>
      emit(event.type === "log" ? { ...event, message: redactText(event.message), invocation: inv.hash } : { ...event, invocation: inv.hash })

    emit({ type: "run-started", plan, backend: executor.name, tags: options.tags ?? {}, artifacts: options.artifacts ?? [], timestamp: Date.now() })
    for (const trial of plan.trials) emit({ type: "trial-started", trial: trial.id, timestamp: Date.now() })

    const results = new Map<string, InvocationResult>()
    const setStatus = (inv: PlannedInvocation, status: InvocationStatus, detail: StatusDetail = {}, result: Partial<InvocationResult> = {}) => {
      const previous = results.get(inv.hash)
      results.set(inv.hash, {
        hash: inv.hash,
        step: inv.step,
        stage: inv.stage,
        trials: inv.trials,
        headline: inv.headline,
        metrics: previous?.metrics ?? {},
        ...previous,
        ...detail,
        ...result,
        status
      })
      emit({ type: "status", invocation: inv.hash, status, ...detail, timestamp: Date.now() })
    }
    const cacheHit = (inv: PlannedInvocation, manifest: Manifest) => {
      const metrics = finiteMetrics(manifest.metrics)
      const producedBy = manifest.tracking.runId
      emit({ type: "cache-hit", invocation: inv.hash, ...(producedBy === undefined ? {} : { producedBy }), metrics, timestamp: Date.now() })
      setStatus(inv, "cached", {}, { metrics, ...(producedBy === undefined ? {} : { producedBy }) })
    }

    const finish = Effect.gen(function*() {
      const outcomes = new Map(plan.invocations.map((inv) => [inv.hash, Deferred.makeUnsafe<Outcome>()]))
      for (const inv of plan.invocations) setStatus(inv, "pending")

      const inputsOf = (inv: PlannedInvocation): Record<string, InputArtifact> =>
        Object.fromEntries(Object.entries(inv.inputs).map(([name, input]) => [name, { dir: path.join(store.entryDir(input.hash), input.output), kind: input.kind, hash: input.hash }]))

      const execute = (inv: PlannedInvocation, note: string | undefined): Effect.Effect<Outcome> =>
        Effect.scoped(Effect.gen(function*() {
          yield* store.lock(inv.hash, () => setStatus(inv, "waiting", { note: "another vw2 process is computing it" }))
          const again = yield* Effect.orElseSucceed(store.verify(inv.hash), () => ({ _tag: "absent" as const }))
          if (again._tag === "valid") {
            cacheHit(inv, again.manifest)
            return "ok" as const
          }
          const staging = yield* Effect.acquireRelease(
            Effect.orDie(store.stage(inv.hash)),
            (s) => store.discard(s) // after a successful publish the staging dir is gone already
          )
          const lastMetrics: Record<string, number> = {}
          // system metrics are events of their own: not in lastMetrics, the manifest or the roll-ups
          let sampler: ReturnType<typeof makeSystemSampler> | undefined
          let systemStep = 0
          const sampleSystem = Effect.suspend(() => {
            if (sampler === undefined) return Effect.void
            const step = systemStep++
            return Effect.map(sampler.sample, (values) => {
              if (Object.keys(values).length > 0) emit({ type: "system-metrics", invocation: inv.hash, step, timestamp: Date.now(), values })
            })
          })
          yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(options.systemMetricsMs ?? 5000), sampleSystem)))
          let startedAtMs = Date.now()
          let running = false
          // issue 15: the last durable mid-stage checkpoint the stage reported (plan / vw2 status: "resumable at step k/K")
          let lastCheckpoint: { readonly step: number; readonly total: number } | undefined
          const onEvent = (event: InvocationEvent) => {
            switch (event.type) {
              case "started": {
                startedAtMs = Date.now()
                running = true
                const gpus = event.gpus ?? []
                sampler = makeSystemSampler({ gpus, ...(event.pid === undefined ? {} : { pid: event.pid }) })
                setStatus(inv, "running", note === undefined ? { gpus } : { gpus, note })
                return
              }
              case "metrics":
                for (const [key, value] of Object.entries(event.values)) lastMetrics[key] = value
                results.set(inv.hash, { ...results.get(inv.hash)!, metrics: { ...lastMetrics } })
                return forward(inv, event)
              case "done":
              case "failed": // the executor's outcome says it
                return
              case "checkpoint": // issue 15
                lastCheckpoint = { step: event.step, total: event.total }
                store.recordCheckpoint({ hash: inv.hash, step: inv.step, stage: inv.stage, at: event.step, total: event.total })
                return forward(inv, event)
              default:
                return forward(inv, event)
            }
          }
          const request = {
            experimentFile: options.experimentFile,
            step: inv.step,
            stageName: inv.stage,
            config: inv.config,
            seed: inv.seed,
            invocationHash: inv.hash,
            inputs: inputsOf(inv),
            outputRoot: staging.outputRoot,
            scratchDir: staging.scratchDir,
            resumeDir: store.resumeDirOf(inv.hash),
            ...(inv.pauseAtStep === undefined ? {} : { pauseAtStep: inv.pauseAtStep }), // issue 15
            resources: inv.resources
          }
          // issue 15: steps.<step>.retries / .timeout; a retry starts from a clean staging dir and resumes from resumeDir
          const ran = yield* Effect.exit(runAttempts(inv, () => executor.run(request, onEvent), {
            beforeRetry: (attempt, error) =>
              Effect.sync(() => {
                fs.rmSync(staging.outputRoot, { recursive: true, force: true })
                fs.mkdirSync(staging.outputRoot, { recursive: true })
                const message = `retrying (attempt ${attempt} of ${(inv.retries ?? 0) + 1}) after: ${error.message}`
                emit({ type: "log", message, timestamp: Date.now(), invocation: inv.hash })
              })
          }))
          const durationMs = Date.now() - startedAtMs
          if (Exit.isFailure(ran) && Exit.hasInterrupts(ran)) return yield* Effect.interrupt
          yield* sampleSystem // at least one sample per stage, however short
          if (Exit.isFailure(ran)) {
            const error = ran.cause.reasons.map((r) => (r._tag === "Fail" ? r.error.message : String(r._tag === "Die" ? r.defect : "interrupted"))).join("; ")
            const stderrTail = ran.cause.reasons.flatMap((r) => (r._tag === "Fail" && r.error.stderrTail ? [r.error.stderrTail] : [])).join("\n")
            setStatus(inv, "failed", stderrTail === "" ? { error, durationMs } : { error, durationMs, stderrTail })
            return "failed" as const
          }
          // the run tree opens the stage run when the invocation starts; an executor that never said so still gets one
          if (!running) setStatus(inv, "running", { gpus: ran.value.gpus })
          // issue 15: paused at an early-stopping rung: its checkpoint stays in resumeDir and nothing is published
          const rung = pausedAt(inv, lastCheckpoint, staging.outputRoot)
          if (rung !== undefined) {
            setStatus(inv, "paused", { durationMs, gpus: ran.value.gpus, note: `paused at step ${rung}/${lastCheckpoint!.total}` })
            return "paused" as const
          }
          const producedBy = yield* runTree.stageRun(inv.hash)
          // uninterruptible: a Ctrl-C waits for the rename instead of racing the staging cleanup
          const published = yield* Effect.exit(Effect.uninterruptible(store.publish(inv.hash, staging, {
            hash: inv.hash,
            step: inv.step,
            stage: inv.stage,
            stageVersion: inv.stageVersion,
            seed: inv.seed,
            config: inv.config,
            inputs: Object.fromEntries(Object.entries(inv.inputs).map(([k, v]) => [k, `${v.hash}/${v.output}`])),
            outputs: inv.outputs,
            uploads: ran.value.uploads,
            tracking: { runId: producedBy },
            metrics: finiteMetrics(lastMetrics),
            durationMs
          })))
          if (Exit.isFailure(published)) {
            const error = published.cause.reasons.map((r) => (r._tag === "Fail" ? r.error.message : String(r))).join("; ")
            setStatus(inv, "failed", { error, durationMs, publishing: true })
            return "failed" as const
          }
          const entryDir = store.entryDir(inv.hash)
          // the published outputs supersede the mid-stage checkpoints
          yield* store.dropResume(inv.hash)
          emit({
            type: "published",
            invocation: inv.hash,
            entryDir,
            files: published.value.files.map((f) => f.path),
            uploads: ran.value.uploads.filter((u) => fs.existsSync(path.join(entryDir, u))),
            metrics: finiteMetrics(lastMetrics),
            durationMs,
            gpus: ran.value.gpus,
            timestamp: Date.now()
          })
          setStatus(inv, "done", { durationMs, gpus: ran.value.gpus }, producedBy === undefined ? {} : { producedBy })
          return "ok" as const
        }))

      const runOne = (inv: PlannedInvocation): Effect.Effect<void> =>
        Effect.gen(function*() {
          const deps = yield* Effect.forEach(inv.dependsOn, (h) => Deferred.await(outcomes.get(h)!))
          let outcome: Outcome
          if (deps.some((d) => d !== "ok")) {
            const failedStep = inv.dependsOn.map((h) => results.get(h)!).find((r) => r.status !== "done" && r.status !== "cached")
            setStatus(inv, "skipped", { error: `input from ${failedStep?.step ?? "an upstream step"} is missing (${failedStep?.status ?? "failed"})` })
            outcome = "skipped"
          } else {
            const found = yield* Effect.orElseSucceed(store.verify(inv.hash), () => ({ _tag: "absent" as const }))
            if (found._tag === "valid") {
              cacheHit(inv, found.manifest)
              outcome = "ok"
            } else {
              const note = found._tag === "corrupt" ? `cached entry was corrupt (${found.reason}); recomputing` : undefined
              if (note !== undefined) emit({ type: "log", message: note, timestamp: Date.now(), invocation: inv.hash })
              outcome = yield* execute(inv, note)
            }
          }
          yield* Deferred.succeed(outcomes.get(inv.hash)!, outcome)
        }).pipe(
          Effect.onInterrupt(() =>
            Effect.gen(function*() {
              const current = results.get(inv.hash)?.status
              if (current === "running" || current === "pending" || current === "waiting") setStatus(inv, "interrupted")
              yield* Deferred.succeed(outcomes.get(inv.hash)!, "interrupted")
            })
          )
        )

      yield* Effect.forEach(plan.invocations, runOne, { concurrency: "unbounded", discard: true })

      const all = plan.invocations.map((inv) => results.get(inv.hash)!)
      const succeeded = (hash: string) => settledOk(results.get(hash)?.status)
      // each trial's final metrics: its stages' last values as `<step>/<metric>` (SweepRollup.ts)
      emit({
        type: "rollup",
        trials: plan.trials.map((trial) => ({
          trial: trial.id,
          ok: Object.values(trial.invocations).every(succeeded),
          metrics: trialMetrics(Object.fromEntries(Object.entries(trial.invocations).flatMap(([step, hash]) => (succeeded(hash) ? [[step, results.get(hash)!.metrics]] : []))))
        })),
        timestamp: Date.now()
      })
      return all
    })

    // Whatever happens (interruption included), the observers see the end of the run and have handled every event.
    let ended: RunSummary["status"] = "interrupted"
    const all = yield* finish.pipe(
      Effect.tap((all) => Effect.sync(() => (ended = all.every((r) => settledOk(r.status)) ? "succeeded" : "failed"))),
      Effect.ensuring(Effect.suspend(() => {
        emit({ type: "run-ended", status: ended, durationMs: Date.now() - startedAt, timestamp: Date.now() })
        return observers.close
      }))
    )
    return {
      status: ended,
      experimentRunId: (yield* runTree.experimentRun) ?? "",
      durationMs: Date.now() - startedAt,
      results: all
    } satisfies RunSummary
  })

export type { Manifest }
