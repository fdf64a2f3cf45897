/**
 * Seeded random streams for MiniCraft. Every random choice is drawn from a stream keyed by the dataset
 * seed plus a path of names (task, split, episode index, purpose), so adding an episode or a new kind of
 * draw never shifts the numbers another episode sees: generation is reproducible piece by piece.
 */

/** FNV-1a over the UTF-16 code units of `text`, folded into `hash`. */
const fnv1a = (hash: number, text: string): number => {
  let h = hash >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

export interface Rng {
  /** uniform in [0, 1) */
  readonly next: () => number
  /** uniform in [lo, hi) */
  readonly uniform: (lo: number, hi: number) => number
  /** integer in [0, n) */
  readonly int: (n: number) => number
  readonly pick: <A>(items: ReadonlyArray<A>) => A
}

/** mulberry32: small, fast, good enough for procedural content (not for cryptography). */
const mulberry32 = (state0: number): Rng => {
  let state = state0 >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number): number => Math.min(n - 1, Math.floor(next() * n))
  return {
    next,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    int,
    pick: <A>(items: ReadonlyArray<A>): A => {
      if (items.length === 0) throw new RangeError("Rng.pick: empty list")
      return items[int(items.length)] as A
    }
  }
}

/** A stream for `seed` and a key path, e.g. `rngFor(7, "fold-plane", "train", "3", "appearance")`. */
export const rngFor = (seed: number, ...keys: ReadonlyArray<string>): Rng => {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`)
  let h = fnv1a(0x811c9dc5, String(seed))
  for (const key of keys) h = fnv1a(fnv1a(h, "/"), key)
  return mulberry32(h)
}
