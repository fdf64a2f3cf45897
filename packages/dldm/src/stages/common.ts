/** What every dLDM stage shares: the backend choice, error mapping, and cancellation wiring. */
import { StageError, type StageContext } from "@vw2/core"
import { describeBackend, selectBackend } from "@vw2/nn"
import { Effect } from "effect"

export const stageFailure = (stage: string) => (e: unknown) =>
  new StageError({ stage, message: e instanceof Error ? e.message : String(e), cause: e })

/** The backend this process trains on (chosen by @vw2/nn's selectBackend, VW2_TF_BACKEND forces one), logged for the run. */
export async function useBackend(ctx: StageContext): Promise<string> {
  const choice = await selectBackend()
  const line = describeBackend(choice)
  ctx.log(`tfjs backend: ${line}`)
  return line
}

/**
 * Run a promise-returning stage body as the stage's Effect. The body sees one AbortSignal that fires on
 * either the executor's cancellation (ctx.signal) or the Effect fiber's interruption.
 */
export function runStageBody(stage: string, ctx: StageContext, body: (ctx: StageContext) => Promise<void>): Effect.Effect<void, StageError> {
  return Effect.tryPromise({
    try: (signal) => body({ ...ctx, signal: AbortSignal.any([ctx.signal, signal]) }),
    catch: stageFailure(stage)
  })
}
