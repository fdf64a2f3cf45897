/**
 * MiniCALVIN's language-instructed subtasks (27, after CALVIN's 34), their categories, preconditions and
 * the task oracle. Like CALVIN's `Tasks.get_task_info(start_info, end_info)`, the oracle compares the
 * state at the start of a subtask with the current state and returns every subtask that transition
 * completed; it reads only the simulator state, so it is exact.
 */
import {
  BLOCK_COLORS,
  BLOCK_HEIGHT,
  BLOCK_SIZE,
  type Block,
  type BlockColor,
  blockOf,
  buttonPos,
  DRAWER_MAX,
  hasBlockOnTop,
  inShelf,
  SHELF_HEIGHT,
  sliderMax,
  sliderMin,
  type WorldState
} from "./World.ts"

export type TaskCategory = "drawer" | "slider" | "lightbulb" | "led" | "push" | "rotate" | "lift" | "place" | "stack"

export interface TaskSpec {
  readonly name: string
  /** chains never repeat a category (e.g. open and close drawer are both "drawer") */
  readonly category: TaskCategory
  /** the first is the evaluation instruction; the others vary training annotations */
  readonly instructions: ReadonlyArray<string>
  readonly color?: BlockColor
}

const blockTasks = (verb: "push" | "rotate", dir: "left" | "right"): TaskSpec[] =>
  BLOCK_COLORS.map((color) => ({
    name: `${verb}_${color}_block_${dir}`,
    category: verb,
    color,
    instructions: verb === "push"
      ? [`push the ${color} block to the ${dir}`, `slide the ${color} block ${dir}`, `move the ${color} block ${dir}wards`]
      : [`rotate the ${color} block to the ${dir}`, `turn the ${color} block ${dir}`, `take the ${color} block and rotate it ${dir}`]
  }))

export const TASKS: ReadonlyArray<TaskSpec> = [
  { name: "open_drawer", category: "drawer", instructions: ["open the drawer", "pull the handle to open the drawer", "slide the drawer open"] },
  { name: "close_drawer", category: "drawer", instructions: ["close the drawer", "push the drawer shut", "push the handle to close the drawer"] },
  { name: "move_slider_left", category: "slider", instructions: ["push the sliding door to the left", "move the slider left", "slide the door to the left side"] },
  { name: "move_slider_right", category: "slider", instructions: ["push the sliding door to the right", "move the slider right", "slide the door to the right side"] },
  { name: "turn_on_lightbulb", category: "lightbulb", instructions: ["turn on the light bulb", "use the switch to turn on the light", "push the switch forward to light the bulb"] },
  { name: "turn_off_lightbulb", category: "lightbulb", instructions: ["turn off the light bulb", "use the switch to turn off the light", "push the switch back to darken the bulb"] },
  { name: "turn_on_led", category: "led", instructions: ["turn on the led", "press the button to turn on the green light", "switch on the led"] },
  { name: "turn_off_led", category: "led", instructions: ["turn off the led", "press the button to turn off the green light", "switch off the led"] },
  ...blockTasks("push", "left"),
  ...blockTasks("push", "right"),
  ...blockTasks("rotate", "left"),
  ...blockTasks("rotate", "right"),
  ...BLOCK_COLORS.map((color): TaskSpec => ({
    name: `lift_${color}_block_table`,
    category: "lift",
    color,
    instructions: [`lift the ${color} block from the table`, `pick up the ${color} block`, `grasp the ${color} block and lift it`]
  })),
  { name: "place_in_drawer", category: "place", instructions: ["place the block in the drawer", "put the grasped block into the drawer", "store the block in the drawer"] },
  { name: "place_in_slider", category: "place", instructions: ["place the block in the sliding cabinet", "put the grasped block on the shelf", "store the block in the cabinet"] },
  { name: "stack_block", category: "stack", instructions: ["stack the blocks", "place the grasped block on top of another block", "put the block on top of the other one"] },
  { name: "unstack_block", category: "stack", instructions: ["take the top block off the stack", "unstack the blocks", "remove the block from the stack"] }
]

export const TASK_NAMES: ReadonlyArray<string> = TASKS.map((t) => t.name)

export const taskSpec = (name: string): TaskSpec => {
  const spec = TASKS.find((t) => t.name === name)
  if (spec === undefined) throw new RangeError(`MiniCALVIN: unknown task ${JSON.stringify(name)}`)
  return spec
}

