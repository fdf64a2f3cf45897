/**
 * Plane geometry for MiniCraft scenes: points, affine maps, half-plane clipping and the fold map.
 * World coordinates: the table is the square [-1, 1]², x to the right, y downwards (image convention).
 */

export interface Vec {
  readonly x: number
  readonly y: number
}

export type Polygon = ReadonlyArray<Vec>

export const vec = (x: number, y: number): Vec => ({ x, y })

/** x' = a·x + c·y + e, y' = b·x + d·y + f (the SVG/canvas matrix layout). */
export interface Affine {
  readonly a: number
  readonly b: number
  readonly c: number
  readonly d: number
  readonly e: number
  readonly f: number
}

export const identity: Affine = { a: 1, b: 0, c: 0, d: 1, e: 0, f: 0 }

export const apply = (m: Affine, p: Vec): Vec => ({ x: m.a * p.x + m.c * p.y + m.e, y: m.b * p.x + m.d * p.y + m.f })

/** `compose(m, n)` applies `n` first, then `m`. */
export const compose = (m: Affine, n: Affine): Affine => ({
  a: m.a * n.a + m.c * n.b,
  b: m.b * n.a + m.d * n.b,
  c: m.a * n.c + m.c * n.d,
  d: m.b * n.c + m.d * n.d,
  e: m.a * n.e + m.c * n.f + m.e,
  f: m.b * n.e + m.d * n.f + m.f
})

export const invert = (m: Affine): Affine => {
  const det = m.a * m.d - m.b * m.c
  if (Math.abs(det) < 1e-12) throw new RangeError("Affine map is singular")
  const a = m.d / det
  const b = -m.b / det
  const c = -m.c / det
  const d = m.a / det
  return { a, b, c, d, e: -(a * m.e + c * m.f), f: -(b * m.e + d * m.f) }
}

export const translate = (x: number, y: number): Affine => ({ ...identity, e: x, f: y })
export const scale = (s: number): Affine => ({ a: s, b: 0, c: 0, d: s, e: 0, f: 0 })
export const rotate = (radians: number): Affine => {
  const cos = Math.cos(radians)
  const sin = Math.sin(radians)
  return { a: cos, b: sin, c: -sin, d: cos, e: 0, f: 0 }
}

export const transformPolygon = (m: Affine, polygon: Polygon): Polygon => polygon.map((p) => apply(m, p))

export const lerp = (a: number, b: number, t: number): number => a + (b - a) * t
export const lerpVec = (p: Vec, q: Vec, t: number): Vec => ({ x: lerp(p.x, q.x, t), y: lerp(p.y, q.y, t) })
export const smoothstep = (t: number): number => {
  const u = Math.min(1, Math.max(0, t))
  return u * u * (3 - 2 * u)
}
export const distance = (p: Vec, q: Vec): number => Math.hypot(p.x - q.x, p.y - q.y)

/** Signed area (positive for clockwise in y-down coordinates). */
export const polygonArea = (polygon: Polygon): number => {
  let sum = 0
  for (let i = 0; i < polygon.length; i++) {
    const p = polygon[i] as Vec
    const q = polygon[(i + 1) % polygon.length] as Vec
    sum += p.x * q.y - q.x * p.y
  }
  return sum / 2
}

/** A directed line through `p` and `q`; the unit normal points to the side holding `towards`. */
export interface Line {
  readonly origin: Vec
  /** unit normal */
  readonly normal: Vec
}

export const lineThrough = (p: Vec, q: Vec, towards: Vec): Line => {
  const dx = q.x - p.x
  const dy = q.y - p.y
  const length = Math.hypot(dx, dy)
  if (length === 0) throw new RangeError("lineThrough: the two points coincide")
  let normal = vec(-dy / length, dx / length)
  if ((towards.x - p.x) * normal.x + (towards.y - p.y) * normal.y < 0) normal = vec(-normal.x, -normal.y)
  return { origin: p, normal }
}

export const signedDistance = (line: Line, p: Vec): number =>
  (p.x - line.origin.x) * line.normal.x + (p.y - line.origin.y) * line.normal.y

/**
 * Sutherland–Hodgman clip of a (possibly non-convex) polygon to the half-plane `sign·distance ≥ 0`.
 * For non-convex input the result may contain zero-area bridges along the line, which rasterize to nothing.
 */
export const clipHalfPlane = (polygon: Polygon, line: Line, sign: 1 | -1): Polygon => {
  const out: Vec[] = []
  const n = polygon.length
  for (let i = 0; i < n; i++) {
    const p = polygon[i] as Vec
    const q = polygon[(i + 1) % n] as Vec
    const dp = sign * signedDistance(line, p)
    const dq = sign * signedDistance(line, q)
    if (dp >= 0) out.push(p)
    if ((dp >= 0) !== (dq >= 0)) {
      const t = dp / (dp - dq)
      out.push(lerpVec(p, q, t))
    }
  }
  return Math.abs(polygonArea(out)) < 1e-9 ? [] : out
}

/**
 * The map of a fold in progress: points at signed distance `s > 0` (the flap side) go to `s·cos(angle)`,
 * i.e. the flap seen from above while it rotates by `angle` about the line; `angle = π` is the reflection.
 */
export const foldMap = (line: Line, angle: number): Affine => {
  const k = 1 - Math.cos(angle)
  const { x: nx, y: ny } = line.normal
  const dot = line.origin.x * nx + line.origin.y * ny
  return {
    a: 1 - k * nx * nx,
    b: -k * nx * ny,
    c: -k * nx * ny,
    d: 1 - k * ny * ny,
    e: k * nx * dot,
    f: k * ny * dot
  }
}
