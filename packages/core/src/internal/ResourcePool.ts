/**
 * Resource slots of one machine: CPU slots, a list of GPU ids and megabytes of memory. Requests wait in FIFO
 * order, but a later request that fits may start while an earlier, larger one waits (backfilling keeps the
 * GPUs busy). Acquisition is an interruptible Effect; the grant is released by the scope.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import type { Resources } from "../Stage.ts"

export interface Grant {
  readonly gpus: ReadonlyArray<string>
  readonly cpus: number
  readonly memoryMb: number
}

interface Waiter {
  readonly cpus: number
  readonly gpus: number
  readonly memoryMb: number
  readonly resume: (grant: Grant) => void
}

export class ResourcePool {
  readonly totalCpus: number
  readonly gpuIds: ReadonlyArray<string>
  readonly totalMemoryMb: number
  private freeCpus: number
  private freeMemoryMb: number
  private readonly freeGpus: Array<string>
  private readonly waiters: Array<Waiter> = []

  constructor(cpus: number, gpuIds: ReadonlyArray<string>, memoryMb: number) {
    this.totalCpus = cpus
    this.gpuIds = gpuIds
    this.totalMemoryMb = memoryMb
    this.freeCpus = cpus
    this.freeMemoryMb = memoryMb
    this.freeGpus = [...gpuIds]
  }

  /** Why `resources` can never be granted, or undefined when it can. */
  impossible(resources: Resources): string | undefined {
    if (resources.gpus > this.gpuIds.length) {
      return `needs ${resources.gpus} GPU(s) but the executor has ${this.gpuIds.length} (use --gpus 0,1,...)`
    }
    if (resources.memoryMb > this.totalMemoryMb) {
      return `needs ${resources.memoryMb} MB of memory but the executor has ${this.totalMemoryMb} MB (use --memory <MB>)`
    }
    if (this.totalCpus === 0) return "the executor has no CPU slots"
    return undefined
  }

  /** A stage asking for more CPUs than the machine has gets all of them rather than waiting forever. */
  private cpusFor(resources: Resources) {
    return Math.min(resources.cpus, this.totalCpus)
  }

  acquire(resources: Resources): Effect.Effect<Grant, never, Scope.Scope> {
    const want = { cpus: this.cpusFor(resources), gpus: resources.gpus, memoryMb: resources.memoryMb }
    const take = Effect.callback<Grant>((resume) => {
      const waiter: Waiter = { ...want, resume: (grant) => resume(Effect.succeed(grant)) }
      this.waiters.push(waiter)
      this.drain()
      return Effect.sync(() => {
        const i = this.waiters.indexOf(waiter)
        if (i >= 0) this.waiters.splice(i, 1)
      })
    })
    return Effect.acquireRelease(take, (grant) => Effect.sync(() => this.release(grant)))
  }

  private release(grant: Grant) {
    this.freeCpus += grant.cpus
    this.freeMemoryMb += grant.memoryMb
    this.freeGpus.push(...grant.gpus)
    this.freeGpus.sort((a, b) => this.gpuIds.indexOf(a) - this.gpuIds.indexOf(b))
    this.drain()
  }

  private drain() {
    for (let i = 0; i < this.waiters.length;) {
      const w = this.waiters[i]!
      if (w.cpus <= this.freeCpus && w.gpus <= this.freeGpus.length && w.memoryMb <= this.freeMemoryMb) {
        this.waiters.splice(i, 1)
        this.freeCpus -= w.cpus
        this.freeMemoryMb -= w.memoryMb
        w.resume({ cpus: w.cpus, memoryMb: w.memoryMb, gpus: this.freeGpus.splice(0, w.gpus) })
      } else i++
    }
  }
}
