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

const PLANE_A = 0.46 // half width of the portrait sheet
const PLANE_B = 0.66 // half height
const NOSE = -PLANE_B + 0.32 // the nose fold's line

const foldPlane: Task = {
  name: "fold-plane",
  family: "fold",
  instruction: "Fold the sheet into a paper plane in seven folds.",
  sheet: rect(0, 0, PLANE_A, PLANE_B),
  steps: [
    { description: "fold the top-left corner to the centre line", from: vec(0, -PLANE_B), to: vec(-PLANE_A, -PLANE_B + PLANE_A), flap: vec(-PLANE_A, -PLANE_B) },
    { description: "fold the top-right corner to the centre line", from: vec(0, -PLANE_B), to: vec(PLANE_A, -PLANE_B + PLANE_A), flap: vec(PLANE_A, -PLANE_B) },
    { description: "fold the nose down", from: vec(-1, NOSE), to: vec(1, NOSE), flap: vec(0, -PLANE_B) },
    { description: "fold the left edge to the centre line", from: vec(-0.1, NOSE), to: vec(-PLANE_A, 0.02), flap: vec(-PLANE_A, -PLANE_B + PLANE_A) },
    { description: "fold the right edge to the centre line", from: vec(0.1, NOSE), to: vec(PLANE_A, 0.02), flap: vec(PLANE_A, -PLANE_B + PLANE_A) },
    { description: "fold the plane in half", from: vec(0, -1), to: vec(0, 1), flap: vec(-PLANE_A, 0.3) },
    { description: "fold down the wing", from: vec(0.07, NOSE), to: vec(0.2, PLANE_B), flap: vec(PLANE_A, 0.4) }
  ]
}

const BOAT_A = 0.76
const BOAT_B = 0.56
const BOAT_Y = -0.26 // the sheet's centre: after the first fold the boat sits mid-table
const by = (y: number): number => BOAT_Y + y

const foldBoat: Task = {
  name: "fold-boat",
  family: "fold",
  instruction: "Fold the sheet into a paper boat in seven folds.",
  sheet: rect(0, BOAT_Y, BOAT_A, BOAT_B),
  steps: [
    { description: "fold the sheet in half, top to bottom", from: vec(-1, by(0)), to: vec(1, by(0)), flap: vec(0, by(-BOAT_B)) },
    { description: "fold the left corner down", from: vec(-0.16, by(0)), to: vec(-BOAT_A, by(0.42)), flap: vec(-BOAT_A, by(0)) },
    { description: "fold the right corner down", from: vec(0.16, by(0)), to: vec(BOAT_A, by(0.42)), flap: vec(BOAT_A, by(0)) },
    { description: "fold the bottom strip up", from: vec(-1, by(BOAT_B - 0.17)), to: vec(1, by(BOAT_B - 0.17)), flap: vec(0, by(BOAT_B)) },
    { description: "tuck in the left end", from: vec(-0.5, -1), to: vec(-0.5, 1), flap: vec(-BOAT_A, by(0.45)) },
    { description: "tuck in the right end", from: vec(0.5, -1), to: vec(0.5, 1), flap: vec(BOAT_A, by(0.45)) },
    { description: "fold the tip down", from: vec(-1, by(0.16)), to: vec(1, by(0.16)), flap: vec(0, by(0)) }
  ]
}

// ---- block building ------------------------------------------------------------------------------------

const TRAY_TOP = 0.36
const TRAY_BOTTOM = 0.92
const TRAY_LEFT = -0.9
const TRAY_RIGHT = 0.6
const TRAY_GAP = 0.035
const GROUND = 0.24 // y of the bottom of every target shape

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
 * Lays the blocks out in the tray in placement order: left to right, in shelves (rows) when one is full.
 * `scale` enlarges the whole design about the middle of the ground line (specs are written at unit scale).
 */
