/**
 * Scripted expert for every MiniCALVIN subtask: a list of waypoints (targets computed from the current
 * state, so they follow moving handles) tracked by a saturated proportional controller that emits
 * CALVIN-style 7-d rel_actions in [-1, 1]. Used to generate demonstrations and as the reference policy
 * that the long-horizon protocol must score 100 % with.
 */
import { freeShelfSpot, freeTableSpot, onTable, stackedOn, taskOfInstruction, taskSpec } from "./Tasks.ts"
import {
  BLOCK_HEIGHT,
  blockOf,
  buttonPos,
  DRAWER_FLOOR,
  DRAWER_MAX,
  drawerHandle,
  POS_STEP,
  SHELF_HEIGHT,
  sliderHandle,
  sliderMax,
  sliderMin,
  switchHandle,
  type WorldState,
  YAW_STEP
} from "./World.ts"

export interface Waypoint {
  readonly x: number
  readonly y: number
  readonly z: number
  readonly yaw: number
  /** 1 open, -1 close */
  readonly gripper: 1 | -1
}

type Target = (s: WorldState) => Waypoint

const HIGH = 0.14

const clampUnit = (v: number): number => Math.max(-1, Math.min(1, v))

/** A waypoint relative to the robot's pose, overriding some coordinates. */
const at = (s: WorldState, over: Partial<Waypoint>): Waypoint => ({
  x: s.robot.x,
  y: s.robot.y,
  z: s.robot.z,
  yaw: s.robot.yaw,
  gripper: s.robot.gripperAction >= 0 ? 1 : -1,
  ...over
})

/** The waypoint sequence for a task, planned from the state at the start of the subtask. */
export const planTask = (task: string, start: WorldState): Target[] => {
  const spec = taskSpec(task)
  const riseAndSet = (gripper: 1 | -1): Target[] => [
    (s) => at(s, { z: Math.max(s.robot.z, HIGH) }),
    (s) => at(s, { gripper })
  ]
  switch (task) {
    case "open_drawer":
    case "close_drawer": {
      const y = 0.8 + (task === "open_drawer" ? DRAWER_MAX : 0) + 0.015
      return [
        ...riseAndSet(-1),
        (s) => at(s, { ...drawerHandle(s), z: HIGH }),
        (s) => at(s, { ...drawerHandle(s), z: 0.04 }),
        (s) => at(s, { x: drawerHandle(s).x, y, z: 0.04 }),
        (s) => at(s, { z: HIGH })
      ]
    }
    case "move_slider_left":
    case "move_slider_right": {
      const x = (task === "move_slider_left" ? sliderMin(start.layout) : sliderMax(start.layout)) + 0.15
      return [
        ...riseAndSet(-1),
        (s) => at(s, { ...sliderHandle(s), z: HIGH }),
        (s) => at(s, { ...sliderHandle(s), z: 0.06 }),
        (s) => at(s, { x, y: sliderHandle(s).y, z: 0.06 }),
        (s) => at(s, { z: HIGH })
      ]
    }
    case "turn_on_lightbulb":
    case "turn_off_lightbulb": {
      const y = 0.05 + (task === "turn_on_lightbulb" ? 0.1 : 0)
      return [
        ...riseAndSet(-1),
        (s) => at(s, { ...switchHandle(s), z: HIGH }),
        (s) => at(s, { ...switchHandle(s), z: 0.06 }),
        (s) => at(s, { x: switchHandle(s).x, y, z: 0.06 }),
        (s) => at(s, { z: HIGH })
      ]
    }
    case "turn_on_led":
    case "turn_off_led":
      return [
        ...riseAndSet(-1),
        (s) => at(s, { ...buttonPos(s), z: HIGH }),
        (s) => at(s, { ...buttonPos(s), z: 0.01 }),
        (s) => at(s, { z: HIGH })
      ]
    case "place_in_drawer": {
      return [
        (s) => at(s, { z: Math.max(s.robot.z, HIGH) }),
        (s) => at(s, { x: s.layout.drawerX + s.layout.drawerWidth / 2, y: 0.8 + s.drawer / 2, z: HIGH }),
        (s) => at(s, { z: DRAWER_FLOOR + BLOCK_HEIGHT / 2 + 0.03 }),
        (s) => at(s, { gripper: 1 }),
        (s) => at(s, { z: HIGH })
      ]
    }
    case "place_in_slider": {
      const high = SHELF_HEIGHT + BLOCK_HEIGHT + 0.08
      return [
        (s) => at(s, { z: Math.max(s.robot.z, high) }),
        (s) => at(s, { ...freeShelfSpot(s), z: high }),
        (s) => at(s, { z: SHELF_HEIGHT + BLOCK_HEIGHT / 2 + 0.02 }),
        (s) => at(s, { gripper: 1 }),
        (s) => at(s, { z: high })
      ]
    }
    case "stack_block": {
      const held = start.robot.held
      const target = start.blocks.find((b) => b.color !== held && onTable(start, b) && !start.blocks.some((o) => o !== b && o.color !== held && stackedOn(start, o, b)))
      if (target === undefined) throw new Error("stack_block: no free block to stack on")
      const color = target.color
      return [
        (s) => at(s, { z: Math.max(s.robot.z, HIGH) }),
        (s) => at(s, { x: blockOf(s, color).x, y: blockOf(s, color).y, z: HIGH }),
        (s) => at(s, { z: blockOf(s, color).z + BLOCK_HEIGHT * 1.5 + 0.015 }),
        (s) => at(s, { gripper: 1 }),
        (s) => at(s, { z: HIGH })
      ]
    }
    case "unstack_block": {
      const pair = start.blocks.flatMap((t) => start.blocks.filter((b) => stackedOn(start, t, b)).map((b) => [t, b] as const))[0]
      if (pair === undefined) throw new Error("unstack_block: nothing is stacked")
      const color = pair[0].color
      const spot = freeTableSpot(start, pair[0])
      if (spot === undefined) throw new Error("unstack_block: no free spot on the table")
      return [
        ...riseAndSet(1),
        (s) => at(s, { x: blockOf(s, color).x, y: blockOf(s, color).y, z: HIGH }),
        (s) => at(s, { z: blockOf(s, color).z + BLOCK_HEIGHT / 2 }),
        (s) => at(s, { gripper: -1 }),
        (s) => at(s, { z: HIGH }),
        (s) => at(s, { ...spot, z: HIGH }),
        (s) => at(s, { z: BLOCK_HEIGHT / 2 + 0.015 }),
        (s) => at(s, { gripper: 1 }),
        (s) => at(s, { z: HIGH })
      ]
    }
  }
  const color = spec.color!
  if (spec.category === "push") {
    // targets fixed at planning time (the block moves while it is pushed)
    const { x: bx, y: by } = blockOf(start, color)
    const dir = task.endsWith("left") ? -1 : 1
    return [
      ...riseAndSet(-1),
      (s) => at(s, { x: bx - dir * 0.085, y: by, z: HIGH }),
      (s) => at(s, { z: 0.03 }),
      (s) => at(s, { x: bx + dir * 0.1, y: by, z: 0.03 }),
      (s) => at(s, { z: HIGH })
    ]
  }
  const grasp: Target[] = [
    ...riseAndSet(1),
    (s) => at(s, { x: blockOf(s, color).x, y: blockOf(s, color).y, z: HIGH }),
    (s) => at(s, { z: blockOf(s, color).z + BLOCK_HEIGHT / 2 }),
    (s) => at(s, { gripper: -1 })
  ]
  if (spec.category === "lift") return [...grasp, (s) => at(s, { z: HIGH + 0.01 })]
  // rotate: grasp, turn a quarter (left = counter-clockwise in the image = decreasing yaw), release, rise
  const turn = task.includes("_left") ? -Math.PI / 2 : Math.PI / 2
  let goal: number | undefined
  return [
    ...grasp,
    (s) => at(s, { z: BLOCK_HEIGHT / 2 + 0.01 }),
    (s) => at(s, { yaw: (goal ??= s.robot.yaw + turn) }),
    (s) => at(s, { gripper: 1 }),
    (s) => at(s, { z: HIGH })
  ]
}

