/**
 * Resumable data state for the training harness: an RNG's state, and an iterator that knows its position and
 * can be reopened there, so a resumed run draws the same batches an uninterrupted one would.
 */
import type { Rng } from "../Rng.ts"
import type { Resumable } from "./Harness.ts"

/** The RNG's state (one uint32) in checkpoints: batch draws by `rng.int` continue exactly. */
export const resumableRng = (rng: Rng): Resumable => ({
  save: () => rng.getState(),
  restore: (state) => rng.setState(state as number)
})

/**
 * An endless iterator by position: `open(start)` returns an iterator whose first item is item `start` of the
 * sequence (e.g. a seeded batch generator advanced by `start` batches). Checkpoints store the position only.
 */
export class PositionedIterator<T> implements Resumable {
  private iterator: Iterator<T>
  private position = 0
  private readonly open: (start: number) => Iterator<T>

  constructor(open: (start: number) => Iterator<T>) {
    this.open = open
    this.iterator = open(0)
  }

  /** Items taken so far. */
  get taken(): number {
    return this.position
  }

  next(): T {
    const r = this.iterator.next()
    if (r.done === true) throw new Error(`PositionedIterator: the sequence ended after ${this.position} items`)
    this.position++
    return r.value
  }

  save(): unknown {
    return { position: this.position }
  }

  restore(state: unknown): void {
    const position = (state as { position?: unknown } | undefined)?.position
    if (typeof position !== "number" || !Number.isInteger(position) || position < 0) throw new Error(`PositionedIterator.restore: bad state ${JSON.stringify(state)}`)
    this.iterator.return?.()
    this.iterator = this.open(position)
    this.position = position
  }
}

/** `open` for a generator that can only be replayed: advance a fresh one by `start` items. */
export const replayFrom = <T>(make: () => Iterator<T>) => (start: number): Iterator<T> => {
  const it = make()
  for (let i = 0; i < start; i++) if (it.next().done === true) throw new Error(`replayFrom: the sequence has fewer than ${start} items`)
  return it
}
