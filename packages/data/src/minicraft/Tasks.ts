/**
 * The five MiniCraft tasks, mirroring Video-CraftBench: paper folding (`fold-plane`, `fold-boat`, 7 folds
 * each) and block building (`blocks-human`, `blocks-tower`, `blocks-horse`, 7 blocks each, moved one by one
 * from a tray into a target shape). Geometry is in world coordinates (table = [-1, 1]², y down).
 */
import type { Rgb } from "./Raster.ts"
import type { Polygon, Vec } from "./Geometry.ts"
import { vec } from "./Geometry.ts"

export const TASK_NAMES = ["fold-plane", "fold-boat", "blocks-human", "blocks-tower", "blocks-horse"] as const
export type TaskName = (typeof TASK_NAMES)[number]

export const isTaskName = (name: string): name is TaskName => (TASK_NAMES as ReadonlyArray<string>).includes(name)

/** One fold: the flap (the side of the line through `from`–`to` that holds `flap`) turns over the line. */
export interface FoldStep {
  readonly description: string
  readonly from: Vec
  readonly to: Vec
  readonly flap: Vec
}

/** One block: moved from its tray slot to `target` (centre); axis-aligned, `width` × `height`. */
export interface BlockStep {
  readonly description: string
  readonly width: number
  readonly height: number
  readonly color: Rgb
  readonly target: Vec
  /** centre of its slot in the tray (derived from the order of the blocks) */
  readonly slot: Vec
}

export type Task =
  | { readonly name: TaskName; readonly family: "fold"; readonly instruction: string; readonly sheet: Polygon; readonly steps: ReadonlyArray<FoldStep> }
  | { readonly name: TaskName; readonly family: "blocks"; readonly instruction: string; readonly tray: Polygon; readonly steps: ReadonlyArray<BlockStep> }

const rect = (cx: number, cy: number, halfW: number, halfH: number): Polygon => [
  vec(cx - halfW, cy - halfH),
  vec(cx + halfW, cy - halfH),
  vec(cx + halfW, cy + halfH),
  vec(cx - halfW, cy + halfH)
]

const rgb = (r: number, g: number, b: number): Rgb => [r / 255, g / 255, b / 255]

// ---- paper folding -------------------------------------------------------------------------------------
// MiniCraft v2: the sheets fill most of the table and every fold turns a large flap, so at 32 px each step
// changes more pixels than the thin arm covers (packages/data/scripts/motion-budget.ts measures it).

const PLANE_A = 0.56 // half width of the portrait sheet
const PLANE_B = 0.84 // half height
const NOSE = -PLANE_B + 0.44 // the nose fold's line

const foldPlane: Task = {
  name: "fold-plane",
  family: "fold",
  instruction: "Fold the sheet into a paper plane in seven folds.",
  sheet: rect(0, 0, PLANE_A, PLANE_B),
  steps: [
    { description: "fold the top-left corner to the centre line", from: vec(0, -PLANE_B), to: vec(-PLANE_A, -PLANE_B + PLANE_A), flap: vec(-PLANE_A, -PLANE_B) },
    { description: "fold the top-right corner to the centre line", from: vec(0, -PLANE_B), to: vec(PLANE_A, -PLANE_B + PLANE_A), flap: vec(PLANE_A, -PLANE_B) },
    { description: "fold the nose down", from: vec(-1, NOSE), to: vec(1, NOSE), flap: vec(0, -PLANE_B) },
    { description: "fold the left edge to the centre line", from: vec(-0.04, NOSE), to: vec(-0.24, PLANE_B), flap: vec(-PLANE_A, 0.2) },
    { description: "fold the right edge to the centre line", from: vec(0.04, NOSE), to: vec(0.24, PLANE_B), flap: vec(PLANE_A, 0.2) },
    { description: "fold the plane in half", from: vec(0, -1), to: vec(0, 1), flap: vec(-0.2, 0.3) },
    // not a wing fold: half-way through the fold in half the sheet looks like a folded-down wing
    { description: "fold the tail up", from: vec(-1, 0.1), to: vec(1, 0.26), flap: vec(0.1, PLANE_B) }
  ]
}

const BOAT_A = 0.86
const BOAT_B = 0.6
const BOAT_Y = -0.24 // the sheet's centre: after the first fold the boat sits mid-table
const by = (y: number): number => BOAT_Y + y

