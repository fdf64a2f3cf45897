/**
 * A small seeded PRNG (mulberry32) for everything in @vw2/data that must be reproducible from a seed:
 * clip shuffling, mixture draws, MiniCALVIN scene layouts and task chains. Same seed → same sequence on
 * every platform (pure 32-bit integer arithmetic).
 */
export class SeededRandom {
  private state: number

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`SeededRandom: seed must be a finite number, got ${seed}`)
    // fold any number (including negatives and non-integers) into 32 bits, then scramble once
    this.state = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0
    this.nextUint32()
  }

  /** A generator for an independent stream derived from this seed and a label (stable across runs). */
  static derive(seed: number, label: string): SeededRandom {
    let h = (Math.trunc(seed) ^ 0x811c9dc5) >>> 0
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0
    return new SeededRandom(h)
  }

  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`SeededRandom.int: n must be a positive integer, got ${n}`)
    return Math.floor(this.next() * n)
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next()
  }

  pick<T>(items: ReadonlyArray<T>): T {
    if (items.length === 0) throw new RangeError("SeededRandom.pick: empty list")
    return items[this.int(items.length)] as T
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const tmp = items[i] as T
      items[i] = items[j] as T
      items[j] = tmp
    }
    return items
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n)
    for (let i = 0; i < n; i++) out[i] = i
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const tmp = out[i] as number
      out[i] = out[j] as number
      out[j] = tmp
    }
    return out
  }
}
