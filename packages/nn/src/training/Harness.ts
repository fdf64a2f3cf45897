/**
 * The one training loop every training stage runs (issue 15; docs/engine.md): steps with a learning-rate
 * schedule, one global-norm clip over every parameter group, AdamW per group, optional EMA, metrics at a
 * cadence as `<prefix>/<name>`, progress, cancellation between steps (ctx.signal, after a checkpoint; and Effect
 * interruption), a periodic evaluation hook, and mid-stage checkpoints in `ctx.resumeDir` every N steps and/or
 * M minutes.
 * At start the newest valid checkpoint is loaded (weights, optimiser moments, EMA, the stage's RNG and
 * data-iterator states, step), so an interrupted run continues as if it never stopped: on the pure-JS cpu
 * backend its weights and metrics equal an uninterrupted run's bit for bit. With `ctx.pauseAtStep` it trains
 * to that step, checkpoints, and returns `paused` (an early-stopping rung): the stage then writes no outputs.
 *
 * A model package gives only its step (data → loss closure) and its resumable data state.
 */
import * as tf from "@tensorflow/tfjs"
import { Cause, Data, Effect, Exit } from "effect"
import { asFloatState } from "../io/checkpoint.ts"
import type { NamedTensor } from "../io/safetensors.ts"
import type { Module } from "../Module.ts"
import type { AdamW } from "../optim/AdamW.ts"
import { clipScale, globalNorm } from "../optim/clip.ts"
import { Ema } from "../optim/Ema.ts"
import { computeGradients } from "../optim/step.ts"
import { loadNewestResumeCheckpoint, RESUME_FORMAT, type ResumeCheckpoint, writeResumeCheckpoint } from "./ResumeCheckpoint.ts"

/** What the harness needs of a stage's context (a @vw2/core StageContext has all of it). */
export interface TrainingContext {
  readonly signal: AbortSignal
  readonly metrics: (values: Readonly<Record<string, number>>, step: number) => void
  readonly progress: (done: number, total: number, message?: string) => void
  readonly log: (message: string) => void
  /** where mid-stage checkpoints live (survives a crash; never published); none: no checkpoints, no resume */
  readonly resumeDir?: string
  /** reports a durable checkpoint at `step` of `total` */
  readonly checkpointed?: (step: number, total: number) => void
  /** train to this step, checkpoint, and return `paused` (an early-stopping rung) */
  readonly pauseAtStep?: number
}

/** Parameters updated by one AdamW at `lrScale` × the schedule's rate; every group shares one gradient clip. */
export interface ParamGroup {
  readonly variables: ReadonlyMap<string, tf.Variable>
  readonly optimizer: AdamW
  readonly lrScale?: number
}

export type LossFn = () => { loss: tf.Scalar; aux?: Record<string, tf.Scalar> } | tf.Scalar

export interface StepOutcome {
  readonly step: number
  readonly loss: number
  readonly aux: Readonly<Record<string, number>>
  /** global gradient norm before clipping */
  readonly gradNorm: number
  /** the schedule's rate at this step (before a group's lrScale) */
  readonly lr: number
}

/** One step as the model package defines it: the loss over this step's batch, and what to log of it. */
export interface StepPlan {
  readonly loss: LossFn
  /** the step's metrics without prefix (default: loss, every aux value, grad_norm, lr) */
  readonly metrics?: (r: StepOutcome) => Record<string, number>
  /** frees what the step created (batch tensors); runs after the update, also on failure */
  readonly dispose?: () => void
}

/** State a stage keeps outside tensors (an RNG, a data iterator's position), saved in every checkpoint as JSON. */
export interface Resumable {
  readonly save: () => unknown
  readonly restore: (state: unknown) => void
}

