/**
 * The step loop every dLDM stage shares: per-step metrics to the tracker (as `<metricPrefix>/<name>`: each
 * stage owns its metric names, docs/experiments.md "Metric names"), progress, step timing,
 * periodic checkpoints, and cancellation through the stage's AbortSignal (checked between steps; the
 * event loop gets a turn after every step so an interrupt is seen promptly).
 */
import type { StageContext } from "@vw2/core"

export interface LoopResult {
  readonly steps: number
  /** mean wall time of a step, excluding the first (warm-up: kernel compilation, allocations) */
  readonly meanStepMs: number
  readonly last: Readonly<Record<string, number>>
  readonly first: Readonly<Record<string, number>>
}

export class Interrupted extends Error {
  constructor(step: number) {
    super(`interrupted at step ${step}`)
  }
}

export async function runSteps(
  ctx: StageContext,
  /** the stage's metric namespace, e.g. "warmup" → `warmup/loss` */
  metricPrefix: string,
  steps: number,
  body: (step: number) => Record<string, number>,
  checkpoint?: { readonly every: number; readonly write: (step: number) => Promise<void> }
): Promise<LoopResult> {
  let first: Record<string, number> = {}
  let last: Record<string, number> = {}
  let timed = 0
  let timedMs = 0
  for (let step = 0; step < steps; step++) {
    if (ctx.signal.aborted) throw new Interrupted(step)
    const t0 = performance.now()
    const values = body(step)
    const ms = performance.now() - t0
    if (step > 0) {
      timed++
      timedMs += ms
    }
    if (step === 0) first = values
    last = values
    ctx.metrics(Object.fromEntries(Object.entries({ ...values, step_ms: ms }).map(([k, v]) => [`${metricPrefix}/${k}`, v])), step)
    ctx.progress(step + 1, steps, Object.entries(values).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" "))
    if (checkpoint !== undefined && checkpoint.every > 0 && (step + 1) % checkpoint.every === 0 && step + 1 < steps) {
      await checkpoint.write(step + 1)
    }
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  return { steps, meanStepMs: timed > 0 ? timedMs / timed : 0, last, first }
}
