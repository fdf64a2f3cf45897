/**
 * MiniCALVIN world: a top-down tabletop in the spirit of CALVIN (Mees et al., 2022) small enough to
 * simulate and render on a CPU in microseconds per step. Deterministic: the next state is a pure function
 * of the state and the action (no randomness after the scene is sampled from a seed).
 *
 * Coordinates (table units): x ∈ [0, 1] left → right, y ∈ [0, 1] back → front (image top → bottom),
 * z ≥ 0 height above the table. Layout, back to front:
 *   y < 0.2   a cabinet with a shelf and a sliding door (the "slider"), and a light switch lever on the right
 *             with the lightbulb beside it
 *   table     three blocks (red, blue, pink, like CALVIN), a button with a green LED
 *   y > 0.8   a drawer that slides out towards the front
 *
 * Actions are CALVIN-style 7-d `rel_actions` in [-1, 1]: (dx, dy, dz, droll, dpitch, dyaw, gripper),
 * scaled to at most POS_STEP / YAW_STEP per step (roll and pitch are ignored: the gripper points down);
 * gripper > 0 opens, < 0 closes. Observations follow CALVIN: `robot_obs` (15) and `scene_obs` (24).
 */
import { SeededRandom } from "../dataset/Random.ts"

export const BLOCK_COLORS = ["red", "blue", "pink"] as const
export type BlockColor = (typeof BLOCK_COLORS)[number]

/** block footprint side and height */
export const BLOCK_SIZE = 0.07
export const BLOCK_HEIGHT = 0.05
/** largest motion per step at |action| = 1 */
export const POS_STEP = 0.03
export const YAW_STEP = 0.15
/** steps for the gripper to go from open to closed */
const GRIPPER_SPEED = 0.5
const TABLE_FRONT = 0.8
export const DRAWER_MAX = 0.16
export const DRAWER_FLOOR = -0.05
export const SHELF_HEIGHT = 0.1
export const EE_Z_MAX = 0.3

export interface Block {
  readonly color: BlockColor
  x: number
  y: number
  z: number
  yaw: number
  /** resting inside the drawer (moves with it) */
  inDrawer: boolean
}

export interface Robot {
  x: number
  y: number
  z: number
  yaw: number
  /** opening width: 1 open, 0 closed */
  gripper: number
  /** last gripper command: 1 open, -1 close */
  gripperAction: number
  held: BlockColor | undefined
}

/** Where the fixtures sit; scene variants A–D move them (like CALVIN's environments A–D). */
export interface Layout {
  readonly variant: string
  /** left edge of the drawer */
  readonly drawerX: number
  readonly drawerWidth: number
  /** shelf spans [shelfX0, shelfX1] at y ∈ [0.03, 0.17]; the door (width 0.3) slides between its halves */
  readonly shelfX0: number
  readonly shelfX1: number
  readonly switchX: number
  readonly buttonX: number
  readonly buttonY: number
  /** colours of the table surface and the furniture (appearance only) */
  readonly tableColor: readonly [number, number, number]
  readonly woodColor: readonly [number, number, number]
}

export const LAYOUTS: Readonly<Record<string, Layout>> = {
  A: { variant: "A", drawerX: 0.12, drawerWidth: 0.3, shelfX0: 0.2, shelfX1: 0.8, switchX: 0.9, buttonX: 0.9, buttonY: 0.55, tableColor: [176, 140, 100], woodColor: [120, 86, 58] },
  B: { variant: "B", drawerX: 0.55, drawerWidth: 0.3, shelfX0: 0.15, shelfX1: 0.75, switchX: 0.88, buttonX: 0.1, buttonY: 0.5, tableColor: [150, 150, 156], woodColor: [84, 84, 96] },
  C: { variant: "C", drawerX: 0.3, drawerWidth: 0.32, shelfX0: 0.25, shelfX1: 0.85, switchX: 0.1, buttonX: 0.9, buttonY: 0.42, tableColor: [196, 178, 140], woodColor: [140, 104, 70] },
  D: { variant: "D", drawerX: 0.2, drawerWidth: 0.3, shelfX0: 0.3, shelfX1: 0.9, switchX: 0.12, buttonX: 0.12, buttonY: 0.6, tableColor: [120, 136, 120], woodColor: [70, 92, 76] }
}

