#!/usr/bin/env node
/**
 * Worker entry point: `node packages/core/src/worker/main.ts <spec.json>` runs one stage invocation.
 * The protocol (spec fields, event lines, exit codes, cancellation) is documented in ./protocol.ts.
 */
import { Effect, Exit, Fiber } from "effect"
import * as fs from "node:fs"
import { findStep, loadExperimentPromise } from "../Loader.ts"
import { runStageInProcess } from "../internal/runStage.ts"
import type { WorkerEvent, WorkerSpec } from "./protocol.ts"
import { checkWorkerSpec, workerExitCodes } from "./protocol.ts"

const writeAll = (fd: number, text: string): void => {
  const buffer = Buffer.from(text)
  let offset = 0
  while (offset < buffer.length) {
    try {
      offset += fs.writeSync(fd, buffer, offset)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error
    }
  }
}

const readSpec = (file: string | undefined): WorkerSpec => {
  if (file === undefined) throw new TypeError("usage: node packages/core/src/worker/main.ts <spec.json>")
  return checkWorkerSpec(JSON.parse(fs.readFileSync(file, "utf8")))
}

const main = async (): Promise<number> => {
  let spec: WorkerSpec
  let stage
  try {
    spec = readSpec(process.argv[2])
    const experiment = await loadExperimentPromise(spec.experimentFile)
    stage = findStep(experiment, spec.step).stage
  } catch (error) {
    process.stderr.write(`vw2 worker: ${error instanceof Error ? error.message : String(error)}\n`)
    return workerExitCodes.badSpec
  }
  const eventsFd = spec.eventsFd ?? 1
  const send = (event: WorkerEvent) => writeAll(eventsFd, JSON.stringify(event) + "\n")
  send({ vw2: 1, type: "started", pid: process.pid })

  const fiber = Effect.runFork(
    runStageInProcess(
      {
        stage,
        step: spec.step,
        config: spec.config,
        seed: spec.seed,
        invocationHash: spec.invocationHash,
        inputs: spec.inputs,
        outputRoot: spec.outputRoot,
        scratchDir: spec.scratchDir,
        gpus: spec.gpus,
        cpus: spec.cpus
      },
      (event) => send({ ...event, vw2: 1 })
    )
  )

  // Cancellation: SIGTERM/SIGINT from the parent, or EOF on a piped stdin (the parent died).
  let interrupted = false
  const interrupt = () => {
    if (interrupted) return
    interrupted = true
    Effect.runFork(Fiber.interrupt(fiber))
    setTimeout(() => process.exit(workerExitCodes.interrupted), 5_000).unref()
  }
  process.on("SIGTERM", interrupt)
  process.on("SIGINT", interrupt)
  if (fs.fstatSync(0).isFIFO()) {
    process.stdin.on("end", interrupt)
    process.stdin.on("error", interrupt)
    process.stdin.resume()
  }

  const exit = await Effect.runPromise(Fiber.await(fiber))
  if (interrupted || Exit.hasInterrupts(exit)) return workerExitCodes.interrupted
  if (Exit.isSuccess(exit)) {
    send({ vw2: 1, type: "done" })
    return workerExitCodes.done
  }
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  const message = error !== undefined && error._tag === "Fail" ? String((error.error as { message?: unknown }).message ?? error.error) : String(exit.cause)
  const cause = error !== undefined && error._tag === "Fail" ? (error.error as { cause?: unknown }).cause : undefined
  send(cause instanceof Error && cause.stack !== undefined
    ? { vw2: 1, type: "failed", message, stack: cause.stack }
    : { vw2: 1, type: "failed", message })
  return workerExitCodes.failed
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`vw2 worker: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(workerExitCodes.failed)
  }
)
