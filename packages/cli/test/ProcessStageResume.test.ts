/**
 * A process stage survives kill -9 of `vw2 run`: its command keeps its progress in the invocation's resume
 * directory (the spec's `resumeDir`), the killed run's command is ended with it (no orphan keeps counting), and
 * the next `vw2 run` resumes from the last checkpoint instead of starting over (docs/process-stages.md).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { sandbox, vw2, vw2Async, waitFor } from "./cliHarness.ts"

const counter = String.raw`
import * as fs from "node:fs"
import * as path from "node:path"
const spec = JSON.parse(fs.readFileSync(process.env.VW2_STAGE_SPEC, "utf8"))
const send = (e) => fs.writeSync(Number(process.env.VW2_EVENTS_FD), JSON.stringify({ vw2: 1, ...e }) + "\n")
const here = path.dirname(new URL(import.meta.url).pathname)
const saved = path.join(spec.resumeDir, "step")
const start = fs.existsSync(saved) ? Number(fs.readFileSync(saved, "utf8")) : 0
const total = spec.config.steps
fs.appendFileSync(path.join(here, "runs.log"), JSON.stringify({ pid: process.pid, start }) + "\n")
for (let step = start; step < total; step++) {
  await new Promise((r) => setTimeout(r, 150))
  fs.appendFileSync(path.join(here, "steps.log"), step + "\n")
  fs.writeFileSync(saved + ".tmp", String(step + 1))
  fs.renameSync(saved + ".tmp", saved)
  send({ type: "checkpoint", step: step + 1, total })
}
fs.writeFileSync(path.join(spec.outputs.count, "result.json"), JSON.stringify({ start, total }))
`

const experimentSource = (script: string) => `
import { defineExperiment, definePipeline, defineProcessStage } from "@vw2/core"
import { Schema } from "effect"

const count = defineProcessStage({
  name: "count",
  version: "1",
  config: Schema.Struct({ steps: Schema.Int }),
  inputs: {},
  outputs: { count: "count" },
  sources: [${JSON.stringify(script)}],
  command: () => [process.execPath, ${JSON.stringify(script)}]
})

export default defineExperiment({ name: "process-resume", pipeline: definePipeline().step("count", count, {}), config: { count: { steps: 40 } } })
`

const running = (pid: number) => {
  try {
    const state = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[0]
    return state !== "Z"
  } catch {
    return false
  }
}

describe("process stage resume", () => {
  it("kill -9 of vw2 run ends the command; the next run resumes from its checkpoint in the resume directory", async () => {
    const box = sandbox("process-resume")
    const dir = path.join(box.home, "exp")
    fs.mkdirSync(dir)
    const script = path.join(dir, "counter.mjs")
    fs.writeFileSync(script, counter)
    const file = path.join(dir, "resume.ts")
    fs.writeFileSync(file, experimentSource(script))
    const lines = (name: string) => (fs.existsSync(path.join(dir, name)) ? fs.readFileSync(path.join(dir, name), "utf8").trim().split("\n") : [])

    const first = vw2Async(box, ["run", file])
    await waitFor("five steps", () => lines("steps.log").length >= 5, 60_000)
    first.child.kill("SIGKILL")
    await first.done
    const killed = JSON.parse(lines("runs.log")[0]!) as { pid: number; start: number }
    expect(killed.start).toBe(0)
    // the driver's workers see their stdin close and end the command's process group
    await waitFor("the killed run's command to end", () => !running(killed.pid), 20_000)
    const doneBefore = lines("steps.log").length
    expect(doneBefore).toBeLessThan(40)

    const second = vw2(box, ["run", file])
    expect(second.status).toBe(0)
    const resumed = JSON.parse(lines("runs.log")[1]!) as { start: number }
    // it starts from the last durable checkpoint, not from 0: nothing skipped, at most the step the kill cut short
    // (logged, not yet checkpointed) done twice
    expect([doneBefore - 1, doneBefore]).toContain(resumed.start)
    const steps = lines("steps.log").map(Number)
    expect([...new Set(steps)].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i))
    expect(steps.length - 40).toBe(doneBefore - resumed.start)
  }, 120_000)
})