const foldBoat: Task = {
  name: "fold-boat",
  family: "fold",
  instruction: "Fold the sheet into a paper boat in seven folds.",
  sheet: rect(0, BOAT_Y, BOAT_A, BOAT_B),
  steps: [
    { description: "fold the sheet in half, top to bottom", from: vec(-1, by(0)), to: vec(1, by(0)), flap: vec(0, by(-BOAT_B)) },
    { description: "fold the left corner down", from: vec(-0.06, by(0)), to: vec(-BOAT_A, by(0.38)), flap: vec(-BOAT_A, by(0)) },
    { description: "fold the right corner down", from: vec(0.06, by(0)), to: vec(BOAT_A, by(0.38)), flap: vec(BOAT_A, by(0)) },
    { description: "fold the bottom strip up", from: vec(-1, by(0.4)), to: vec(1, by(0.4)), flap: vec(0, by(BOAT_B)) },
    { description: "tuck in the left end", from: vec(-0.34, -1), to: vec(-0.34, 1), flap: vec(-BOAT_A, by(0.3)) },
    { description: "tuck in the right end", from: vec(0.34, -1), to: vec(0.34, 1), flap: vec(BOAT_A, by(0.3)) },
    { description: "fold the tip down", from: vec(-1, by(0.2)), to: vec(1, by(0.2)), flap: vec(0, by(0)) }
  ]
}

// ---- block building ------------------------------------------------------------------------------------
// The tray is a column on the right half of the table, the figure is built on the left half. Blocks are
// chunky (≥ 0.079 world², ≥ 20 px at 32 px) so that moving one changes more pixels than the hand does.

const TRAY_TOP = -0.88
const TRAY_BOTTOM = 0.88
const TRAY_LEFT = 0.04
const TRAY_RIGHT = 0.94
const TRAY_GAP = 0.035
const GROUND = 0.78 // y of the bottom of every target shape
const FIGURE_X = -0.46 // x of the figure's axis

interface BlockSpec {
  readonly description: string
  readonly width: number
  readonly height: number
  readonly color: Rgb
  readonly target: Vec
}

const BLOCK_COLORS = {
  red: rgb(214, 48, 49),
  blue: rgb(40, 96, 220),
  yellow: rgb(250, 204, 20),
  green: rgb(34, 170, 84),
  purple: rgb(140, 70, 200),
  cyan: rgb(20, 200, 220),
  white: rgb(244, 244, 240)
} as const

/**
 * Lays the blocks out in the tray, taken in placement order: each goes to the first shelf (row) with room
 * left, or starts a new shelf; shelves are filled left to right.
 */
const blocksTask = (name: TaskName, instruction: string, specs: ReadonlyArray<BlockSpec>): Task => {
  const usable = TRAY_RIGHT - TRAY_LEFT - 2 * TRAY_GAP
  const shelves: BlockSpec[][] = []
  const used: number[] = []
  for (const b of specs) {
    if (b.width > usable) throw new Error(`${name}: block "${b.description}" is wider than the tray`)
    const shelf = used.findIndex((u) => u + b.width <= usable)
    if (shelf === -1) {
      shelves.push([b])
      used.push(b.width + TRAY_GAP)
    } else {
      shelves[shelf]!.push(b)
      used[shelf]! += b.width + TRAY_GAP
    }
  }
  const shelfHeights = shelves.map((row) => Math.max(...row.map((b) => b.height)))
  const totalHeight = shelfHeights.reduce((a, h) => a + h, 0) + TRAY_GAP * (shelves.length - 1)
  if (totalHeight > TRAY_BOTTOM - TRAY_TOP - 2 * TRAY_GAP) throw new Error(`${name}: blocks do not fit the tray`)
  const slots = new Map<BlockSpec, Vec>()
  let y = (TRAY_TOP + TRAY_BOTTOM) / 2 - totalHeight / 2
  shelves.forEach((row, r) => {
    const rowWidth = row.reduce((a, b) => a + b.width, 0) + TRAY_GAP * (row.length - 1)
    let x = (TRAY_LEFT + TRAY_RIGHT) / 2 - rowWidth / 2
    const cy = y + shelfHeights[r]! / 2
    for (const b of row) {
      slots.set(b, vec(x + b.width / 2, cy))
      x += b.width + TRAY_GAP
    }
    y += shelfHeights[r]! + TRAY_GAP
  })
  const steps: BlockStep[] = specs.map((b) => ({ ...b, slot: slots.get(b)! }))
  return { name, family: "blocks", instruction, tray: [vec(TRAY_LEFT, TRAY_TOP), vec(TRAY_RIGHT, TRAY_TOP), vec(TRAY_RIGHT, TRAY_BOTTOM), vec(TRAY_LEFT, TRAY_BOTTOM)], steps }
}

