/**
 * A tiny rasterizer for MiniCALVIN: draws the scene top-down into an RGB8 frame (any size ≥ 16, default
 * 64×64) by painter's algorithm over axis-aligned rectangles, rotated squares and discs, sampled at pixel
 * centres. Height is shown the way a slightly tilted camera would: raised things are drawn larger and
 * shifted up the image, and the gripper casts a shadow on the table.
 * Two cameras, as in CALVIN: `static` (the whole table) and `gripper` (a zoomed view following the gripper).
 */
import { BLOCK_COLORS, BLOCK_SIZE, type BlockColor, buttonPos, DRAWER_FLOOR, drawerHandle, inShelf, sliderHandle, switchHandle, type WorldState } from "./World.ts"

export type Rgb = readonly [number, number, number]

export interface Camera {
  /** world point at the image centre */
  readonly cx: number
  readonly cy: number
  /** image width covers 1 / zoom table units */
  readonly zoom: number
}

export const STATIC_CAMERA: Camera = { cx: 0.5, cy: 0.5, zoom: 1 }
export const gripperCamera = (s: WorldState, zoom = 3): Camera => ({ cx: s.robot.x, cy: s.robot.y, zoom })

export const BLOCK_RGB: Readonly<Record<BlockColor, Rgb>> = { red: [210, 40, 40], blue: [40, 70, 210], pink: [235, 120, 190] }

/** how far up the image (table units per unit height) raised things are drawn */
const LIFT_SHIFT = 0.6
const LIFT_SCALE = 2.5

class Canvas {
  readonly width: number
  readonly height: number
  readonly data: Uint8Array
  private readonly camera: Camera

  constructor(width: number, height: number, camera: Camera) {
    this.width = width
    this.height = height
    this.camera = camera
    this.data = new Uint8Array(width * height * 3)
  }

  /** world coordinates of pixel (px, py)'s centre */
  private world(px: number, py: number): [number, number] {
    const c = this.camera
    return [c.cx + ((px + 0.5) / this.width - 0.5) / c.zoom, c.cy + ((py + 0.5) / this.height - 0.5) / c.zoom]
  }

  private pixelRange(x0: number, x1: number, y0: number, y1: number): [number, number, number, number] {
    const c = this.camera
    const toPx = (x: number): number => ((x - c.cx) * c.zoom + 0.5) * this.width
    const toPy = (y: number): number => ((y - c.cy) * c.zoom + 0.5) * this.height
    return [
      Math.max(0, Math.floor(toPx(x0)) - 1),
      Math.min(this.width - 1, Math.ceil(toPx(x1)) + 1),
      Math.max(0, Math.floor(toPy(y0)) - 1),
      Math.min(this.height - 1, Math.ceil(toPy(y1)) + 1)
    ]
  }

  fill(bounds: readonly [number, number, number, number], inside: (x: number, y: number) => boolean, color: Rgb): void {
    const [px0, px1, py0, py1] = this.pixelRange(...bounds)
    for (let py = py0; py <= py1; py++) {
      for (let px = px0; px <= px1; px++) {
        const [x, y] = this.world(px, py)
        if (!inside(x, y)) continue
        const o = (py * this.width + px) * 3
        this.data[o] = color[0]
        this.data[o + 1] = color[1]
        this.data[o + 2] = color[2]
      }
    }
  }

  rect(x0: number, y0: number, x1: number, y1: number, color: Rgb): void {
    this.fill([x0, x1, y0, y1], (x, y) => x >= x0 && x < x1 && y >= y0 && y < y1, color)
  }

  disc(cx: number, cy: number, r: number, color: Rgb): void {
    this.fill([cx - r, cx + r, cy - r, cy + r], (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r, color)
  }

  /** a rectangle of half-sizes (hx, hy) centred at (cx, cy), rotated by yaw */
  box(cx: number, cy: number, hx: number, hy: number, yaw: number, color: Rgb): void {
    const c = Math.cos(yaw)
    const s = Math.sin(yaw)
    const r = Math.hypot(hx, hy)
    this.fill([cx - r, cx + r, cy - r, cy + r], (x, y) => {
      const dx = x - cx
      const dy = y - cy
      return Math.abs(c * dx + s * dy) <= hx && Math.abs(-s * dx + c * dy) <= hy
    }, color)
  }
}

const shade = (c: Rgb, f: number): Rgb => [Math.min(255, Math.round(c[0] * f)), Math.min(255, Math.round(c[1] * f)), Math.min(255, Math.round(c[2] * f))]

/** Screen position and scale of something at height z. */
const lifted = (x: number, y: number, z: number): { x: number; y: number; k: number } => ({ x, y: y - LIFT_SHIFT * Math.max(0, z), k: 1 + LIFT_SCALE * Math.max(0, z) })

export const render = (s: WorldState, width = 64, height = width, camera: Camera = STATIC_CAMERA): Uint8Array => {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 8 || height < 8) throw new RangeError(`MiniCALVIN render: size ${width}×${height} must be integers ≥ 8`)
  const cv = new Canvas(width, height, camera)
  const L = s.layout
  const wood = L.woodColor
  cv.rect(-10, -10, 10, 10, [46, 46, 52]) // floor
  cv.rect(0, 0, 1, 0.8, L.tableColor)

