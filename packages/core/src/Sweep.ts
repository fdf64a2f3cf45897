/**
 * Sweep expansion: `grid` is a cartesian product (first key varies slowest), `random` draws `n` points
 * from a seeded PRNG; with both, every grid point gets the `n` random draws. Returns assignments
 * (config path → value); the planner applies them and validates the resulting configs.
 */
import { ConfigError } from "./Config.ts"
import type { PathSegment } from "./ConfigPath.ts"
import { parsePath } from "./ConfigPath.ts"

/** One sweep point: path text → value, in declaration order. */
export type Assignments = ReadonlyArray<{ readonly key: string; readonly path: ReadonlyArray<PathSegment>; readonly value: unknown }>

interface SweepInput {
  readonly grid?: Readonly<Record<string, ReadonlyArray<unknown> | undefined>>
  readonly random?: { readonly n: number; readonly seed?: number; readonly space: Readonly<Record<string, unknown>> }
}

const sweepError = (path: string, message: string) => new ConfigError({ source: "sweep", issues: [{ path, message }] })

const pathOf = (key: string, where: string): ReadonlyArray<PathSegment> => {
  const path = parsePath(key)
  if (path === undefined) throw sweepError(`${where}.${key}`, "not a config path")
  return path
}

/** mulberry32: small, fast, good enough for sweep sampling, and stable across Node versions. */
export const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const range = (key: string, kind: string, value: unknown): readonly [number, number] => {
  if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => typeof v === "number" && Number.isFinite(v)) || value[0] > value[1]) {
    throw sweepError(`random.space.${key}.${kind}`, "expected [low, high] with low ≤ high")
  }
  return value as unknown as readonly [number, number]
}

const draw = (key: string, distribution: unknown, rng: () => number): unknown => {
  const d = distribution as Record<string, unknown>
  if (typeof d !== "object" || d === null) throw sweepError(`random.space.${key}`, "expected { uniform | logUniform | intUniform | choice }")
  if ("choice" in d) {
    if (!Array.isArray(d.choice) || d.choice.length === 0) throw sweepError(`random.space.${key}.choice`, "expected a non-empty array")
    return d.choice[Math.floor(rng() * d.choice.length)]
  }
  if ("uniform" in d) {
    const [lo, hi] = range(key, "uniform", d.uniform)
    return lo + rng() * (hi - lo)
  }
  if ("logUniform" in d) {
    const [lo, hi] = range(key, "logUniform", d.logUniform)
    if (lo <= 0) throw sweepError(`random.space.${key}.logUniform`, "bounds must be > 0")
    return Math.exp(Math.log(lo) + rng() * (Math.log(hi) - Math.log(lo)))
  }
  if ("intUniform" in d) {
    const [lo, hi] = range(key, "intUniform", d.intUniform)
    if (!Number.isInteger(lo) || !Number.isInteger(hi)) throw sweepError(`random.space.${key}.intUniform`, "bounds must be integers")
    return lo + Math.floor(rng() * (hi - lo + 1))
  }
  throw sweepError(`random.space.${key}`, "expected one of uniform, logUniform, intUniform, choice")
}

export const expandSweep = (sweep: SweepInput | undefined): ReadonlyArray<Assignments> => {
  let points: Array<Assignments> = [[]]
  for (const [key, values] of Object.entries(sweep?.grid ?? {})) {
    if (values === undefined) continue
    if (!Array.isArray(values) || values.length === 0) throw sweepError(`grid.${key}`, "expected a non-empty array of values")
    const path = pathOf(key, "grid")
    const next: Array<Assignments> = []
    for (const point of points) for (const value of values) next.push([...point, { key, path, value }])
    points = next
  }
  const random = sweep?.random
  if (random !== undefined) {
    if (!Number.isInteger(random.n) || random.n < 1) throw sweepError("random.n", "expected an integer ≥ 1")
    const rng = mulberry32(random.seed ?? 0)
    const space = Object.entries(random.space ?? {}).map(([key, d]) => ({ key, path: pathOf(key, "random.space"), d }))
    const next: Array<Assignments> = []
    for (const point of points) {
      for (let i = 0; i < random.n; i++) next.push([...point, ...space.map(({ key, path, d }) => ({ key, path, value: draw(key, d, rng) }))])
    }
    points = next
  }
  return points
}