export interface WorldState {
  readonly layout: Layout
  robot: Robot
  blocks: Block[]
  /** drawer opening in [0, DRAWER_MAX] */
  drawer: number
  /** left edge of the sliding door, in [shelfX0, shelfX1 − 0.3] */
  slider: number
  /** switch lever position in [0, 1]; the lightbulb is on above 0.5 */
  switchPos: number
  lightbulb: boolean
  /** button held down this step (the LED toggles on the press edge) */
  buttonDown: boolean
  led: boolean
}

export const cloneState = (s: WorldState): WorldState => ({
  layout: s.layout,
  robot: { ...s.robot },
  blocks: s.blocks.map((b) => ({ ...b })),
  drawer: s.drawer,
  slider: s.slider,
  switchPos: s.switchPos,
  lightbulb: s.lightbulb,
  buttonDown: s.buttonDown,
  led: s.led
})

export const sliderMin = (l: Layout): number => l.shelfX0
export const sliderMax = (l: Layout): number => l.shelfX1 - 0.3
export const sliderHandle = (s: WorldState): { x: number; y: number } => ({ x: s.slider + 0.15, y: 0.17 })
export const drawerHandle = (s: WorldState): { x: number; y: number } => ({ x: s.layout.drawerX + s.layout.drawerWidth / 2, y: TABLE_FRONT + s.drawer + 0.015 })
export const switchHandle = (s: WorldState): { x: number; y: number } => ({ x: s.layout.switchX, y: 0.05 + 0.1 * s.switchPos })
export const buttonPos = (s: WorldState): { x: number; y: number } => ({ x: s.layout.buttonX, y: s.layout.buttonY })

export const blockOf = (s: WorldState, color: BlockColor): Block => s.blocks.find((b) => b.color === color)!

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v))
const dist2 = (ax: number, ay: number, bx: number, by: number): number => Math.hypot(ax - bx, ay - by)

/** The drawer's interior (where a dropped block lands inside it); empty when closed. */
export const drawerInterior = (s: WorldState): { x0: number; x1: number; y0: number; y1: number } => ({
  x0: s.layout.drawerX + 0.02,
  x1: s.layout.drawerX + s.layout.drawerWidth - 0.02,
  y0: TABLE_FRONT,
  y1: TABLE_FRONT + s.drawer - 0.01
})

export const inShelf = (s: WorldState, x: number, y: number): boolean => x >= s.layout.shelfX0 && x <= s.layout.shelfX1 && y >= 0.03 && y <= 0.17
export const inDrawerArea = (s: WorldState, x: number, y: number): boolean => {
  const d = drawerInterior(s)
  return x >= d.x0 && x <= d.x1 && y >= d.y0 && y <= d.y1
}

/** Samples a scene for a layout from a seed: fixtures' states, block poses (maybe one stack). */
export const sampleScene = (seed: number, variant = "A"): WorldState => {
  const layout = LAYOUTS[variant]
  if (layout === undefined) throw new RangeError(`MiniCALVIN: unknown scene variant ${JSON.stringify(variant)} (known: ${Object.keys(LAYOUTS).join(", ")})`)
  const rng = SeededRandom.derive(seed, `minicalvin:scene:${variant}`)
  const blocks: Block[] = []
  const keepClear = [buttonPosFor(layout)]
  for (const color of BLOCK_COLORS) {
    for (let attempt = 0; ; attempt++) {
      const x = rng.uniform(0.25, 0.75)
      const y = rng.uniform(0.32, 0.7)
      const clear = blocks.every((b) => dist2(b.x, b.y, x, y) > 0.16) && keepClear.every((p) => dist2(p.x, p.y, x, y) > 0.16)
      if (clear || attempt > 200) {
        blocks.push({ color, x, y, z: 0, yaw: rng.uniform(-0.4, 0.4), inDrawer: false })
        break
      }
    }
  }
  // one scene in four starts with a stack, so unstacking is feasible from the start
  if (rng.next() < 0.25) {
    const top = rng.int(3)
    const bottom = (top + 1 + rng.int(2)) % 3
    const b = blocks[bottom]!
    blocks[top] = { ...blocks[top]!, x: b.x + rng.uniform(-0.01, 0.01), y: b.y + rng.uniform(-0.01, 0.01), z: BLOCK_HEIGHT }
  }
  const sliderLeft = rng.next() < 0.5
  const switchOn = rng.next() < 0.5
  return {
    layout,
    robot: { x: 0.5, y: 0.5, z: 0.2, yaw: 0, gripper: 1, gripperAction: 1, held: undefined },
    blocks,
    drawer: rng.next() < 0.5 ? 0 : DRAWER_MAX,
    slider: sliderLeft ? sliderMin(layout) : sliderMax(layout),
    switchPos: switchOn ? 1 : 0,
    lightbulb: switchOn,
    buttonDown: false,
    led: rng.next() < 0.5
  }
}

