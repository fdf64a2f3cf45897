/**
 * The training harness on the pure-JS cpu backend: an interrupted and resumed run ends bit-identical to an
 * uninterrupted one (weights, optimiser moments, EMA, and the metric stream after the resume point), however
 * often it is interrupted; a corrupted newest checkpoint falls back to the one before it, two to step 0;
 * pauseAtStep stops at a checkpoint a later run resumes from.
 */
import * as tf from "@tensorflow/tfjs"
import { mkdtemp, readdir, rm, truncate, writeFile, readFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cadenceFromEnv, listCheckpointSteps, stepDirName, TrainingInterrupted } from "../src/index.ts"
import { runTiny, type TinyRun } from "./support/tinyTraining.ts"

const dirs: Array<string> = []
const freshDir = async () => {
  const d = await mkdtemp(join(tmpdir(), "vw2-harness-"))
  dirs.push(d)
  return d
}
beforeAll(async () => {
  await tf.setBackend("cpu")
  await tf.ready()
})
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const STEPS = 20
let reference: TinyRun
beforeAll(async () => {
  reference = await runTiny({ steps: STEPS })
  expect(reference.result?.status).toBe("completed")
})

const expectSameEnd = (run: TinyRun, from: number) => {
  expect(run.result?.status).toBe("completed")
  expect(run.weights).toEqual(reference.weights)
  expect(run.optimizer).toEqual(reference.optimizer)
  expect(run.optimizerStep).toBe(reference.optimizerStep)
  expect(run.ema).toEqual(reference.ema)
  // the metric stream from the resume point on, exactly: training steps ≥ from, and the evaluations after them
  // (an evaluation after `from` steps ran before that checkpoint was written)
  expect(run.metrics).toEqual(reference.metrics.filter((m) => ("tiny/eval_mse" in m.values ? m.step > from : m.step >= from)))
}

const resumedStep = (run: TinyRun): number => {
  const line = run.logs.find((l) => l.includes("resumed from step"))
  expect(line, run.logs.join("\n")).toBeDefined()
  return Number(/resumed from step (\d+)/.exec(line!)![1])
}

describe("training harness: resume", () => {
  it("an uninterrupted run logs its metrics at the cadence and checkpoints every 3 steps, keeping the last 2", async () => {
    const dir = await freshDir()
    const run = await runTiny({ steps: STEPS, resumeDir: dir })
    expect(run.weights).toEqual(reference.weights)
    expect(run.checkpointed).toEqual([3, 6, 9, 12, 15, 18].map((s) => [s, STEPS]))
    expect(await listCheckpointSteps(dir)).toEqual([18, 15])
    expect((await readdir(dir)).sort()).toEqual([stepDirName(15), stepDirName(18)])
    const lossSteps = reference.metrics.filter((m) => "tiny/loss" in m.values).map((m) => m.step)
    expect(lossSteps).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 19])
    expect(reference.metrics.filter((m) => "tiny/eval_mse" in m.values).map((m) => m.step)).toEqual([5, 10, 15])
    expect(Object.keys(reference.metrics[0]!.values).sort()).toEqual(["tiny/grad_norm", "tiny/loss", "tiny/lr"])
    // it learns: the evaluation error falls
    const evals = reference.metrics.filter((m) => "tiny/eval_mse" in m.values).map((m) => m.values["tiny/eval_mse"]!)
    expect(evals[2]!).toBeLessThan(evals[0]!)
  })

  it("interrupted at a random step after a checkpoint, then rerun: ends bit-identical to the uninterrupted run", async () => {
    const dir = await freshDir()
    const abortAt = 4 + Math.floor(Math.random() * 13) // 4..16: at least one checkpoint (step 3) before
    const first = await runTiny({ steps: STEPS, resumeDir: dir, abortAt })
    expect(first.error, `abort at ${abortAt}`).toBeInstanceOf(TrainingInterrupted)
    expect((first.error as TrainingInterrupted).step).toBe(abortAt + 1)
    const second = await runTiny({ steps: STEPS, resumeDir: dir })
    const from = resumedStep(second)
    expect(from).toBe(3 * Math.floor((abortAt + 1) / 3))
    expect(second.result?.resumedFrom).toBe(from)
    expectSameEnd(second, from)
  })

  it("interrupted twice in a row: still bit-identical", async () => {
    const dir = await freshDir()
    const a = 4 + Math.floor(Math.random() * 5) // 4..8
    const b = a + 3 + Math.floor(Math.random() * 5) // after the first resume point, ≤ 15
    expect((await runTiny({ steps: STEPS, resumeDir: dir, abortAt: a })).error).toBeInstanceOf(TrainingInterrupted)
    const middle = await runTiny({ steps: STEPS, resumeDir: dir, abortAt: b })
    expect(middle.error, `aborts at ${a}, ${b}`).toBeInstanceOf(TrainingInterrupted)
    expect(resumedStep(middle)).toBe(3 * Math.floor((a + 1) / 3))
    const last = await runTiny({ steps: STEPS, resumeDir: dir })
    const from = resumedStep(last)
    expect(from).toBe(3 * Math.floor((b + 1) / 3))
    expectSameEnd(last, from)
  })
})

describe("training harness: Ctrl-C", () => {
  it("an abort checkpoints the step it stopped at, and the rerun continues from exactly there", async () => {
    const dir = await freshDir()
    const abortAt = Math.floor(Math.random() * 18)
    const first = await runTiny({ steps: STEPS, resumeDir: dir, abortAt, checkpoint: { everySteps: 100, onInterrupt: true } })
    expect(first.error, `abort at ${abortAt}`).toBeInstanceOf(TrainingInterrupted)
    expect(first.checkpointed).toEqual([[abortAt + 1, STEPS]])
    const second = await runTiny({ steps: STEPS, resumeDir: dir })
    expect(resumedStep(second)).toBe(abortAt + 1)
    expectSameEnd(second, abortAt + 1)
  })
})