/** The task an instruction names (any of its annotations), or undefined. */
export const taskOfInstruction = (instruction: string): TaskSpec | undefined => {
  const text = instruction.trim().toLowerCase()
  return TASKS.find((t) => t.instructions.includes(text))
}

// ---- predicates on one state ---------------------------------------------------------------------------

const near = (a: number, b: number, tol = 0.006): boolean => Math.abs(a - b) < tol
const isHeld = (s: WorldState, b: Block): boolean => s.robot.held === b.color

/** resting directly on the table surface (not held, not in the drawer or on the shelf, not on a block) */
export const onTable = (s: WorldState, b: Block): boolean => !isHeld(s, b) && !b.inDrawer && near(b.z, 0) && !inShelf(s, b.x, b.y) && b.y < 0.8

/** `top` rests on `bottom` */
export const stackedOn = (s: WorldState, top: Block, bottom: Block): boolean =>
  top !== bottom && !isHeld(s, top) && !isHeld(s, bottom) && Math.hypot(top.x - bottom.x, top.y - bottom.y) < BLOCK_SIZE * 0.9 && near(top.z, bottom.z + BLOCK_HEIGHT, 0.01)

export const restsOnShelf = (s: WorldState, b: Block): boolean => !isHeld(s, b) && inShelf(s, b.x, b.y) && near(b.z, SHELF_HEIGHT, 0.01)

const stackPairs = (s: WorldState): Array<[Block, Block]> =>
  s.blocks.flatMap((top) => s.blocks.filter((bottom) => stackedOn(s, top, bottom)).map((bottom) => [top, bottom] as [Block, Block]))

const angleDiff = (a: number, b: number): number => Math.atan2(Math.sin(b - a), Math.cos(b - a))

// ---- oracle -------------------------------------------------------------------------------------------

/** Every task completed by the transition from `start` to `end` (like CALVIN's Tasks.get_task_info). */
export const completedTasks = (start: WorldState, end: WorldState): Set<string> => {
  const done = new Set<string>()
  if (end.drawer - start.drawer >= 0.12) done.add("open_drawer")
  if (start.drawer - end.drawer >= 0.12) done.add("close_drawer")
  if (start.slider - end.slider >= 0.15) done.add("move_slider_left")
  if (end.slider - start.slider >= 0.15) done.add("move_slider_right")
  if (!start.lightbulb && end.lightbulb) done.add("turn_on_lightbulb")
  if (start.lightbulb && !end.lightbulb) done.add("turn_off_lightbulb")
  if (!start.led && end.led) done.add("turn_on_led")
  if (start.led && !end.led) done.add("turn_off_led")
  for (const color of BLOCK_COLORS) {
    const b0 = blockOf(start, color)
    const b1 = blockOf(end, color)
    const bothOnTable = onTable(start, b0) && onTable(end, b1)
    if (bothOnTable && b1.x - b0.x <= -0.1) done.add(`push_${color}_block_left`)
    if (bothOnTable && b1.x - b0.x >= 0.1) done.add(`push_${color}_block_right`)
    // "right" is clockwise as seen in the image (y points down, so that is increasing yaw)
    const turned = angleDiff(b0.yaw, b1.yaw)
    const stayed = Math.hypot(b1.x - b0.x, b1.y - b0.y) < 0.05
    if (bothOnTable && stayed && turned <= -Math.PI / 3) done.add(`rotate_${color}_block_left`)
    if (bothOnTable && stayed && turned >= Math.PI / 3) done.add(`rotate_${color}_block_right`)
    if (onTable(start, b0) && end.robot.held === color && b1.z >= 0.05) done.add(`lift_${color}_block_table`)
    if (!b0.inDrawer && b1.inDrawer && !isHeld(end, b1)) done.add("place_in_drawer")
    if (!restsOnShelf(start, b0) && restsOnShelf(end, b1)) done.add("place_in_slider")
  }
  const key = ([t, b]: [Block, Block]): string => `${t.color}/${b.color}`
  const before = new Set(stackPairs(start).map(key))
  const after = stackPairs(end)
  if (after.some((p) => !before.has(key(p)))) done.add("stack_block")
  const afterKeys = new Set(after.map(key))
  for (const [top, bottom] of stackPairs(start)) {
    const t1 = blockOf(end, top.color)
    if (!afterKeys.has(`${top.color}/${bottom.color}`) && onTable(end, t1)) done.add("unstack_block")
  }
  return done
}