const buttonPosFor = (l: Layout): { x: number; y: number } => ({ x: l.buttonX, y: l.buttonY })

/** Height a released block comes to rest at (and whether that is inside the drawer). */
const restingPlace = (s: WorldState, block: Block): { z: number; inDrawer: boolean } => {
  let z = 0
  let inDrawer = false
  if (inDrawerArea(s, block.x, block.y)) {
    z = DRAWER_FLOOR
    inDrawer = true
  } else if (inShelf(s, block.x, block.y)) {
    z = SHELF_HEIGHT
  }
  for (const other of s.blocks) {
    if (other === block || other.color === s.robot.held) continue
    if (dist2(other.x, other.y, block.x, block.y) < BLOCK_SIZE * 0.9 && other.z + BLOCK_HEIGHT > z && other.z <= block.z) {
      z = other.z + BLOCK_HEIGHT
      inDrawer = other.inDrawer
    }
  }
  return { z, inDrawer }
}

/** true when some block rests on top of `block` */
export const hasBlockOnTop = (s: WorldState, block: Block): boolean =>
  s.blocks.some((o) => o !== block && o.color !== s.robot.held && dist2(o.x, o.y, block.x, block.y) < BLOCK_SIZE * 0.9 && Math.abs(o.z - (block.z + BLOCK_HEIGHT)) < 0.01)

/**
 * Advances the world by one step under a 7-d relative action (mutates and returns `s`).
 * Order: gripper, then end-effector motion (with the held block), then contacts (pushing blocks,
 * dragging drawer/slider/switch handles, pressing the button).
 */