const blocksTask = (name: TaskName, instruction: string, scale: number, unscaled: ReadonlyArray<BlockSpec>): Task => {
  const specs = unscaled.map((b) => ({ ...b, width: b.width * scale, height: b.height * scale, target: vec(b.target.x * scale, GROUND + (b.target.y - GROUND) * scale) }))
  const usable = TRAY_RIGHT - TRAY_LEFT - 2 * TRAY_GAP
  const shelves: BlockSpec[][] = [[]]
  let used = 0
  for (const b of specs) {
    if (b.width > usable) throw new Error(`${name}: block "${b.description}" is wider than the tray`)
    if (used + b.width > usable && shelves[shelves.length - 1]!.length > 0) {
      shelves.push([])
      used = 0
    }
    shelves[shelves.length - 1]!.push(b)
    used += b.width + TRAY_GAP
  }
  const shelfHeights = shelves.map((row) => Math.max(...row.map((b) => b.height)))
  const totalHeight = shelfHeights.reduce((a, h) => a + h, 0) + TRAY_GAP * (shelves.length - 1)
  if (totalHeight > TRAY_BOTTOM - TRAY_TOP - 2 * TRAY_GAP) throw new Error(`${name}: blocks do not fit the tray`)
  const steps: BlockStep[] = []
  let y = (TRAY_TOP + TRAY_BOTTOM) / 2 - totalHeight / 2
  shelves.forEach((row, r) => {
    const rowWidth = row.reduce((a, b) => a + b.width, 0) + TRAY_GAP * (row.length - 1)
    let x = (TRAY_LEFT + TRAY_RIGHT) / 2 - rowWidth / 2
    const cy = y + shelfHeights[r]! / 2
    for (const b of row) {
      steps.push({ ...b, slot: vec(x + b.width / 2, cy) })
      x += b.width + TRAY_GAP
    }
    y += shelfHeights[r]! + TRAY_GAP
  })
  return { name, family: "blocks", instruction, tray: [vec(TRAY_LEFT, TRAY_TOP), vec(TRAY_RIGHT, TRAY_TOP), vec(TRAY_RIGHT, TRAY_BOTTOM), vec(TRAY_LEFT, TRAY_BOTTOM)], steps }
}


const blocksHuman = blocksTask("blocks-human", "Build a standing person from the blocks in the tray.", 1.3, [
  { description: "place the left leg", width: 0.08, height: 0.26, color: BLOCK_COLORS.blue, target: vec(-0.07, GROUND - 0.13) },
  { description: "place the right leg", width: 0.08, height: 0.26, color: BLOCK_COLORS.blue, target: vec(0.07, GROUND - 0.13) },
  { description: "place the body", width: 0.26, height: 0.28, color: BLOCK_COLORS.red, target: vec(0, GROUND - 0.26 - 0.14) },
  { description: "place the left arm", width: 0.07, height: 0.26, color: BLOCK_COLORS.yellow, target: vec(-0.175, GROUND - 0.26 - 0.14) },
  { description: "place the right arm", width: 0.07, height: 0.26, color: BLOCK_COLORS.yellow, target: vec(0.175, GROUND - 0.26 - 0.14) },
  { description: "place the head", width: 0.15, height: 0.15, color: BLOCK_COLORS.white, target: vec(0, GROUND - 0.54 - 0.075) },
  { description: "place the hat", width: 0.22, height: 0.06, color: BLOCK_COLORS.purple, target: vec(0, GROUND - 0.69 - 0.03) }
])

const towerWidths = [0.36, 0.28, 0.32, 0.24, 0.26, 0.18, 0.1]
const towerColors = [BLOCK_COLORS.red, BLOCK_COLORS.yellow, BLOCK_COLORS.blue, BLOCK_COLORS.green, BLOCK_COLORS.purple, BLOCK_COLORS.cyan, BLOCK_COLORS.white]
const TOWER_LEVEL = 0.12
const blocksTower = blocksTask(
  "blocks-tower",
  "Stack the blocks from the tray into a tower.",
  1.2,
  towerWidths.map((width, i) => ({
    description: `place tower level ${i + 1}`,
    width,
    height: TOWER_LEVEL,
    color: towerColors[i]!,
    target: vec(0, GROUND - TOWER_LEVEL * (i + 0.5))
  }))
)

const LEG = 0.22
const blocksHorse = blocksTask("blocks-horse", "Build a horse from the blocks in the tray.", 1.2, [
  { description: "place the front left leg", width: 0.06, height: LEG, color: BLOCK_COLORS.yellow, target: vec(0.2, GROUND - LEG / 2) },
  { description: "place the back left leg", width: 0.06, height: LEG, color: BLOCK_COLORS.yellow, target: vec(-0.2, GROUND - LEG / 2) },
  { description: "place the front right leg", width: 0.06, height: LEG, color: BLOCK_COLORS.green, target: vec(0.1, GROUND - LEG / 2) },
  { description: "place the back right leg", width: 0.06, height: LEG, color: BLOCK_COLORS.green, target: vec(-0.1, GROUND - LEG / 2) },
  { description: "place the body", width: 0.5, height: 0.15, color: BLOCK_COLORS.red, target: vec(0, GROUND - LEG - 0.075) },
  { description: "place the neck", width: 0.09, height: 0.2, color: BLOCK_COLORS.purple, target: vec(0.21, GROUND - LEG - 0.15 - 0.1) },
  { description: "place the head", width: 0.18, height: 0.09, color: BLOCK_COLORS.cyan, target: vec(0.3, GROUND - LEG - 0.35 - 0.045) }
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