// ---- preconditions (what makes a subtask feasible from a state) ----------------------------------------

const clearOf = (s: WorldState, x: number, y: number, radius: number, except?: Block): boolean =>
  s.blocks.every((b) => b === except || isHeld(s, b) || Math.hypot(b.x - x, b.y - y) > radius) &&
  Math.hypot(buttonPos(s).x - x, buttonPos(s).y - y) > radius

/** A free table spot for putting a block down (deterministic scan), or undefined. */
export const freeTableSpot = (s: WorldState, except?: Block): { x: number; y: number } | undefined => {
  for (let y = 0.35; y <= 0.7 + 1e-9; y += 0.05) {
    for (let x = 0.25; x <= 0.75 + 1e-9; x += 0.05) {
      if (clearOf(s, x, y, 0.14, except)) return { x, y }
    }
  }
  return undefined
}

/** The shelf spot beside the sliding door, where a block can be placed. */
export const freeShelfSpot = (s: WorldState): { x: number; y: number } => {
  const doorLeft = s.slider - sliderMin(s.layout) < (sliderMax(s.layout) - sliderMin(s.layout)) / 2
  const x = doorLeft ? (s.slider + 0.3 + s.layout.shelfX1) / 2 : (s.layout.shelfX0 + s.slider) / 2
  return { x, y: 0.1 }
}

/** The block a push / rotate / lift task acts on must be free on the table with room around it. */
const pushFeasible = (s: WorldState, b: Block, dir: -1 | 1): boolean => {
  if (!onTable(s, b) || hasBlockOnTop(s, b)) return false
  const endX = b.x + dir * 0.17
  if (endX < 0.08 || endX > 0.92) return false
  // the swept band (approach behind the block to past its end) must be free of other blocks and the button
  const x0 = Math.min(b.x - dir * 0.12, endX - dir * 0.05)
  const x1 = Math.max(b.x - dir * 0.12, endX - dir * 0.05)
  const obstacles = [...s.blocks.filter((o) => o !== b && !isHeld(s, o) && !o.inDrawer).map((o) => ({ x: o.x, y: o.y })), buttonPos(s)]
  return obstacles.every((o) => Math.abs(o.y - b.y) > 0.09 || o.x < x0 - 0.06 || o.x > x1 + 0.06)
}

export const isFeasible = (s: WorldState, name: string): boolean => {
  const spec = taskSpec(name)
  const holding = s.robot.held !== undefined
  if (spec.category === "place" || name === "stack_block") {
    if (!holding) return false
    if (name === "place_in_drawer") return s.drawer >= DRAWER_MAX - 0.02
    if (name === "place_in_slider") {
      const spot = freeShelfSpot(s)
      return s.blocks.every((b) => isHeld(s, b) || Math.hypot(b.x - spot.x, b.y - spot.y) > 0.1)
    }
    return s.blocks.some((b) => !isHeld(s, b) && onTable(s, b) && !hasBlockOnTop(s, b))
  }
  if (holding) return false
  switch (name) {
    case "open_drawer": return s.drawer <= 0.02
    case "close_drawer": return s.drawer >= DRAWER_MAX - 0.02
    case "move_slider_left": return s.slider >= sliderMax(s.layout) - 0.01
    case "move_slider_right": return s.slider <= sliderMin(s.layout) + 0.01
    case "turn_on_lightbulb": return !s.lightbulb
    case "turn_off_lightbulb": return s.lightbulb
    case "turn_on_led": return !s.led
    case "turn_off_led": return s.led
    case "unstack_block": return stackPairs(s).length > 0 && freeTableSpot(s, stackPairs(s)[0]![0]) !== undefined
  }
  const b = blockOf(s, spec.color!)
  if (spec.category === "push") return pushFeasible(s, b, name.endsWith("left") ? -1 : 1)
  // rotate and lift: a free block on the table (not under another, not in the drawer or on the shelf)
  return onTable(s, b) && !hasBlockOnTop(s, b) && !s.blocks.some((o) => o !== b && stackedOn(s, b, o))
}

export const feasibleTasks = (s: WorldState): string[] => TASK_NAMES.filter((name) => isFeasible(s, name))
