/**
 * Resume on the backend a training stage picks by default (selectBackend: the native tensorflow backend where
 * it loads, with the fused AdamW op). What holds there, measured: a resumed run ends bit-identical to an
 * uninterrupted one, as on the pure-JS backend — the checkpoint restores every float exactly, and libtensorflow
 * runs the same ops on the same shapes in the same order (deterministic on CPU for this model).
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { describeBackend, selectBackend, TrainingInterrupted } from "../src/index.ts"
import { runTiny } from "./support/tinyTraining.ts"

const dirs: Array<string> = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

describe("training harness on the default backend", () => {
  it("interrupted twice and resumed: bit-identical weights, moments, EMA and metrics", async () => {
    const backend = await selectBackend()
    console.log(`backend: ${describeBackend(backend)}`)
    const dir = await mkdtemp(join(tmpdir(), "vw2-harness-native-"))
    dirs.push(dir)
    const reference = await runTiny({ steps: 20, adamw: "auto" })
    expect((await runTiny({ steps: 20, adamw: "auto", resumeDir: dir, abortAt: 5 })).error).toBeInstanceOf(TrainingInterrupted)
    expect((await runTiny({ steps: 20, adamw: "auto", resumeDir: dir, abortAt: 13 })).error).toBeInstanceOf(TrainingInterrupted)
    const resumed = await runTiny({ steps: 20, adamw: "auto", resumeDir: dir })
    expect(resumed.result?.resumedFrom).toBe(12)
    expect(resumed.weights).toEqual(reference.weights)
    expect(resumed.optimizer).toEqual(reference.optimizer)
    expect(resumed.ema).toEqual(reference.ema)
    expect(resumed.metrics).toEqual(reference.metrics.filter((m) => ("tiny/eval_mse" in m.values ? m.step > 12 : m.step >= 12)))
  })
})