export interface CheckpointCadence {
  /** checkpoint after every this many steps (0 / absent: not by steps) */
  readonly everySteps?: number
  /** checkpoint when this many minutes passed since the end of the last save (or the start) (0 / absent: not by time) */
  readonly everyMinutes?: number
  /**
   * with `everyMinutes`: wait longer when saves are slow, so saving takes at most this share of the wall time
   * (the wait after a save of d ms is at least d / maxOverhead)
   */
  readonly maxOverhead?: number
  /** checkpoints kept (the newest first); ≥ 2 so a corrupted newest one has a fallback */
  readonly keep?: number
  /** also checkpoint when ctx.signal aborts (Ctrl-C), before stopping (default true; a kill -9 gets no such chance) */
  readonly onInterrupt?: boolean
}

/**
 * Default cadence: by time, every minute or longer, so a save costs at most 2 % of the training time whatever the
 * model's size (bench/checkpoint.ts: a save of the mini dLDM warm-up takes ~60 ms, of the small one ~0.9 s, so
 * both save every minute; a 20 s save would wait 1000 s). `VW2_CHECKPOINT_EVERY` overrides it for a process:
 * `500` (steps), `5m` (minutes) or `0` (never).
 */
export const DEFAULT_CHECKPOINT_CADENCE: CheckpointCadence = { everyMinutes: 1, maxOverhead: 0.02, keep: 2 }

export const CHECKPOINT_ENV_VAR = "VW2_CHECKPOINT_EVERY"

export const cadenceFromEnv = (raw: string | undefined): CheckpointCadence | undefined => {
  if (raw === undefined || raw.trim() === "") return undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*(m|min)?\s*$/.exec(raw)
  if (m === null) throw new Error(`${CHECKPOINT_ENV_VAR}=${raw}: expected a step count (500) or minutes (5m)`)
  return m[2] !== undefined ? { everyMinutes: Number(m[1]), keep: 2 } : { everySteps: Number(m[1]), keep: 2 }
}

export interface TrainOptions {
  readonly ctx: TrainingContext
  /** the stage's name in log lines */
  readonly name: string
  /** metrics are logged as `<metricPrefix>/<name>` (default: name) */
  readonly metricPrefix?: string
  readonly steps: number
  /** the weights a checkpoint holds (every parameter, trainable or not), by a name unique among them */
  readonly modules: Readonly<Record<string, Module>>
  readonly groups: ReadonlyArray<ParamGroup>
  readonly schedule: (step: number) => number
  /** global-norm gradient clip over every group (absent / Infinity: none) */
  readonly clipNorm?: number | undefined
  /** an exponential moving average of one of `modules`, updated after every step and checkpointed */
  readonly ema?: { readonly module: Module; readonly decay: number }
  readonly step: (step: number) => StepPlan
  /** the stage's RNGs and data iterators, by name */
  readonly state?: Readonly<Record<string, Resumable>>
  /** log metrics at steps divisible by this, and at the last step (default 1: every step) */
  readonly metricsEvery?: number
  /** also log `<prefix>/step_ms`, the wall time of the step (not reproducible, unlike the others) */
  readonly stepTimeMetric?: boolean
  /** runs before step 0 of a fresh run (not on resume: what it logs at step 0 was logged before the checkpoint) */
  readonly atStart?: () => void | Promise<void>
  /** runs after step k when k is a multiple of `every` (below the total), and at ctx.pauseAtStep */
  readonly evaluate?: { readonly every: number; readonly run: (step: number) => void | Promise<void> }
  readonly progress?: {
    /** the total the stage reports (default: steps; e.g. steps + the evaluation's episodes) */
    readonly total?: number
    readonly message?: (r: StepOutcome, values: Readonly<Record<string, number>>) => string
  }
  /** default: $VW2_CHECKPOINT_EVERY, else DEFAULT_CHECKPOINT_CADENCE */
  readonly checkpoint?: CheckpointCadence
}

export interface TrainingResult {
  /** `paused`: stopped at ctx.pauseAtStep with a checkpoint there; the stage must not write outputs */
  readonly status: "completed" | "paused"
  /** steps completed */
  readonly step: number
  /** the step this process started from (0, or a checkpoint's) */
  readonly resumedFrom: number
  /** metrics (unprefixed) of step 0 and of the last step run */
  readonly first: Readonly<Record<string, number>>
  readonly last: Readonly<Record<string, number>>
  /** mean wall time of this process's steps, without its first (warm-up: kernel compilation, allocations) */
  readonly meanStepMs: number
  readonly checkpoints: { readonly count: number; readonly totalMs: number }
  /** the averaged weights when `ema` was given (the caller disposes them) */
  readonly ema?: Ema
}