const X = FIGURE_X
const LEG_H = 0.5
const BODY_H = 0.5
const blocksHuman = blocksTask("blocks-human", "Build a standing person from the blocks in the tray.", [
  { description: "place the left leg", width: 0.24, height: LEG_H, color: BLOCK_COLORS.blue, target: vec(X - 0.13, GROUND - LEG_H / 2) },
  { description: "place the right leg", width: 0.24, height: LEG_H, color: BLOCK_COLORS.blue, target: vec(X + 0.13, GROUND - LEG_H / 2) },
  { description: "place the body", width: 0.5, height: BODY_H, color: BLOCK_COLORS.red, target: vec(X, GROUND - LEG_H - BODY_H / 2) },
  { description: "place the left arm", width: 0.19, height: BODY_H, color: BLOCK_COLORS.yellow, target: vec(X - 0.25 - 0.095, GROUND - LEG_H - BODY_H / 2) },
  { description: "place the right arm", width: 0.19, height: BODY_H, color: BLOCK_COLORS.yellow, target: vec(X + 0.25 + 0.095, GROUND - LEG_H - BODY_H / 2) },
  { description: "place the head", width: 0.34, height: 0.32, color: BLOCK_COLORS.white, target: vec(X, GROUND - LEG_H - BODY_H - 0.16) },
  { description: "place the hat", width: 0.52, height: 0.18, color: BLOCK_COLORS.purple, target: vec(X, GROUND - LEG_H - BODY_H - 0.32 - 0.09) }
])

const towerWidths = [0.8, 0.6, 0.72, 0.5, 0.56, 0.42, 0.36]
const towerColors = [BLOCK_COLORS.red, BLOCK_COLORS.yellow, BLOCK_COLORS.blue, BLOCK_COLORS.green, BLOCK_COLORS.purple, BLOCK_COLORS.cyan, BLOCK_COLORS.white]
const TOWER_LEVEL = 0.22
const blocksTower = blocksTask(
  "blocks-tower",
  "Stack the blocks from the tray into a tower.",
  towerWidths.map((width, i) => ({
    description: `place tower level ${i + 1}`,
    width,
    height: TOWER_LEVEL,
    color: towerColors[i]!,
    target: vec(X, GROUND - TOWER_LEVEL * (i + 0.5))
  }))
)

const LEG = 0.48
const BODY = 0.3
const NECK = 0.36
const HORSE_X = FIGURE_X - 0.04 // the body's centre: the head sticks out in front (towards the tray)
const blocksHorse = blocksTask("blocks-horse", "Build a horse from the blocks in the tray.", [
  { description: "place the front left leg", width: 0.18, height: LEG, color: BLOCK_COLORS.yellow, target: vec(HORSE_X + 0.3, GROUND - LEG / 2) },
  { description: "place the back left leg", width: 0.18, height: LEG, color: BLOCK_COLORS.yellow, target: vec(HORSE_X - 0.3, GROUND - LEG / 2) },
  { description: "place the front right leg", width: 0.18, height: LEG, color: BLOCK_COLORS.green, target: vec(HORSE_X + 0.1, GROUND - LEG / 2) },
  { description: "place the back right leg", width: 0.18, height: LEG, color: BLOCK_COLORS.green, target: vec(HORSE_X - 0.1, GROUND - LEG / 2) },
  { description: "place the body", width: 0.8, height: BODY, color: BLOCK_COLORS.red, target: vec(HORSE_X, GROUND - LEG - BODY / 2) },
  { description: "place the neck", width: 0.22, height: NECK, color: BLOCK_COLORS.purple, target: vec(HORSE_X + 0.29, GROUND - LEG - BODY - NECK / 2) },
  { description: "place the head", width: 0.4, height: 0.24, color: BLOCK_COLORS.cyan, target: vec(HORSE_X + 0.3, GROUND - LEG - BODY - NECK - 0.12) }
])

const TASKS: Record<TaskName, Task> = {
  "fold-plane": foldPlane,
  "fold-boat": foldBoat,
  "blocks-human": blocksHuman,
  "blocks-tower": blocksTower,
  "blocks-horse": blocksHorse
}

export const getTask = (name: string): Task => {
  if (!isTaskName(name)) throw new RangeError(`unknown MiniCraft task ${JSON.stringify(name)}; known: ${TASK_NAMES.join(", ")}`)
  return TASKS[name]
}

export const blockPolygon = (width: number, height: number, center: Vec): Polygon => rect(center.x, center.y, width / 2, height / 2)
export const rectPolygon = rect