export const step = (s: WorldState, action: ArrayLike<number>): WorldState => {
  if (action.length !== 7) throw new RangeError(`MiniCALVIN: action must have 7 values, got ${action.length}`)
  const a = Array.from(action, (v) => (Number.isFinite(v) ? clamp(v, -1, 1) : 0))
  const r = s.robot
  const heldBefore = r.held

  // gripper: command sets the target, width moves towards it; closing around a block grasps it
  const command = a[6]! >= 0 ? 1 : -1
  r.gripperAction = command
  const wasOpen = r.gripper > 0.5
  r.gripper = clamp(r.gripper + (command > 0 ? GRIPPER_SPEED : -GRIPPER_SPEED), 0, 1)
  if (command < 0 && wasOpen && r.held === undefined) {
    const candidates = s.blocks
      .filter((b) => dist2(b.x, b.y, r.x, r.y) < 0.035 && Math.abs(r.z - (b.z + BLOCK_HEIGHT / 2)) < 0.03 && !hasBlockOnTop(s, b))
      .sort((p, q) => q.z - p.z)
    if (candidates[0] !== undefined) {
      r.held = candidates[0].color
      candidates[0].inDrawer = false
    }
  }
  if (command > 0 && r.held !== undefined) {
    const block = blockOf(s, r.held)
    r.held = undefined
    const rest = restingPlace(s, block)
    block.z = rest.z
    block.inDrawer = rest.inDrawer
  }

  // end-effector motion; the held block moves with it, rotating with the gripper
  const dx = a[0]! * POS_STEP
  const dy = a[1]! * POS_STEP
  const dz = a[2]! * POS_STEP
  const dyaw = a[5]! * YAW_STEP
  // a held block cannot be pushed through the table (or the drawer's floor)
  const minZ = r.held !== undefined ? BLOCK_HEIGHT / 2 + (inDrawerArea(s, r.x, r.y) ? DRAWER_FLOOR : 0) : 0
  const nx = clamp(r.x + dx, 0, 1)
  const ny = clamp(r.y + dy, 0, 1)
  const nz = clamp(r.z + dz, Math.min(minZ, r.z), EE_Z_MAX)
  const moved = { dx: nx - r.x, dy: ny - r.y }
  r.x = nx
  r.y = ny
  r.z = nz
  r.yaw += dyaw
  if (r.held !== undefined && r.held === heldBefore) {
    const block = blockOf(s, r.held)
    block.x = r.x
    block.y = r.y
    block.z = r.z - BLOCK_HEIGHT / 2
    block.yaw += dyaw
  } else if (r.held !== undefined) {
    const block = blockOf(s, r.held)
    block.x = r.x
    block.y = r.y
    block.z = Math.max(block.z, r.z - BLOCK_HEIGHT / 2)
  }

  // pushing: a low, empty gripper that moves into a block on the table carries it along
  if (r.held === undefined && r.z < BLOCK_HEIGHT * 0.9 && (moved.dx !== 0 || moved.dy !== 0)) {
    for (const b of s.blocks) {
      if (b.z > 0.005 || b.inDrawer) continue
      if (dist2(b.x, b.y, r.x, r.y) < 0.05) {
        const bx = clamp(b.x + moved.dx, 0.05, 0.95)
        const by = clamp(b.y + moved.dy, 0.22, TABLE_FRONT - 0.04)
        for (const o of s.blocks) {
          // a block resting on the pushed one rides along
          if (o !== b && Math.abs(o.z - BLOCK_HEIGHT) < 0.01 && dist2(o.x, o.y, b.x, b.y) < BLOCK_SIZE * 0.9) {
            o.x += bx - b.x
            o.y += by - b.y
          }
        }
        b.x = bx
        b.y = by
      }
    }
  }

  // handles: a low gripper at a handle drags it along its rail
  const dh = drawerHandle(s)
  if (r.held === undefined && r.z < 0.06 && dist2(r.x, r.y - moved.dy, dh.x, dh.y) < 0.045 && moved.dy !== 0) {
    const before = s.drawer
    s.drawer = clamp(s.drawer + moved.dy, 0, DRAWER_MAX)
    for (const b of s.blocks) if (b.inDrawer) b.y += s.drawer - before
  }
  const sh = sliderHandle(s)
  if (r.held === undefined && r.z < 0.1 && dist2(r.x - moved.dx, r.y, sh.x, sh.y) < 0.045 && moved.dx !== 0) {
    s.slider = clamp(s.slider + moved.dx, sliderMin(s.layout), sliderMax(s.layout))
  }
  const sw = switchHandle(s)
  if (r.held === undefined && r.z < 0.1 && dist2(r.x, r.y - moved.dy, sw.x, sw.y) < 0.045 && moved.dy !== 0) {
    s.switchPos = clamp(s.switchPos + moved.dy / 0.1, 0, 1)
    s.lightbulb = s.switchPos > 0.5
  }

  // button: pressing it (gripper low over it) toggles the LED once per press
  const bp = buttonPos(s)
  const down = r.z < 0.025 && dist2(r.x, r.y, bp.x, bp.y) < 0.04
  if (down && !s.buttonDown) s.led = !s.led
  s.buttonDown = down
  return s
}

/** CALVIN's 15-d robot_obs: tcp pos (3), tcp euler (3), gripper width (1), arm joints (7), gripper action (1).
 * MiniCALVIN has no arm, so the 7 "joints" are a fixed smooth encoding of the pose (documented stand-in). */
export const robotObs = (s: WorldState): Float32Array => {
  const r = s.robot
  return Float32Array.from([
    r.x, r.y, r.z, 0, 0, r.yaw, r.gripper * 0.08,
    Math.atan2(r.y - 1.1, r.x - 0.5), Math.hypot(r.x - 0.5, r.y - 1.1), r.z, Math.sin(r.yaw), Math.cos(r.yaw), r.x - r.y, r.z * r.gripper,
    r.gripperAction
  ])
}

/** CALVIN's 24-d scene_obs: sliding door, drawer, button, switch, lightbulb, green light, then per block
 * (red, blue, pink) position (3) and euler angles (3). */
export const sceneObs = (s: WorldState): Float32Array => {
  const out = [s.slider, s.drawer, s.buttonDown ? 1 : 0, s.switchPos, s.lightbulb ? 1 : 0, s.led ? 1 : 0]
  for (const color of BLOCK_COLORS) {
    const b = blockOf(s, color)
    out.push(b.x, b.y, b.z, 0, 0, b.yaw)
  }
  return Float32Array.from(out)
}
