/**
 * The `local` executor: invocations run in worker processes (`worker/main.ts --serve`, protocol in
 * worker/protocol.ts) once the resource pool grants their CPU/GPU slots and memory (`resources.memoryMb`,
 * reserved from `memoryMb`, default the machine's total); `CUDA_VISIBLE_DEVICES` holds
 * exactly the granted GPU ids. Workers are kept warm and reused for invocations with the same experiment
 * file and device grant (internal/WorkerPool.ts). Each worker leads its own process group, so interruption
 * (Ctrl-C → Effect interruption) kills the whole group: SIGTERM, then SIGKILL after a grace period.
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { fileURLToPath } from "node:url"
import type { ExecutorShape, InvocationOutcome, InvocationRequest } from "./Executor.ts"
import { Executor, InvocationFailed, invocationFields } from "./Executor.ts"
import { ResourcePool } from "./internal/ResourcePool.ts"
import { eventsFd, WorkerPool } from "./internal/WorkerPool.ts"
import type { InvocationEvent } from "./RunEvent.ts"
import type { WorkerSpec } from "./worker/protocol.ts"

export const workerEntry = fileURLToPath(new URL("./worker/main.ts", import.meta.url))

export interface LocalExecutorOptions {
  /** CPU slots (default: the machine's core count) */
  readonly cpus?: number
  /** GPU ids to hand out (default: none) */
  readonly gpus?: ReadonlyArray<string>
  /** memory (MB) the stages' `resources.memoryMb` reserve from (default: the machine's total memory) */
  readonly memoryMb?: number
  /** Node binary for workers (default: the running one) */
  readonly nodePath?: string
  /** grace period between SIGTERM and SIGKILL */
  readonly killGraceMs?: number
  /** false: a fresh worker process for every invocation (no module state survives between stages) */
  readonly reuseWorkers?: boolean
}

const runOnWorker = (
  pool: WorkerPool,
  reuse: boolean,
  request: InvocationRequest,
  gpus: ReadonlyArray<string>,
  cpus: number,
  killGraceMs: number,
  onEvent: (event: InvocationEvent) => void
): Effect.Effect<InvocationOutcome, InvocationFailed> =>
  Effect.callback<InvocationOutcome, InvocationFailed>((resume) => {
    const spec: WorkerSpec = {
      protocol: 1,
      experimentFile: request.experimentFile,
      ...invocationFields(request),
      gpus,
      cpus,
      eventsFd
    }
    const failed = (message: string, stderrTail?: string) =>
      new InvocationFailed({ invocationHash: request.invocationHash, step: request.step, message, ...(stderrTail ? { stderrTail } : {}) })
    const key = `${request.experimentFile}|${gpus.join(",")}|${cpus}`
    const worker = pool.take(reuse ? key : `${key}|${request.invocationHash}`, {
      ...process.env,
      CUDA_VISIBLE_DEVICES: gpus.join(","),
      OMP_NUM_THREADS: String(Math.max(1, cpus))
    })
    const uploads: Array<string> = []
    let settled = false
    const exitWaiters: Array<() => void> = []
    const settle = (result: Effect.Effect<InvocationOutcome, InvocationFailed>, reusable: boolean) => {
      if (settled) return
      settled = true
      if (reusable && reuse) pool.give(worker)
      else if (reusable) pool.kill(worker, "SIGTERM")
      resume(result)
    }
    worker.stderrTail.length = 0
    worker.listener = {
      onExit: (code, signal) => {
        for (const waiter of exitWaiters.splice(0)) waiter()
        const tail = worker.stderrTail.join("\n")
        const why = signal !== null ? `worker killed by ${signal}` : `worker exited with status ${code}${tail ? `: ${worker.stderrTail.at(-1)}` : ""}`
        settle(Effect.fail(failed(why, tail)), false)
      },
      onEvent: (event) => {
        switch (event.type) {
          case "started": // said below, with the granted GPUs, as soon as the spec goes out
            return
          case "done":
            settle(Effect.succeed({ gpus, uploads }), true)
            return
          case "failed":
            settle(Effect.fail(failed(event.message, worker.stderrTail.join("\n"))), true)
            return
          case "upload":
            uploads.push(event.path)
            onEvent(event)
            return
          default:
            onEvent(event)
        }
      }
    }
    onEvent({ type: "started", gpus, ...(worker.child.pid === undefined ? {} : { pid: worker.child.pid }) })
    worker.child.stdin!.write(JSON.stringify(spec) + "\n")

    // Interruption: kill the worker's group, escalate after the grace period, complete once it is gone.
    return Effect.callback<void>((done) => {
      settled = true
      if (!worker.alive && worker.child.exitCode !== null) return done(Effect.void)
      exitWaiters.push(() => done(Effect.void))
      pool.kill(worker, "SIGTERM")
      const escalate = setTimeout(() => pool.kill(worker, "SIGKILL"), killGraceMs)
      exitWaiters.push(() => clearTimeout(escalate))
    })
  })

/** The machine's total memory in MB: the local executor's default memory budget. */
export const machineMemoryMb = (): number => Math.floor(os.totalmem() / (1024 * 1024))

export const makeLocalExecutor = (options: LocalExecutorOptions = {}): ExecutorShape & { readonly close: () => void } => {
  const cpus = options.cpus ?? os.availableParallelism()
  const gpus = options.gpus ?? []
  const memoryMb = options.memoryMb ?? machineMemoryMb()
  const slots = new ResourcePool(cpus, gpus, memoryMb)
  const nodePath = options.nodePath ?? process.execPath
  const killGraceMs = options.killGraceMs ?? 3_000
  const reuse = options.reuseWorkers ?? true
  if (!fs.existsSync(workerEntry)) throw new Error(`worker entry point missing: ${workerEntry}`)
  const workers = new WorkerPool(nodePath, workerEntry, Math.max(cpus, gpus.length, 1))
  return {
    name: "local",
    describe: () => `local: ${cpus} cpu slot(s), ${memoryMb} MB memory, ${gpus.length === 0 ? "no GPUs" : `GPUs ${gpus.join(",")}`}`,
    canRun: (resources) => slots.impossible(resources),
    run: (request, onEvent) =>
      Effect.scoped(
        Effect.gen(function*() {
          const impossible = slots.impossible(request.resources)
          if (impossible !== undefined) {
            return yield* new InvocationFailed({ invocationHash: request.invocationHash, step: request.step, message: impossible })
          }
          const grant = yield* slots.acquire(request.resources)
          return yield* runOnWorker(workers, reuse, request, grant.gpus, grant.cpus, killGraceMs, onEvent)
        })
      ),
    close: () => workers.closeIdle()
  }
}

/** The executor as a layer; idle workers are closed when the layer's scope ends. */
export const layer = (options?: LocalExecutorOptions): Layer.Layer<Executor> =>
  Layer.effect(
    Executor,
    Effect.acquireRelease(Effect.sync(() => makeLocalExecutor(options)), (executor) => Effect.sync(() => executor.close()))
  )
