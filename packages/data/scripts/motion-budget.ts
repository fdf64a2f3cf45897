/**
 * Prints MiniCraft's motion budget: per task and step, the pixels the task object changes (hand-free renders
 * before vs after the step) against the hand's footprint, and per action frame the object's change against
 * the hand's, over train- and test-domain episodes at each size (see src/minicraft/MotionBudget.ts).
 * Usage (repo root): npx node packages/data/scripts/motion-budget.ts [--sizes 32,64] [--episodes 2] [--seed 0] [--tasks a,b] [--json file]
 */
import * as fs from "node:fs"
import { parseArgs } from "node:util"
import { episodeAppearance, SPLITS } from "../src/minicraft/Appearance.ts"
import { motionBudget, type StepBudget } from "../src/minicraft/MotionBudget.ts"
import { TASK_NAMES, getTask } from "../src/minicraft/Tasks.ts"

const { values } = parseArgs({
  options: { sizes: { type: "string", default: "32,64" }, episodes: { type: "string", default: "2" }, seed: { type: "string", default: "0" }, tasks: { type: "string" }, json: { type: "string" } }
})
const sizes = values.sizes.split(",").map(Number)
const episodes = Number(values.episodes)
const seed = Number(values.seed)

interface Row {
  readonly task: string
  readonly size: number
  readonly steps: ReadonlyArray<{ readonly step: number; readonly object: number; readonly handMax: number; readonly objectPerFrame: number; readonly handPerFrame: number }>
}
const rows: Row[] = []
const fmt = (x: number) => (x >= 10 ? x.toFixed(0) : x.toFixed(1))
for (const size of sizes) {
  console.log(`\n${size} px (${episodes} train + ${episodes} test episodes per task; per step: worst case over episodes)`)
  console.log("task          step  object  handMax  obj/hand | per action frame: object  hand  obj/hand")
  for (const name of values.tasks === undefined ? TASK_NAMES : values.tasks.split(",")) {
    const task = getTask(name)
    const runs: StepBudget[][] = []
    for (const split of SPLITS) {
      for (let i = 0; i < episodes; i++) runs.push(motionBudget(task, episodeAppearance(seed, name, split, i), { width: size, height: size, supersample: 3, framesPerStep: 12, idleFrames: 4 }))
    }
    const steps = task.steps.map((_, j) => {
      const at = runs.map((r) => r[j]!)
      return {
        step: j + 1,
        object: Math.min(...at.map((b) => b.object)),
        handMax: Math.max(...at.map((b) => b.handMax)),
        objectPerFrame: Math.min(...at.map((b) => b.objectPerFrame)),
        handPerFrame: Math.max(...at.map((b) => b.handPerFrame))
      }
    })
    for (const s of steps) {
      console.log(
        `${name.padEnd(14)}${String(s.step).padStart(4)}${String(s.object).padStart(8)}${String(s.handMax).padStart(9)}${fmt(s.object / s.handMax).padStart(10)} |${fmt(s.objectPerFrame).padStart(25)}${fmt(s.handPerFrame).padStart(6)}${fmt(s.objectPerFrame / Math.max(1, s.handPerFrame)).padStart(10)}`
      )
    }
    rows.push({ task: name, size, steps })
  }
  const all = rows.filter((r) => r.size === size).flatMap((r) => r.steps)
  console.log(
    `summary ${size} px: object ${Math.min(...all.map((s) => s.object))}-${Math.max(...all.map((s) => s.object))}, hand footprint up to ${Math.max(...all.map((s) => s.handMax))}, ` +
      `worst obj/hand ${fmt(Math.min(...all.map((s) => s.object / s.handMax)))}, worst per-frame obj/hand ${fmt(Math.min(...all.map((s) => s.objectPerFrame / Math.max(1, s.handPerFrame))))}`
  )
}
if (values.json !== undefined) fs.writeFileSync(values.json, JSON.stringify(rows, null, 1))
