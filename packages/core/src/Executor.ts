/**
 * The Executor service: runs one stage invocation somewhere (in this process, a local worker process, a Ray
 * task) and streams its events back. It is deliberately small so that new backends (packages/cluster) are
 * one file:
 *
 *   run(request, onEvent) : Effect<InvocationOutcome, InvocationFailed>
 *     - waits for the resources the request asks for (the executor owns its slots: the scheduler submits
 *       every ready invocation at once and lets the executor queue them),
 *     - runs the stage so that it writes its outputs under `request.outputRoot`,
 *     - calls `onEvent({ type: "started", gpus })` once it holds its slots and starts the stage, then
 *       `onEvent` for each progress / metrics / log / upload / checkpoint event as it arrives (RunEvent.ts: the
 *       same events a worker writes on its events fd; what the stage's process prints arrives as `log`),
 *     - succeeds once the stage finished (the scheduler then verifies and publishes `outputRoot`),
 *     - fails with `InvocationFailed` when the stage failed or the worker died,
 *     - on interruption (Ctrl-C, shutdown) kills what runs the stage and only then completes.
 *
 * Executors never touch the artifact store or the tracker: publishing and tracking are the scheduler's.
 */
import type { Effect } from "effect"
import { Context, Data } from "effect"
import type { InvocationEvent } from "./RunEvent.ts"
import type { InputArtifact, Resources } from "./Stage.ts"

export interface InvocationRequest {
  /** absolute path of the experiment file; workers re-import it to find the step's stage */
  readonly experimentFile: string
  readonly step: string
  readonly stageName: string
  /** resolved config slice (encoded JSON form) */
  readonly config: unknown
  readonly seed: number
  readonly invocationHash: string
  readonly inputs: Readonly<Record<string, InputArtifact>>
  /** staging directory the stage's outputs are written into (`<outputRoot>/<output name>/...`) */
  readonly outputRoot: string
  /** scratch directory, removed by the scheduler afterwards */
  readonly scratchDir: string
  /** the invocation's resume directory (mid-stage checkpoints): survives crashes, removed once it publishes */
  readonly resumeDir: string
  /** an early-stopping rung: the stage trains to this step, checkpoints and returns without outputs */
  readonly pauseAtStep?: number
  readonly resources: Resources
}

/** What every executor hands the stage unchanged from the request (worker spec, in-process run, Ray submission). */
export const invocationFields = (request: InvocationRequest) => ({
  step: request.step,
  config: request.config,
  seed: request.seed,
  invocationHash: request.invocationHash,
  inputs: request.inputs,
  outputRoot: request.outputRoot,
  scratchDir: request.scratchDir,
  resumeDir: request.resumeDir,
  ...(request.pauseAtStep === undefined ? {} : { pauseAtStep: request.pauseAtStep })
})

export interface InvocationOutcome {
  /** GPU ids the invocation ran with (what `CUDA_VISIBLE_DEVICES` held) */
  readonly gpus: ReadonlyArray<string>
  /** files the stage marked with ctx.upload, relative to outputRoot */
  readonly uploads: ReadonlyArray<string>
}

export class InvocationFailed extends Data.TaggedError("InvocationFailed")<{
  readonly invocationHash: string
  readonly step: string
  readonly message: string
  /** last lines of the worker's stderr, when there is a worker */
  readonly stderrTail?: string
}> {}

export interface ExecutorShape {
  /** "inline", "local", "ray", ... (recorded as the run's backend tag) */
  readonly name: string
  /** one line for humans: "local: 4 cpus, gpus 0,1" */
  readonly describe: () => string
  /** fails right away (before anything runs) when the request can never fit, e.g. 2 GPUs on a 1-GPU pool */
  readonly canRun: (resources: Resources) => string | undefined
  readonly run: (
    request: InvocationRequest,
    onEvent: (event: InvocationEvent) => void
  ) => Effect.Effect<InvocationOutcome, InvocationFailed>
}

export class Executor extends Context.Service<Executor, ExecutorShape>()("@vw2/core/Executor") {}
