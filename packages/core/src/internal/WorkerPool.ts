/**
 * Warm worker processes for the local executor. Each worker runs `worker/main.ts --serve` and executes one
 * invocation at a time; an idle worker is reused for the next invocation with the same experiment file and
 * the same device grant (CUDA_VISIBLE_DEVICES is fixed at process start). Start-up (Node + module loading,
 * ~1 s on a busy 2-core box) is thus paid once per worker, not once per stage.
 *
 * A worker that crashed or was interrupted is never reused. Idle workers hold no reference on the event
 * loop, and exit by themselves when the driver goes away (EOF on their stdin).
 */
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import * as readline from "node:readline"
import type { InvocationEvent } from "../RunEvent.ts"
import { decodeEventLine } from "../RunEvent.ts"

export const eventsFd = 3
const stderrTailLines = 40

/** Receives a worker's output while it runs an invocation: its events, with every other line it prints as a `log` event. */
export interface WorkerListener {
  readonly onEvent: (event: InvocationEvent) => void
  readonly onExit: (code: number | null, signal: NodeJS.Signals | null) => void
}

export interface PooledWorker {
  readonly key: string
  readonly child: ChildProcess
  alive: boolean
  listener: WorkerListener | undefined
  readonly stderrTail: Array<string>
}

const setRef = (worker: PooledWorker, ref: boolean) => {
  const handles = [worker.child, ...worker.child.stdio] as Array<{ ref?: () => void; unref?: () => void } | null>
  for (const handle of handles) {
    if (handle === null) continue
    if (ref) handle.ref?.()
    else handle.unref?.()
  }
}

export class WorkerPool {
  private readonly idle: Array<PooledWorker> = []
  private readonly nodePath: string
  private readonly entry: string
  private readonly maxIdle: number

  constructor(nodePath: string, entry: string, maxIdle: number) {
    this.nodePath = nodePath
    this.entry = entry
    this.maxIdle = maxIdle
  }

  /** An idle worker for `key`, or a fresh one started with `env`. */
  take(key: string, env: NodeJS.ProcessEnv): PooledWorker {
    const index = this.idle.findIndex((w) => w.key === key && w.alive)
    if (index >= 0) {
      const [worker] = this.idle.splice(index, 1)
      setRef(worker!, true)
      return worker!
    }
    return this.start(key, env)
  }

  /** Hands a healthy worker back after an invocation; surplus workers are closed. */
  give(worker: PooledWorker) {
    worker.listener = undefined
    if (!worker.alive) return
    this.idle.push(worker)
    while (this.idle.length > this.maxIdle) this.close(this.idle.shift()!)
    setRef(worker, false)
  }

  /** Kills a worker's whole process group (the stage may have started children of its own). */
  kill(worker: PooledWorker, signal: NodeJS.Signals) {
    worker.alive = false
    const i = this.idle.indexOf(worker)
    if (i >= 0) this.idle.splice(i, 1)
    if (worker.child.pid === undefined) return
    try {
      process.kill(-worker.child.pid, signal)
    } catch {
      // already gone
    }
  }

  /** Ends every idle worker (EOF on stdin lets it exit normally). */
  closeIdle() {
    for (const worker of this.idle.splice(0)) this.close(worker)
  }

  private close(worker: PooledWorker) {
    worker.alive = false
    worker.child.stdin?.end()
  }

  private start(key: string, env: NodeJS.ProcessEnv): PooledWorker {
    const child = spawn(this.nodePath, [this.entry, "--serve"], {
      cwd: process.cwd(),
      env,
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      detached: true // own process group: interruption kills the group
    })
    const worker: PooledWorker = { key, child, alive: true, listener: undefined, stderrTail: [] }
    const text = (line: string) => {
      if (line.trim() !== "") worker.listener?.onEvent({ type: "log", message: line, timestamp: Date.now() })
    }
    const exit = (code: number | null, signal: NodeJS.Signals | null) => worker.listener?.onExit(code, signal)
    readline.createInterface({ input: child.stdio[eventsFd] as NodeJS.ReadableStream }).on("line", (line) => {
      const event = decodeEventLine(line)
      if (event === undefined) text(line)
      else worker.listener?.onEvent(event)
    })
    readline.createInterface({ input: child.stdout! }).on("line", text)
    readline.createInterface({ input: child.stderr! }).on("line", (line) => {
      worker.stderrTail.push(line)
      if (worker.stderrTail.length > stderrTailLines) worker.stderrTail.shift()
      text(line)
    })
    child.stdin!.on("error", () => {})
    child.on("error", (error) => {
      worker.alive = false
      worker.stderrTail.push(`could not start worker: ${error.message}`)
      exit(null, null)
    })
    child.on("close", (code, signal) => {
      worker.alive = false
      const i = this.idle.indexOf(worker)
      if (i >= 0) this.idle.splice(i, 1)
      exit(code, signal)
    })
    return worker
  }
}
