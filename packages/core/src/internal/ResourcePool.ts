/**
 * Resource slots of one machine: a number of CPU slots and a list of GPU ids. Requests wait in FIFO order,
 * but a later request that fits may start while an earlier, larger one waits (backfilling keeps the GPUs
 * busy). Acquisition is an interruptible Effect; the grant is released by the scope.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import type { Resources } from "../Stage.ts"

export interface Grant {
  readonly gpus: ReadonlyArray<string>
  readonly cpus: number
}

interface Waiter {
  readonly cpus: number
  readonly gpus: number
  readonly resume: (grant: Grant) => void
}

export class ResourcePool {
  readonly totalCpus: number
  readonly gpuIds: ReadonlyArray<string>
  private freeCpus: number
  private readonly freeGpus: Array<string>
  private readonly waiters: Array<Waiter> = []

  constructor(cpus: number, gpuIds: ReadonlyArray<string>) {
    this.totalCpus = cpus
    this.gpuIds = gpuIds
    this.freeCpus = cpus
    this.freeGpus = [...gpuIds]
  }

  /** Why `resources` can never be granted, or undefined when it can. */
  impossible(resources: Resources): string | undefined {
    if (resources.gpus > this.gpuIds.length) {
      return `needs ${resources.gpus} GPU(s) but the executor has ${this.gpuIds.length} (use --gpus 0,1,...)`
    }
    if (Math.min(resources.cpus, this.totalCpus) < resources.cpus && this.totalCpus === 0) return "the executor has no CPU slots"
    return undefined
  }

  /** A stage asking for more CPUs than the machine has gets all of them rather than waiting forever. */
  private cpusFor(resources: Resources) {
    return Math.min(resources.cpus, this.totalCpus)
  }

  acquire(resources: Resources): Effect.Effect<Grant, never, Scope.Scope> {
    const want = { cpus: this.cpusFor(resources), gpus: resources.gpus }
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
    this.freeGpus.push(...grant.gpus)
    this.freeGpus.sort((a, b) => this.gpuIds.indexOf(a) - this.gpuIds.indexOf(b))
    this.drain()
  }

  private drain() {
    for (let i = 0; i < this.waiters.length;) {
      const w = this.waiters[i]!
      if (w.cpus <= this.freeCpus && w.gpus <= this.freeGpus.length) {
        this.waiters.splice(i, 1)
        this.freeCpus -= w.cpus
        w.resume({ cpus: w.cpus, gpus: this.freeGpus.splice(0, w.gpus) })
      } else i++
    }
  }
}