describe("training harness: corrupted checkpoints", () => {
  const interruptedAt16 = async () => {
    const dir = await freshDir()
    expect((await runTiny({ steps: STEPS, resumeDir: dir, abortAt: 16 })).error).toBeInstanceOf(TrainingInterrupted)
    expect(await listCheckpointSteps(dir)).toEqual([15, 12])
    return dir
  }

  it("a corrupted newest checkpoint: a warning, and the run resumes from the one before it", async () => {
    const dir = await interruptedAt16()
    const file = join(dir, stepDirName(15), "tensors.safetensors")
    const bytes = await readFile(file)
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0xff // one flipped byte in a weight
    await writeFile(file, bytes)
    const run = await runTiny({ steps: STEPS, resumeDir: dir })
    expect(run.logs.some((l) => /warning: checkpoint at step 15 is unusable .*sha256.*trying the one at step 12/.test(l)), run.logs.join("\n")).toBe(true)
    expect(resumedStep(run)).toBe(12)
    expectSameEnd(run, 12)
  })

  it("both checkpoints corrupted (one truncated, one without its state): warnings, and the run starts from step 0", async () => {
    const dir = await interruptedAt16()
    await truncate(join(dir, stepDirName(15), "tensors.safetensors"), 100)
    await rm(join(dir, stepDirName(12), "state.json"))
    const run = await runTiny({ steps: STEPS, resumeDir: dir })
    expect(run.logs.some((l) => /step 15 is unusable .*truncated/.test(l)), run.logs.join("\n")).toBe(true)
    expect(run.logs.some((l) => /step 12 is unusable .*starting from step 0/.test(l)), run.logs.join("\n")).toBe(true)
    expect(run.logs.some((l) => l.includes("resumed from"))).toBe(false)
    expect(run.result?.resumedFrom).toBe(0)
    expectSameEnd(run, 0)
  })

  it("a checkpoint half-written by a killed process (a leftover temporary directory) is ignored", async () => {
    const dir = await interruptedAt16()
    const tmp = join(dir, `.tmp-${stepDirName(18)}-999-1`)
    await rm(tmp, { recursive: true, force: true })
    await (await import("node:fs/promises")).mkdir(tmp)
    await writeFile(join(tmp, "tensors.safetensors"), "partial")
    const run = await runTiny({ steps: STEPS, resumeDir: dir })
    expect(resumedStep(run)).toBe(15)
    expectSameEnd(run, 15)
  })
})

describe("training harness: pauseAtStep", () => {
  it("pauses at the step with a checkpoint and an evaluation there; a run without it resumes and ends equal", async () => {
    const dir = await freshDir()
    const paused = await runTiny({ steps: STEPS, resumeDir: dir, pauseAtStep: 7 })
    expect(paused.error).toBeUndefined()
    expect(paused.result?.status).toBe("paused")
    expect(paused.result?.step).toBe(7)
    expect(paused.checkpointed.at(-1)).toEqual([7, STEPS])
    expect(await listCheckpointSteps(dir)).toEqual([7, 6])
    // the rung's metric at its step (the cadence alone evaluates at 5, 10, 15)
    expect(paused.metrics.filter((m) => "tiny/eval_mse" in m.values).map((m) => m.step)).toEqual([5, 7])
    expect(paused.metrics.filter((m) => m.step >= 7 && "tiny/loss" in m.values)).toEqual([])

    // the engine replays the same rung: nothing is trained, the rung is reported again
    const again = await runTiny({ steps: STEPS, resumeDir: dir, pauseAtStep: 7 })
    expect(again.result?.status).toBe("paused")
    expect(again.checkpointed).toEqual([[7, STEPS]])
    expect(again.metrics).toEqual(paused.metrics.filter((m) => m.step === 7))

    const promoted = await runTiny({ steps: STEPS, resumeDir: dir })
    expect(resumedStep(promoted)).toBe(7)
    expectSameEnd(promoted, 7)
  })

  it("a pauseAtStep at or past the total trains to the end", async () => {
    const run = await runTiny({ steps: STEPS, resumeDir: await freshDir(), pauseAtStep: STEPS })
    expect(run.result?.status).toBe("completed")
    expect(run.weights).toEqual(reference.weights)
  })
})

describe("training harness: cadence", () => {
  it("VW2_CHECKPOINT_EVERY reads steps or minutes and rejects anything else", () => {
    expect(cadenceFromEnv("500")).toEqual({ everySteps: 500, keep: 2 })
    expect(cadenceFromEnv("5m")).toEqual({ everyMinutes: 5, keep: 2 })
    expect(cadenceFromEnv(undefined)).toBeUndefined()
    expect(() => cadenceFromEnv("often")).toThrow(/VW2_CHECKPOINT_EVERY=often/)
  })

  it("by time: a checkpoint once the minutes passed, none while they have not", async () => {
    // 1e-9 minutes: every step qualifies; maxOverhead 1e-6 then waits a million save-times after the first
    const every = await runTiny({ steps: 6, resumeDir: await freshDir(), checkpoint: { everyMinutes: 1e-9 } })
    expect(every.checkpointed.map(([s]) => s)).toEqual([1, 2, 3, 4, 5])
    const never = await runTiny({ steps: 6, resumeDir: await freshDir(), checkpoint: { everyMinutes: 60 } })
    expect(never.checkpointed).toEqual([])
    const throttled = await runTiny({ steps: 6, resumeDir: await freshDir(), checkpoint: { everyMinutes: 1e-9, maxOverhead: 1e-6 } })
    expect(throttled.checkpointed.map(([s]) => s)).toEqual([1])
  })
})
