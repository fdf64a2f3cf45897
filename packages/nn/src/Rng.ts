/**
 * Deterministic random numbers for initialisation and sampling. One `Rng` per model build: every parameter
 * draws its own 32-bit seed from it in construction order, so the same seed builds bit-identical weights.
 */
export class Rng {
  private state: number

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`)
    this.state = (Math.floor(seed) ^ 0x9e3779b9) >>> 0
  }

  /** Next uint32 (splitmix32). */
  nextUint32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0
    let z = this.state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296
  }

  /** A seed for a tfjs random op (tfjs accepts any number; keep it a positive int). */
  nextSeed(): number {
    return this.nextUint32()
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = Math.max(this.next(), 1e-12)
    const v = this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** The generator's whole state (one uint32), for a training checkpoint; `setState` continues the stream exactly. */
  getState(): number {
    return this.state
  }

  setState(state: number): void {
    if (!Number.isInteger(state) || state < 0 || state > 0xffffffff) throw new Error(`Rng.setState: expected a uint32, got ${state}`)
    this.state = state
  }

  /** An independent child stream (e.g. one per worker or per purpose). */
  fork(): Rng {
    return new Rng(this.nextUint32())
  }
}