export class TrainingInterrupted extends Data.TaggedError("TrainingInterrupted")<{ readonly step: number; readonly message: string }> {}
export class TrainingFailed extends Data.TaggedError("TrainingFailed")<{ readonly message: string; readonly cause?: unknown }> {}
export class CheckpointFailed extends Data.TaggedError("CheckpointFailed")<{ readonly message: string; readonly cause?: unknown }> {}
export type TrainingError = TrainingInterrupted | TrainingFailed | CheckpointFailed

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))
const nextTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

interface Snapshot {
  readonly tensors: Map<string, NamedTensor>
  readonly state: Record<string, unknown>
}

/** Everything a checkpoint holds, keyed `model.<module>.<param>`, `optim.<group>.<m|v>.<param>`, `ema.<param>`. */
const snapshot = (o: TrainOptions, ema: Ema | undefined, first: Record<string, number>): Snapshot => {
  const tensors = new Map<string, NamedTensor>()
  for (const [name, module] of Object.entries(o.modules)) for (const [k, t] of module.stateDict()) tensors.set(`model.${name}.${k}`, t)
  o.groups.forEach((g, i) => {
    for (const [k, t] of g.optimizer.stateDict()) tensors.set(`optim.${i}.${k}`, t)
  })
  if (ema !== undefined) for (const [k, t] of ema.stateDict()) tensors.set(`ema.${k}`, t)
  const state: Record<string, unknown> = {}
  for (const [name, r] of Object.entries(o.state ?? {})) state[name] = r.save()
  return { tensors, state: { optimizerSteps: o.groups.map((g) => g.optimizer.step), first, stage: state } }
}

const restore = (o: TrainOptions, ema: Ema | undefined, ck: ResumeCheckpoint): Record<string, number> => {
  const part = (prefix: string) => {
    const out = new Map<string, NamedTensor>()
    for (const [k, t] of ck.tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), t)
    return asFloatState(out, ck.dir)
  }
  for (const [name, module] of Object.entries(o.modules)) module.loadStateDict(part(`model.${name}.`))
  const steps = ck.state["optimizerSteps"] as ReadonlyArray<number> | undefined
  if (steps?.length !== o.groups.length) throw new Error(`${ck.dir}: ${steps?.length ?? 0} optimiser states for ${o.groups.length} parameter groups`)
  o.groups.forEach((g, i) => g.optimizer.loadStateDict(part(`optim.${i}.`), steps[i]!))
  if (ema !== undefined) ema.loadStateDict(part("ema."))
  const stage = (ck.state["stage"] ?? {}) as Record<string, unknown>
  for (const [name, r] of Object.entries(o.state ?? {})) {
    if (!(name in stage)) throw new Error(`${ck.dir}: no saved state "${name}"`)
    r.restore(stage[name])
  }
  return (ck.state["first"] ?? {}) as Record<string, number>
}

/** The harness as an Effect. Fails with TrainingInterrupted when ctx.signal aborts (checked before every step). */
export const train = (o: TrainOptions): Effect.Effect<TrainingResult, TrainingError> =>
  Effect.suspend(() => {
    const ema = o.ema !== undefined ? new Ema(o.ema.module, o.ema.decay) : undefined
    // the caller owns the EMA of a result; on failure nobody else holds it
    return loop(o, ema).pipe(Effect.onError(() => Effect.sync(() => ema?.dispose())))
  })

