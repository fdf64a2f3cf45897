#!/usr/bin/env node
/**
 * Worker entry point.
 *   node packages/core/src/worker/main.ts <spec.json>   runs one stage invocation and exits
 *   node packages/core/src/worker/main.ts --serve       runs specs read line by line from stdin
 * The protocol (spec fields, event lines, exit codes, cancellation) is documented in ./protocol.ts.
 */
import { Effect, Exit, Fiber } from "effect"
import * as fs from "node:fs"
import * as readline from "node:readline"
import { runStageInProcess } from "../internal/runStage.ts"
import { findStep, loadExperimentFilePromise } from "../Loader.ts"
import type { InvocationEvent } from "../RunEvent.ts"
import { encodeEventLine } from "../RunEvent.ts"
import type { WorkerSpec } from "./protocol.ts"
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

let current: Fiber.Fiber<unknown, unknown> | undefined
let interrupted = false

/** SIGTERM/SIGINT from the parent (or EOF on stdin in one-shot mode): interrupt the stage, then exit 143. */
const interrupt = () => {
  if (interrupted) return
  interrupted = true
  if (current !== undefined) Effect.runFork(Fiber.interrupt(current))
  setTimeout(() => process.exit(workerExitCodes.interrupted), current === undefined ? 0 : 5_000).unref()
}

/** Runs one spec; returns the exit status a one-shot worker would have. */
const runSpec = async (raw: unknown): Promise<number> => {
  let spec: WorkerSpec
  let stage
  try {
    spec = checkWorkerSpec(raw)
    // every preset of a file shares its pipeline, so the step's stage does not depend on the preset; its
    // config does, and arrives resolved in the spec (docs/experiments.md, "Presets")
    const experiment = await loadExperimentFilePromise(spec.experimentFile)
    stage = findStep(experiment, spec.step).stage
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    process.stderr.write(`vw2 worker: ${message}\n`)
    const fd = (raw as { eventsFd?: unknown } | null)?.eventsFd
    if (typeof fd === "number") writeAll(fd, encodeEventLine({ type: "failed", message }) + "\n")
    return workerExitCodes.badSpec
  }
  const eventsFd = spec.eventsFd ?? 1
  const send = (event: InvocationEvent) => writeAll(eventsFd, encodeEventLine(event) + "\n")
  send({ type: "started", pid: process.pid })
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
        resumeDir: spec.resumeDir,
        ...(spec.pauseAtStep === undefined ? {} : { pauseAtStep: spec.pauseAtStep }),
        gpus: spec.gpus,
        cpus: spec.cpus
      },
      send
    )
  )
  current = fiber
  const exit = await Effect.runPromise(Fiber.await(fiber))
  current = undefined
  if (interrupted || Exit.hasInterrupts(exit)) return workerExitCodes.interrupted
  if (Exit.isSuccess(exit)) {
    send({ type: "done" })
    return workerExitCodes.done
  }
  const failure = exit.cause.reasons.find((r) => r._tag === "Fail")
  const error = failure?._tag === "Fail" ? (failure.error as { message?: unknown; cause?: unknown }) : undefined
  const message = error !== undefined ? String(error.message ?? error) : String(exit.cause)
  const stack = error?.cause instanceof Error ? error.cause.stack : undefined
  // the stack also goes to stderr, where parents keep a tail for the failure report
  if (stack !== undefined) process.stderr.write(`${stack}\n`)
  send(stack !== undefined ? { type: "failed", message, stack } : { type: "failed", message })
  return workerExitCodes.failed
}

const oneShot = async (file: string | undefined): Promise<number> => {
  if (fs.fstatSync(0).isFIFO()) {
    process.stdin.on("end", interrupt)
    process.stdin.on("error", interrupt)
    process.stdin.resume()
  }
  if (file === undefined) {
    process.stderr.write("usage: node packages/core/src/worker/main.ts <spec.json> | --serve\n")
    return workerExitCodes.badSpec
  }
  let raw: unknown
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"))
  } catch (error) {
    process.stderr.write(`vw2 worker: ${file}: ${error instanceof Error ? error.message : String(error)}\n`)
    return workerExitCodes.badSpec
  }
  return runSpec(raw)
}

const serve = async (): Promise<number> => {
  const lines = readline.createInterface({ input: process.stdin })
  // The parent closes stdin only on idle workers; EOF while a stage runs means the parent died.
  lines.on("close", () => {
    if (current !== undefined) interrupt()
  })
  for await (const line of lines) {
    if (line.trim() === "") continue
    let raw: unknown
    try {
      raw = JSON.parse(line)
    } catch {
      process.stderr.write(`vw2 worker: stdin line is not JSON: ${line.slice(0, 80)}\n`)
      return workerExitCodes.badSpec
    }
    const status = await runSpec(raw)
    if (status === workerExitCodes.interrupted) return status
  }
  return workerExitCodes.done
}

process.on("SIGTERM", interrupt)
process.on("SIGINT", interrupt)
const run = process.argv[2] === "--serve" ? serve() : oneShot(process.argv[2])
run.then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`vw2 worker: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(workerExitCodes.failed)
  }
)
