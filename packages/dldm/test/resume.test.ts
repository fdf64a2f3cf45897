/**
 * Mid-stage checkpoints of the dLDM warm-up through the training harness, on real files: a run interrupted
 * (Ctrl-C: it checkpoints where it stops) at a random step, and again after resuming, then rerun with the same resume directory writes a
 * checkpoint equal to an uninterrupted run's, byte for byte, with the same metrics after the resume point — on
 * the backend the tests select (the native one where it loads; the pure-JS one in CI's second pass). The robot
 * mixture exercises the mixture iterator's fast-forward; a pauseAtStep run writes no outputs. The joint `dldm`
 * stage (three parameter groups, a probe before step 0) resumes to the same dLDM and VDM checkpoints.
 */
import type { StageContext } from "@vw2/core"
import { listCheckpointSteps, selectBackend } from "@vw2/nn"
import { Effect, Exit, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { dldmStage, runWarmup, WarmupConfigSchema } from "../src/index.ts"
import { tempDir, writeSquaresDataset, writeUntrainedVdm } from "./stageSupport.ts"

interface WarmupRun {
  readonly outputRoot: string
  readonly metrics: Array<{ readonly step: number; readonly values: Readonly<Record<string, number>> }>
  readonly logs: Array<string>
  readonly checkpointed: Array<number>
  readonly error?: unknown
}

let root: string
let dataset: string
let robot: string
beforeAll(async () => {
  await selectBackend()
  root = tempDir("resume")
  dataset = path.join(root, "squares")
  writeSquaresDataset(dataset, { train: 3, test: 0 }, 17)
  robot = path.join(root, "robot")
  writeSquaresDataset(robot, { train: 2, test: 0 }, 13, 32, "robot")
})
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const STEPS = 6
const config = Schema.decodeUnknownSync(WarmupConfigSchema)({
  steps: STEPS,
  checkpointEvery: 2,
  colourAugment: 0.5,
  latentNormFreeze: 0.5,
  model: { firstFrameSkip: false, flowWarp: false },
  optim: { batchSize: 2, lr: 3e-3, warmupSteps: 2 }
})

/** A StageContext on real directories that records what the stage reports and aborts after step `abortAt`. */
function context(stage: string, resumeDir: string, o: { abortAt?: number; pauseAtStep?: number }) {
  const outputRoot = fs.mkdtempSync(path.join(root, "out-"))
  const controller = new AbortController()
  const run: { metrics: WarmupRun["metrics"]; logs: Array<string>; checkpointed: Array<number>; error?: unknown } = { metrics: [], logs: [], checkpointed: [] }
  const ctx: StageContext = {
    invocationHash: "resume-test",
    step: stage,
    seed: 3,
    outputDir: (name) => {
      const dir = path.join(outputRoot, name)
      fs.mkdirSync(dir, { recursive: true })
      return dir
    },
    scratchDir: path.join(outputRoot, "scratch"),
    resumeDir,
    checkpointed: (step) => run.checkpointed.push(step),
    ...(o.pauseAtStep !== undefined ? { pauseAtStep: o.pauseAtStep } : {}),
    devices: { gpus: [], cpus: 1 },
    progress: () => undefined,
    metrics: (values, step) => {
      run.metrics.push({ step, values: Object.fromEntries(Object.entries(values).filter(([k]) => !k.endsWith("/step_ms"))) })
      if (step === o.abortAt) controller.abort()
    },
    log: (m) => run.logs.push(m),
    upload: () => undefined,
    signal: controller.signal
  }
  return { ctx, run, outputRoot }
}

async function warmup(resumeDir: string, o: { abortAt?: number; pauseAtStep?: number } = {}): Promise<WarmupRun> {
  const { ctx, run, outputRoot } = context("warmup", resumeDir, o)
  try {
    await runWarmup(ctx, config, dataset, { dir: robot, craftWeight: 2, robotWeight: 1 })
  } catch (e) {
    run.error = e
  }
  return { outputRoot, ...run }
}

const bytes = (run: WarmupRun, file: string) => fs.readFileSync(path.join(run.outputRoot, "checkpoint", file))

describe("warm-up: mid-stage checkpoints and resume", () => {
  let reference: WarmupRun
  beforeAll(async () => {
    reference = await warmup(tempDir("ref-resume"))
    expect(reference.error).toBeUndefined()
  })

  it("interrupted twice at random steps, rerun: the same checkpoint bytes and metrics as an uninterrupted run", async () => {
    const resumeDir = tempDir("resume-dir")
    const a = 1 + Math.floor(Math.random() * 2) // 1..2
    const b = a + 1 + Math.floor(Math.random() * 2) // after the resume point, ≤ 4
    const first = await warmup(resumeDir, { abortAt: a })
    expect(String(first.error), `abort at ${a}`).toContain(`interrupted at step ${a + 1}`)
    const second = await warmup(resumeDir, { abortAt: b })
    expect(String(second.error), `abort at ${b}`).toContain(`interrupted at step ${b + 1}`)
    // Ctrl-C checkpoints the step it stopped at
    const resumedAt = a + 1
    expect(second.logs.some((l) => l.startsWith(`warmup: resumed from step ${resumedAt} of ${STEPS} (${path.join(resumeDir, `step-${String(resumedAt).padStart(9, "0")}`)}; restored in`))).toBe(true)
    const last = await warmup(resumeDir)
    expect(last.error).toBeUndefined()
    const from = b + 1
    expect(last.logs.some((l) => l.startsWith(`warmup: resumed from step ${from} of ${STEPS}`))).toBe(true)
    expect(bytes(last, "model.safetensors").equals(bytes(reference, "model.safetensors"))).toBe(true)
    expect(bytes(last, "optimizer.safetensors").equals(bytes(reference, "optimizer.safetensors"))).toBe(true)
    expect(last.metrics).toEqual(reference.metrics.filter((m) => m.step >= from))
  })

  it("pauseAtStep: a checkpoint at the rung and no outputs; the rerun without it ends equal", async () => {
    const resumeDir = tempDir("resume-pause")
    const paused = await warmup(resumeDir, { pauseAtStep: 3 })
    expect(paused.error).toBeUndefined()
    expect(paused.checkpointed).toEqual([2, 3])
    expect(await listCheckpointSteps(resumeDir)).toEqual([3, 2])
    expect(fs.existsSync(path.join(paused.outputRoot, "checkpoint", "model.safetensors"))).toBe(false)
    const promoted = await warmup(resumeDir)
    expect(promoted.logs.some((l) => l.startsWith(`warmup: resumed from step 3 of ${STEPS}`))).toBe(true)
    expect(bytes(promoted, "model.safetensors").equals(bytes(reference, "model.safetensors"))).toBe(true)
  })
})

// the joint stage around the mini DiT: ~4 min on pure JS (CI's second pass), like stages.test.ts's joint stage; the
// harness's bit-identical resume on pure JS is checked by nn/test/training.test.ts and the warm-up cases above
describe.skipIf(process.env["VW2_TF_BACKEND"] === "cpu")("dldm (joint) stage: resume", () => {
  it("interrupted at a random step and rerun: the same dLDM and VDM checkpoints and metrics as an uninterrupted run", async () => {
    const warm = await warmup(tempDir("joint-warm"))
    const vdm = await writeUntrainedVdm(path.join(root, "vdm"))
    const jointConfig = Schema.decodeUnknownSync(dldmStage.config)({ steps: 3, optim: { batchSize: 2 }, probe: { clips: 1, sigmas: [1] } })
    const inputs = {
      dataset: { dir: dataset, kind: "video-dataset", hash: "test" },
      warmup: { dir: path.join(warm.outputRoot, "checkpoint"), kind: "dldm-checkpoint", hash: "test" },
      vdm: { dir: vdm, kind: "vdm-checkpoint", hash: "test" }
    }
    const joint = async (resumeDir: string, abortAt?: number) => {
      const { ctx, run, outputRoot } = context("dldm", resumeDir, abortAt !== undefined ? { abortAt } : {})
      const exit = await Effect.runPromiseExit(dldmStage.run(ctx, jointConfig, inputs))
      return { ...run, outputRoot, exit }
    }
    const reference = await joint(tempDir("joint-ref"))
    expect(Exit.isSuccess(reference.exit)).toBe(true)
    const resumeDir = tempDir("joint-resume")
    const abortAt = Math.floor(Math.random() * 2) // 0..1
    expect(Exit.isFailure((await joint(resumeDir, abortAt)).exit)).toBe(true)
    const resumed = await joint(resumeDir)
    expect(resumed.logs.some((l) => l.startsWith(`dldm: resumed from step ${abortAt + 1} of 3`)), `abort at ${abortAt}`).toBe(true)
    for (const file of ["checkpoint/model.safetensors", "vdm/model.safetensors"]) {
      expect(fs.readFileSync(path.join(resumed.outputRoot, file)).equals(fs.readFileSync(path.join(reference.outputRoot, file))), file).toBe(true)
    }
    // training steps from the resume point, and the held-out probe after the last step (the one before step 0 ran before the interruption)
    expect(resumed.metrics).toEqual(reference.metrics.filter((m) => m.step > abortAt))
  })
})