const loop = (o: TrainOptions, ema: Ema | undefined): Effect.Effect<TrainingResult, TrainingError> =>
  Effect.gen(function* () {
    const { ctx, steps, name } = o
    const prefix = o.metricPrefix ?? name
    if (!Number.isInteger(steps) || steps < 0) return yield* new TrainingFailed({ message: `${name}: steps must be a non-negative integer, got ${steps}` })
    const cadence = o.checkpoint ?? cadenceFromEnv(process.env[CHECKPOINT_ENV_VAR]) ?? DEFAULT_CHECKPOINT_CADENCE
    const keep = Math.max(2, cadence.keep ?? 2)
    const pauseAt = ctx.pauseAtStep !== undefined && ctx.pauseAtStep < steps ? ctx.pauseAtStep : undefined
    const metricsEvery = Math.max(1, o.metricsEvery ?? 1)
    const variables = new Map<string, tf.Variable>()
    for (const g of o.groups) for (const [k, v] of g.variables) variables.set(k, v)

    let start = 0
    let first: Record<string, number> = {}
    const resumeDir = ctx.resumeDir
    if (resumeDir !== undefined) {
      const restoring = performance.now()
      const ck = yield* Effect.tryPromise({
        try: () => loadNewestResumeCheckpoint(resumeDir, (m) => ctx.log(`${name}: warning: ${m}`)),
        catch: (e) => new CheckpointFailed({ message: `${name}: reading checkpoints in ${resumeDir}: ${messageOf(e)}`, cause: e })
      })
      if (ck !== undefined && ck.state.total !== steps) {
        ctx.log(`${name}: warning: checkpoint at step ${ck.state.step} is of a ${ck.state.total}-step run, this one has ${steps}; starting from step 0`)
      } else if (ck !== undefined) {
        first = yield* Effect.try({
          try: () => restore(o, ema, ck),
          catch: (e) => new CheckpointFailed({ message: `${name}: restoring ${ck.dir}: ${messageOf(e)}`, cause: e })
        })
        start = ck.state.step
        ctx.log(`${name}: resumed from step ${start} of ${steps} (${ck.dir}; restored in ${(performance.now() - restoring).toFixed(0)} ms)`)
      }
    }

    let saves = 0
    let saveMs = 0
    let lastSaveMs = 0
    let lastSavedStep = start
    let lastSave = performance.now()
    const save = (step: number) =>
      Effect.gen(function* () {
        if (resumeDir === undefined) return
        const t0 = performance.now()
        const snap = snapshot(o, ema, first)
        yield* Effect.tryPromise({
          try: () => writeResumeCheckpoint(resumeDir, { format: RESUME_FORMAT, step, total: steps, ...snap.state }, snap.tensors, keep),
          catch: (e) => new CheckpointFailed({ message: `${name}: writing the checkpoint at step ${step} into ${resumeDir}: ${messageOf(e)}`, cause: e })
        })
        const ms = performance.now() - t0
        saves++
        saveMs += ms
        lastSaveMs = ms
        lastSave = performance.now()
        lastSavedStep = step
        ctx.checkpointed?.(step, steps)
      })
    const evaluate = (step: number) =>
      o.evaluate === undefined
        ? Effect.void
        : Effect.tryPromise({ try: async () => o.evaluate!.run(step), catch: (e) => new TrainingFailed({ message: messageOf(e), cause: e }) })

    if (pauseAt !== undefined && resumeDir === undefined) {
      return yield* new CheckpointFailed({ message: `${name}: pauseAtStep ${pauseAt} needs ctx.resumeDir to checkpoint into` })
    }
    const progressTotal = o.progress?.total ?? steps
    if (pauseAt !== undefined && start >= pauseAt) {
      // already paused here by an earlier run: report the rung again, train nothing
      yield* evaluate(start)
      ctx.checkpointed?.(start, steps)
      return { status: "paused", step: start, resumedFrom: start, first, last: {}, meanStepMs: 0, checkpoints: { count: 0, totalMs: 0 } } satisfies TrainingResult
    }

    if (start === 0 && o.atStart !== undefined) {
      const atStart = o.atStart
      yield* Effect.tryPromise({ try: async () => atStart(), catch: (e) => new TrainingFailed({ message: messageOf(e), cause: e }) })
    }
    let last: Record<string, number> = {}
    let timed = 0
    let timedMs = 0
    for (let step = start; step < steps; step++) {
      if (ctx.signal.aborted) {
        if (cadence.onInterrupt !== false && step > lastSavedStep) yield* save(step)
        return yield* new TrainingInterrupted({ step, message: `${name}: interrupted at step ${step}` })
      }
      const t0 = performance.now()
      const lr = o.schedule(step)
      const outcome = yield* Effect.try({
        try: (): { r: StepOutcome; values: Record<string, number> } => {
          const plan = o.step(step)
          try {
            const { loss, aux, grads } = computeGradients(variables, plan.loss)
            let gradNorm = Number.NaN
            try {
              if (!Number.isFinite(loss)) throw new Error(`${name}: loss is ${loss} at step ${step}`)
              gradNorm = globalNorm(grads)
              const scale = clipScale(gradNorm, o.clipNorm ?? Infinity)
              for (const g of o.groups) {
                const own = new Map([...grads].filter(([k]) => g.variables.has(k)))
                g.optimizer.apply(g.variables, own, lr * (g.lrScale ?? 1), scale)
              }
            } finally {
              for (const g of grads.values()) g.dispose()
            }
            ema?.update()
            const r: StepOutcome = { step, loss, aux, gradNorm, lr }
            return { r, values: plan.metrics?.(r) ?? { loss, ...aux, grad_norm: gradNorm, lr } }
          } finally {
            plan.dispose?.()
          }
        },
        catch: (e) => new TrainingFailed({ message: messageOf(e), cause: e })
      })
      const ms = performance.now() - t0
      if (step > start) {
        timed++
        timedMs += ms
      }
      if (step === 0) first = outcome.values
      last = outcome.values
      if (step % metricsEvery === 0 || step === steps - 1) {
        const named: Record<string, number> = {}
        for (const [k, v] of Object.entries(outcome.values)) named[`${prefix}/${k}`] = v
        if (o.stepTimeMetric === true) named[`${prefix}/step_ms`] = ms
        ctx.metrics(named, step)
      }
      const done = step + 1
      const evaluatedNow = o.evaluate !== undefined && o.evaluate.every > 0 && done % o.evaluate.every === 0 && done < steps
      if (evaluatedNow) yield* evaluate(done)
      const message = o.progress?.message?.(outcome.r, outcome.values) ?? `loss ${outcome.r.loss.toFixed(4)}`
      ctx.progress(done, progressTotal, message)
      if (done === pauseAt) {
        if (!evaluatedNow) yield* evaluate(done)
        yield* save(done)
        ctx.log(`${name}: paused at step ${done} of ${steps} (checkpoint in ${resumeDir})`)
        return { status: "paused", step: done, resumedFrom: start, first, last, meanStepMs: timed > 0 ? timedMs / timed : 0, checkpoints: { count: saves, totalMs: saveMs }, ...(ema !== undefined ? { ema } : {}) } satisfies TrainingResult
      }
      if (done < steps) {
        const bySteps = (cadence.everySteps ?? 0) > 0 && done % cadence.everySteps! === 0
        const waitMs = Math.max((cadence.everyMinutes ?? 0) * 60_000, cadence.maxOverhead !== undefined && lastSaveMs > 0 ? lastSaveMs / cadence.maxOverhead : 0)
        const byTime = (cadence.everyMinutes ?? 0) > 0 && performance.now() - lastSave >= waitMs
        if (bySteps || byTime) yield* save(done)
      }
      yield* nextTurn // progress, metrics and a Ctrl-C get through between steps
    }
    if (saves > 0) ctx.log(`${name}: ${saves} mid-stage checkpoint${saves === 1 ? "" : "s"}, ${(saveMs / saves).toFixed(0)} ms per save`)
    return { status: "completed", step: steps, resumedFrom: start, first, last, meanStepMs: timed > 0 ? timedMs / timed : 0, checkpoints: { count: saves, totalMs: saveMs }, ...(ema !== undefined ? { ema } : {}) } satisfies TrainingResult
  })

/**
 * The harness for a promise-based stage body: resolves with the result, rejects with the TrainingError itself
 * (an Error whose message names the stage and the step), never a wrapper.
 */
export const runTraining = async (o: TrainOptions): Promise<TrainingResult> => {
  const exit = await Effect.runPromiseExit(train(o))
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}
