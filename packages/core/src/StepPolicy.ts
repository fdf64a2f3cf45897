/**
 * How the scheduler runs one invocation's attempts: `steps.<step>.retries` and `.timeout` (Experiment.ts), and
 * whether a stage that returned had paused at an early-stopping rung. docs/engine.md, "Retries and time limits".
 *
 * A transient failure (the worker was killed or exited without reporting a stage error, a Ray node was lost) is
 * retried up to `retries` times; the retry resumes from the invocation's last mid-stage checkpoint because its
 * resume directory survives. A stage's own error is retried only with `retryStageErrors: true`. A timeout kills
 * the attempt (interrupting the executor kills the worker's process group) and fails the invocation; it is not
 * retried (the next attempt would most likely time out too; rerun the command to resume it).
 */
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { InvocationFailed } from "./Executor.ts"
import type { PlannedInvocation } from "./Planner.ts"

/** Failures where the stage never said it failed: its process died (kill -9, OOM killer), or a Ray node was lost. */
export const isTransientFailure = (error: InvocationFailed): boolean =>
  /^worker (killed by|exited with status)|node (worker )?(was )?lost|node died|ray bridge .*(lost|dead|closed)/i.test(error.message)

/** "2h", "90s", "1.5m", "500ms": the shortest exact text for a duration. */
export const formatDuration = (ms: number): string => {
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1_000]] as const) {
    if (ms >= size && Number.isInteger((ms / size) * 1000)) return `${+(ms / size).toFixed(3)}${unit}`
  }
  return `${ms}ms`
}

export interface AttemptHooks {
  /** before attempt `n` (≥ 2), after `error`: e.g. clear the staging dir the failed attempt wrote into */
  readonly beforeRetry?: (attempt: number, error: InvocationFailed) => Effect.Effect<void>
}

/**
 * Runs `attempt` under the invocation's timeout (per attempt) and retries: fails with the last attempt's error,
 * or with "timed out after …".
 */
export const runAttempts = <A>(
  inv: Pick<PlannedInvocation, "hash" | "step" | "retries" | "retryStageErrors" | "timeoutMs">,
  attempt: (n: number) => Effect.Effect<A, InvocationFailed>,
  hooks: AttemptHooks = {}
): Effect.Effect<A, InvocationFailed> => {
  const retries = inv.retries ?? 0
  const once = (n: number): Effect.Effect<A, InvocationFailed> => {
    if (inv.timeoutMs === undefined) return attempt(n)
    const limit = inv.timeoutMs
    return attempt(n).pipe(
      Effect.timeoutOption(limit),
      Effect.flatMap(Option.match({
        onSome: (a) => Effect.succeed(a),
        onNone: () =>
          Effect.fail(new InvocationFailed({
            invocationHash: inv.hash,
            step: inv.step,
            message: `timed out after ${formatDuration(limit)} (steps.${inv.step}.timeout); its worker was stopped. Rerun to resume from its last checkpoint, or raise the limit`
          }))
      }))
    )
  }
  const loop = (n: number): Effect.Effect<A, InvocationFailed> =>
    Effect.catch(once(n), (error) => {
      const timedOut = error.message.startsWith("timed out after ")
      const retryable = !timedOut && (isTransientFailure(error) || inv.retryStageErrors === true)
      if (n > retries || !retryable) {
        return Effect.fail(n === 1 ? error : new InvocationFailed({ ...error, message: `${error.message} (attempt ${n} of ${retries + 1})` }))
      }
      return Effect.andThen(hooks.beforeRetry?.(n + 1, error) ?? Effect.void, loop(n + 1))
    })
  return loop(1)
}

/**
 * The step an invocation paused at: it was run with `pauseAtStep`, wrote no output file, and its last checkpoint
 * is at that step (or beyond it, when an earlier run had trained further), before the end. A stage that ran to
 * the end instead (it ignores pauseAtStep, or its total is ≤ the rung) wrote its outputs, and is published like
 * any other.
 */
export const pausedAt = (
  inv: Pick<PlannedInvocation, "pauseAtStep">,
  lastCheckpoint: { readonly step: number; readonly total: number } | undefined,
  outputRoot: string
): number | undefined =>
  inv.pauseAtStep !== undefined && lastCheckpoint !== undefined && lastCheckpoint.step >= inv.pauseAtStep && lastCheckpoint.step < lastCheckpoint.total &&
    !hasAnyFile(outputRoot)
    ? lastCheckpoint.step
    : undefined

/** whether a file lies anywhere under `dir` (runStage creates every output's directory, files only if the stage wrote them) */
const hasAnyFile = (dir: string): boolean => {
  let entries: Array<fs.Dirent>
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true })
  } catch {
    return false
  }
  return entries.some((e) => !e.isDirectory() || hasAnyFile(path.join(dir, e.name)))
}
