/**
 * Runs one stage invocation in the current process: decodes the config slice, builds the StageContext,
 * runs the stage's Effect and checks what it left in the output root. Shared by the inline executor and
 * the worker entry point, so a stage behaves the same on every executor.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { AnyStage, InputArtifact, StageContext } from "../Stage.ts"
import { StageError } from "../Stage.ts"
import type { StageContextEvent } from "../RunEvent.ts"

export interface StageRunSpec {
  readonly stage: AnyStage
  readonly step: string
  readonly config: unknown
  readonly seed: number
  readonly invocationHash: string
  readonly inputs: Readonly<Record<string, InputArtifact>>
  readonly outputRoot: string
  readonly scratchDir: string
  readonly resumeDir: string
  readonly pauseAtStep?: number
  readonly gpus: ReadonlyArray<string>
  readonly cpus: number
  /** an outside cancellation the stage sees as ctx.signal (direct runs); executors interrupt instead */
  readonly signal?: AbortSignal
}

const outputNamePattern = /^[A-Za-z][\w.-]*$/

export const runStageInProcess = (
  spec: StageRunSpec,
  emit: (event: StageContextEvent) => void
): Effect.Effect<{ readonly uploads: ReadonlyArray<string> }, StageError> =>
  Effect.suspend(() => {
    const { stage } = spec
    const fail = (message: string, cause?: unknown) => new StageError({ stage: stage.name, message, cause })
    const decoded = Schema.decodeUnknownResult(stage.config as unknown as Schema.Codec<unknown, unknown>)(spec.config, {
      onExcessProperty: "error"
    })
    if (decoded._tag === "Failure") return Effect.fail(fail(`config no longer matches the stage schema: ${String(decoded.failure)}`))
    const config = decoded.success
    const uploads = new Set<string>()
    const abort = new AbortController()
    if (spec.signal !== undefined) {
      const outside = spec.signal
      if (outside.aborted) abort.abort(outside.reason)
      else outside.addEventListener("abort", () => abort.abort(outside.reason), { once: true })
    }
    fs.mkdirSync(spec.outputRoot, { recursive: true })
    fs.mkdirSync(spec.scratchDir, { recursive: true })
    fs.mkdirSync(spec.resumeDir, { recursive: true })

    const ctx: StageContext = {
      invocationHash: spec.invocationHash,
      step: spec.step,
      seed: spec.seed,
      outputDir: (output) => {
        if (!outputNamePattern.test(output)) throw new TypeError(`ctx.outputDir: bad output name ${JSON.stringify(output)}`)
        const dir = path.join(spec.outputRoot, output)
        fs.mkdirSync(dir, { recursive: true })
        return dir
      },
      scratchDir: spec.scratchDir,
      resumeDir: spec.resumeDir,
      checkpointed: (step, total) => emit({ type: "checkpoint", step, total }),
      ...(spec.pauseAtStep === undefined ? {} : { pauseAtStep: spec.pauseAtStep }),
      devices: { gpus: spec.gpus, cpus: spec.cpus },
      progress: (done, total, message) => emit(message === undefined ? { type: "progress", done, total } : { type: "progress", done, total, message }),
      metrics: (values, step) => {
        const finite: Record<string, number> = {}
        for (const [key, value] of Object.entries(values)) if (Number.isFinite(value)) finite[key] = value
        emit({ type: "metrics", step, timestamp: Date.now(), values: finite })
      },
      log: (message) => emit({ type: "log", message, timestamp: Date.now() }),
      upload: (relativePath) => {
        const normalised = path.posix.normalize(relativePath.split(path.sep).join("/"))
        if (path.isAbsolute(relativePath) || normalised.startsWith("..")) {
          throw new TypeError(`ctx.upload: ${relativePath} must be relative to the invocation's output root`)
        }
        if (!uploads.has(normalised)) {
          uploads.add(normalised)
          emit({ type: "upload", path: normalised })
        }
      },
      signal: abort.signal
    }

    const checkOutputs = Effect.suspend(() => {
      for (const output of Object.keys(stage.outputs)) fs.mkdirSync(path.join(spec.outputRoot, output), { recursive: true })
      for (const upload of uploads) {
        if (!fs.existsSync(path.join(spec.outputRoot, upload))) {
          return Effect.fail(fail(`ctx.upload(${JSON.stringify(upload)}): no such file under the output root when the stage finished`))
        }
      }
      return Effect.succeed({ uploads: [...uploads] })
    })

    const run = Effect.suspend(() => stage.run(ctx, config, spec.inputs)).pipe(
      Effect.catchDefect((defect) => Effect.fail(fail(defect instanceof Error ? defect.message : String(defect), defect))),
      Effect.onInterrupt(() => Effect.sync(() => abort.abort(new Error("invocation interrupted"))))
    )
    return Effect.andThen(run, checkOutputs)
  })
