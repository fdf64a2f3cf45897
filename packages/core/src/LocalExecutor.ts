/**
 * The `local` executor: every invocation runs in its own worker process
 * (`node src/worker/main.ts <spec.json>`, protocol in worker/protocol.ts) once the resource pool grants its
 * CPU/GPU slots; `CUDA_VISIBLE_DEVICES` holds exactly the granted GPU ids. The worker leads its own process
 * group, so interruption (Ctrl-C → Effect interruption) kills the whole group: SIGTERM, then SIGKILL.
 */
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import type { ExecutorEvent, ExecutorShape, InvocationOutcome, InvocationRequest } from "./Executor.ts"
import { Executor, InvocationFailed } from "./Executor.ts"
import { ResourcePool } from "./internal/ResourcePool.ts"
import type { WorkerSpec } from "./worker/protocol.ts"
import { parseWorkerEvent } from "./worker/protocol.ts"

export const workerEntry = fileURLToPath(new URL("./worker/main.ts", import.meta.url))

export interface LocalExecutorOptions {
  /** CPU slots (default: the machine's core count) */
  readonly cpus?: number
  /** GPU ids to hand out (default: none) */
  readonly gpus?: ReadonlyArray<string>
  /** Node binary for workers (default: the running one) */
  readonly nodePath?: string
  /** grace period between SIGTERM and SIGKILL */
  readonly killGraceMs?: number
}

const stderrTailLines = 40
const eventsFd = 3

const killGroup = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pid, signal)
  } catch {
    // group already gone
  }
}

/** Spawns one worker and resolves when it exits; interruption kills its process group and waits for it. */
const runWorker = (
  nodePath: string,
  request: InvocationRequest,
  gpus: ReadonlyArray<string>,
  cpus: number,
  killGraceMs: number,
  onEvent: (event: ExecutorEvent) => void
): Effect.Effect<InvocationOutcome, InvocationFailed> =>
  Effect.callback<InvocationOutcome, InvocationFailed>((resume) => {
    const spec: WorkerSpec = {
      protocol: 1,
      experimentFile: request.experimentFile,
      step: request.step,
      config: request.config,
      seed: request.seed,
      invocationHash: request.invocationHash,
      inputs: request.inputs,
      outputRoot: request.outputRoot,
      scratchDir: request.scratchDir,
      gpus,
      cpus,
      eventsFd
    }
    const specFile = path.join(request.scratchDir, "worker-spec.json")
    fs.mkdirSync(request.scratchDir, { recursive: true })
    fs.writeFileSync(specFile, JSON.stringify(spec))
    const failed = (message: string, stderrTail?: string) =>
      new InvocationFailed({ invocationHash: request.invocationHash, step: request.step, message, ...(stderrTail ? { stderrTail } : {}) })

    const child = spawn(nodePath, [workerEntry, specFile], {
      cwd: process.cwd(),
      env: {
        ...process.env,
        CUDA_VISIBLE_DEVICES: gpus.join(","),
        VW2_INVOCATION_HASH: request.invocationHash,
        OMP_NUM_THREADS: String(Math.max(1, cpus))
      },
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      detached: true
    })
    const stderrTail: Array<string> = []
    const uploads: Array<string> = []
    let outcome: { done: boolean; failure?: string } = { done: false }
    let exited = false
    const onExitCallbacks: Array<() => void> = []

    const events = child.stdio[eventsFd] as NodeJS.ReadableStream
    readline.createInterface({ input: events }).on("line", (line) => {
      const event = parseWorkerEvent(line)
      if (event === undefined) {
        if (line.trim() !== "") onEvent({ type: "log", message: line, timestamp: Date.now() })
        return
      }
      switch (event.type) {
        case "started":
          return
        case "done":
          outcome = { done: true }
          return
        case "failed":
          outcome = { done: false, failure: event.message }
          return
        case "upload":
          uploads.push(event.path)
          onEvent({ type: "upload", path: event.path })
          return
        default: {
          const { vw2: _vw2, ...stageEvent } = event
          onEvent(stageEvent)
        }
      }
    })
    readline.createInterface({ input: child.stdout! }).on("line", (line) => onEvent({ type: "log", message: line, timestamp: Date.now() }))
    readline.createInterface({ input: child.stderr! }).on("line", (line) => {
      stderrTail.push(line)
      if (stderrTail.length > stderrTailLines) stderrTail.shift()
      onEvent({ type: "log", message: line, timestamp: Date.now() })
    })
    child.stdin!.on("error", () => {})
    onEvent({ type: "started", gpus })

    child.on("error", (error) => {
      exited = true
      resume(Effect.fail(failed(`could not start worker: ${error.message}`)))
    })
    child.on("close", (code, signal) => {
      exited = true
      for (const f of onExitCallbacks) f()
      if (code === 0 && outcome.done) {
        resume(Effect.succeed({ gpus, uploads }))
        return
      }
      const tail = stderrTail.join("\n")
      const why = outcome.failure ?? (signal !== null ? `worker killed by ${signal}` : `worker exited with status ${code}${tail ? `: ${stderrTail.at(-1)}` : ""}`)
      resume(Effect.fail(failed(why, tail)))
    })

    // Interruption: kill the group, escalate after the grace period, complete once the worker is gone.
    return Effect.callback<void>((done) => {
      if (exited || child.pid === undefined) return done(Effect.void)
      onExitCallbacks.push(() => done(Effect.void))
      const pid = child.pid
      killGroup(pid, "SIGTERM")
      const escalate = setTimeout(() => killGroup(pid, "SIGKILL"), killGraceMs)
      onExitCallbacks.push(() => clearTimeout(escalate))
    })
  })

export const makeLocalExecutor = (options: LocalExecutorOptions = {}): ExecutorShape => {
  const cpus = options.cpus ?? os.availableParallelism()
  const gpus = options.gpus ?? []
  const pool = new ResourcePool(cpus, gpus)
  const nodePath = options.nodePath ?? process.execPath
  const killGraceMs = options.killGraceMs ?? 3_000
  return {
    name: "local",
    describe: () => `local: ${cpus} cpu slot(s), ${gpus.length === 0 ? "no GPUs" : `GPUs ${gpus.join(",")}`}`,
    canRun: (resources) => pool.impossible(resources),
    run: (request, onEvent) =>
      Effect.scoped(
        Effect.gen(function*() {
          const impossible = pool.impossible(request.resources)
          if (impossible !== undefined) {
            return yield* new InvocationFailed({ invocationHash: request.invocationHash, step: request.step, message: impossible })
          }
          const grant = yield* pool.acquire(request.resources)
          return yield* runWorker(nodePath, request, grant.gpus, grant.cpus, killGraceMs, onEvent)
        })
      )
  }
}

export const layer = (options?: LocalExecutorOptions): Layer.Layer<Executor> => Layer.sync(Executor, () => makeLocalExecutor(options))