/** Tracks a plan: one action per call, `done` once the last waypoint is reached. */
export class ExpertController {
  private readonly targets: Target[]
  private index = 0

  constructor(task: string, start: WorldState) {
    this.targets = planTask(task, start)
  }

  get done(): boolean {
    return this.index >= this.targets.length
  }

  act(s: WorldState): Float32Array {
    while (this.index < this.targets.length) {
      const w = this.targets[this.index]!(s)
      const ex = w.x - s.robot.x
      const ey = w.y - s.robot.y
      const ez = w.z - s.robot.z
      const eyaw = w.yaw - s.robot.yaw
      const gripperSettled = w.gripper > 0 ? s.robot.gripper >= 1 : s.robot.gripper <= 0
      const gripperCommanded = (s.robot.gripperAction >= 0 ? 1 : -1) === w.gripper
      if (Math.abs(ex) < 1e-4 && Math.abs(ey) < 1e-4 && Math.abs(ez) < 1e-4 && Math.abs(eyaw) < 1e-4 && gripperSettled && gripperCommanded) {
        this.index++
        continue
      }
      return Float32Array.from([clampUnit(ex / POS_STEP), clampUnit(ey / POS_STEP), clampUnit(ez / POS_STEP), 0, 0, clampUnit(eyaw / YAW_STEP), w.gripper])
    }
    return Float32Array.from([0, 0, 0, 0, 0, 0, s.robot.gripperAction >= 0 ? 1 : -1])
  }
}

export interface Observation {
  /** H·W·3 RGB of the static camera */
  readonly frame: Uint8Array
  readonly robotObs: Float32Array
  readonly sceneObs: Float32Array
  /** full simulator state (read-only copy): privileged, for the scripted expert and diagnostics */
  readonly state: WorldState
}

/** A policy for the long-horizon protocol: observation + instruction → 7-d rel_action. */
export type Policy = (observation: Observation, instruction: string) => ArrayLike<number> | Promise<ArrayLike<number>>

/** The scripted expert as a policy: it recognises the instruction and re-plans when it changes. */
export const expertPolicy = (): Policy => {
  let current: { instruction: string; controller: ExpertController } | undefined
  return (observation, instruction) => {
    if (current === undefined || current.instruction !== instruction) {
      const spec = taskOfInstruction(instruction)
      if (spec === undefined) throw new Error(`expert policy: unknown instruction ${JSON.stringify(instruction)}`)
      current = { instruction, controller: new ExpertController(spec.name, observation.state) }
    }
    return current.controller.act(observation.state)
  }
}