  // drawer sliding out at the front: interior, blocks inside, then the front panel and its handle
  const dx0 = L.drawerX
  const dx1 = L.drawerX + L.drawerWidth
  if (s.drawer > 0.005) {
    cv.rect(dx0, 0.8, dx1, 0.8 + s.drawer, shade(wood, 0.9))
    cv.rect(dx0 + 0.02, 0.8, dx1 - 0.02, 0.8 + s.drawer - 0.01, shade(wood, 0.55))
  }
  for (const b of s.blocks) if (b.inDrawer && s.robot.held !== b.color) cv.box(b.x, b.y, BLOCK_SIZE / 2 * 0.85, BLOCK_SIZE / 2 * 0.85, b.yaw, shade(BLOCK_RGB[b.color], 0.75))
  cv.rect(dx0, 0.8 + s.drawer - 0.012, dx1, 0.8 + s.drawer + 0.008, shade(wood, 1.15))
  const dh = drawerHandle(s)
  cv.rect(dh.x - 0.05, dh.y - 0.008, dh.x + 0.05, dh.y + 0.012, [205, 205, 210])

  // cabinet at the back: shelf, blocks on it, sliding door with handle
  cv.rect(L.shelfX0 - 0.02, 0.01, L.shelfX1 + 0.02, 0.19, wood)
  cv.rect(L.shelfX0, 0.03, L.shelfX1, 0.17, shade(wood, 0.6))
  for (const b of s.blocks) {
    if (s.robot.held !== b.color && inShelf(s, b.x, b.y) && b.z > 0.05) {
      const p = lifted(b.x, b.y, b.z)
      cv.box(p.x, p.y, (BLOCK_SIZE / 2) * p.k, (BLOCK_SIZE / 2) * p.k, b.yaw, BLOCK_RGB[b.color])
    }
  }
  cv.rect(s.slider, 0.03, s.slider + 0.3, 0.17, shade(wood, 1.35))
  const sh = sliderHandle(s)
  cv.rect(sh.x - 0.015, sh.y - 0.03, sh.x + 0.015, sh.y + 0.01, [205, 205, 210])

  // light switch (slot + lever) and the lightbulb on its stand
  cv.rect(L.switchX - 0.012, 0.03, L.switchX + 0.012, 0.17, [40, 40, 40])
  const sw = switchHandle(s)
  cv.disc(sw.x, sw.y, 0.022, [220, 220, 225])
  cv.disc(L.switchX, 0.25, 0.038, s.lightbulb ? [255, 236, 80] : [88, 88, 76])

  // button and its LED
  const bp = buttonPos(s)
  cv.disc(bp.x, bp.y, 0.034, [90, 90, 95])
  cv.disc(bp.x, bp.y, 0.024, s.buttonDown ? [120, 30, 30] : [200, 45, 45])
  cv.disc(bp.x, bp.y - 0.065, 0.02, s.led ? [60, 240, 80] : [30, 66, 40])

  // blocks on the table and stacks, lowest first
  const visible = s.blocks
    .filter((b) => s.robot.held !== b.color && !b.inDrawer && !(inShelf(s, b.x, b.y) && b.z > 0.05))
    .sort((a, b) => a.z - b.z || BLOCK_COLORS.indexOf(a.color) - BLOCK_COLORS.indexOf(b.color))
  for (const b of visible) {
    const p = lifted(b.x, b.y, b.z)
    const half = (BLOCK_SIZE / 2) * p.k
    cv.box(p.x, p.y, half, half, b.yaw, shade(BLOCK_RGB[b.color], b.z > 0.01 ? 1.12 : 1))
    // a darker mark on one side makes the yaw visible
    cv.box(p.x + Math.cos(b.yaw) * half * 0.55, p.y + Math.sin(b.yaw) * half * 0.55, half * 0.35, half * 0.9, b.yaw, shade(BLOCK_RGB[b.color], 0.6))
  }

  // gripper: shadow on the table, held block, palm and two fingers whose gap shows the opening
  const r = s.robot
  const ground = r.z > 0.005 ? Math.max(0, r.y) : r.y
  cv.disc(r.x, ground, 0.02, shade(L.tableColor, 0.6))
  if (r.held !== undefined) {
    const b = s.blocks.find((q) => q.color === r.held)!
    const p = lifted(b.x, b.y, b.z + (b.z < 0 ? -DRAWER_FLOOR : 0))
    const half = (BLOCK_SIZE / 2) * p.k
    cv.box(p.x, p.y, half, half, b.yaw, shade(BLOCK_RGB[b.color], 1.12))
  }
  const g = lifted(r.x, r.y, r.z)
  const spread = (0.012 + 0.028 * r.gripper) * g.k
  const c = Math.cos(r.yaw)
  const sn = Math.sin(r.yaw)
  for (const side of [-1, 1]) {
    cv.box(g.x + side * c * spread, g.y + side * sn * spread, 0.007 * g.k, 0.02 * g.k, r.yaw, [235, 235, 235])
  }
  cv.disc(g.x, g.y, 0.014 * g.k, [70, 70, 78])
  return cv.data
}
