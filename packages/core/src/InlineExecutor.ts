/**
 * The `inline` executor: runs stages in the driver process, one at a time (for debugging: breakpoints and
 * stack traces work). It imports the experiment file like a worker does, so it runs the same stage code.
 * GPU requests are refused: CUDA_VISIBLE_DEVICES cannot be changed inside a running process.
 */
import { Effect, Layer, Semaphore } from "effect"
import type { ExecutorShape } from "./Executor.ts"
import { Executor, InvocationFailed, invocationFields } from "./Executor.ts"
import { runStageInProcess } from "./internal/runStage.ts"
import { findStep, loadExperimentPromise } from "./Loader.ts"

export const makeInlineExecutor = (): ExecutorShape => {
  const oneAtATime = Semaphore.makeUnsafe(1)
  const canRun = (resources: { readonly gpus: number }) =>
    resources.gpus > 0 ? `needs ${resources.gpus} GPU(s); the inline executor cannot assign GPUs (use --executor local --gpus ...)` : undefined
  return {
    name: "inline",
    describe: () => "inline: stages run one at a time in this process",
    canRun,
    run: (request, onEvent) =>
      Effect.gen(function*() {
        const fail = (message: string) => new InvocationFailed({ invocationHash: request.invocationHash, step: request.step, message })
        const impossible = canRun(request.resources)
        if (impossible !== undefined) return yield* fail(impossible)
        const experiment = yield* Effect.tryPromise({ try: () => loadExperimentPromise(request.experimentFile), catch: (e) => fail(String(e)) })
        const stage = yield* Effect.try({ try: () => findStep(experiment, request.step).stage, catch: (e) => fail((e as Error).message) })
        onEvent({ type: "started", gpus: [], pid: process.pid })
        const result = yield* runStageInProcess(
          {
            stage,
            ...invocationFields(request),
            gpus: [],
            cpus: request.resources.cpus
          },
          onEvent
        ).pipe(Effect.mapError((e) => fail(e.message)))
        return { gpus: [], uploads: result.uploads }
      }).pipe(oneAtATime.withPermit)
  }
}

export const layer: Layer.Layer<Executor> = Layer.sync(Executor, makeInlineExecutor)
