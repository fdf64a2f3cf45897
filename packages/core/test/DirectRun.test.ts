import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { defineStage, runStageDirect, StageError } from "../src/index.ts"

/** Copies its input's text, upper-cased, into its output, reporting a metric, a log line and an upload. */
const shout = defineStage({
  name: "shout",
  version: "1",
  config: Schema.Struct({ times: Schema.Int.check(Schema.isGreaterThan(0)) }),
  inputs: { text: "text" },
  outputs: { loud: "text" },
  seeded: false,
  resources: () => ({ cpus: 1, memoryMb: 64 }),
  run: (ctx, config, inputs) =>
    Effect.sync(() => {
      const text = fs.readFileSync(path.join(inputs.text.dir, "in.txt"), "utf8").toUpperCase().repeat(config.times)
      fs.writeFileSync(path.join(ctx.outputDir("loud"), "out.txt"), text)
      ctx.metrics({ chars: text.length, bad: Number.NaN }, 3)
      ctx.log(`shouted ${text.length} chars`)
      ctx.upload("loud/out.txt")
    })
})

const inputDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-direct-in-"))
  fs.writeFileSync(path.join(dir, "in.txt"), "hey")
  return dir
}

describe("runStageDirect", () => {
  it("runs the stage with the executors' context and records what it reports", async () => {
    const run = await runStageDirect(shout, { times: 2 }, { text: inputDir() })
    expect(fs.readFileSync(path.join(run.outputRoot, "loud", "out.txt"), "utf8")).toBe("HEYHEY")
    expect(run.metrics).toEqual([{ values: { chars: 6 }, step: 3 }]) // non-finite values dropped, as on every executor
    expect(run.logs).toEqual(["shouted 6 chars"])
    expect(run.uploads).toEqual(["loud/out.txt"])
  })

  it("passes an outside abort to the stage as ctx.signal, and rejects with the stage's error", async () => {
    const waits = defineStage({
      name: "waits",
      version: "1",
      config: Schema.Struct({}),
      inputs: {},
      outputs: {},
      run: (ctx) =>
        Effect.callback<void, StageError>((resume) => {
          const stop = () => resume(Effect.fail(new StageError({ stage: "waits", message: `interrupted: ${String(ctx.signal.reason)}` })))
          if (ctx.signal.aborted) stop()
          else ctx.signal.addEventListener("abort", stop, { once: true })
        })
    })
    const abort = new AbortController()
    const running = runStageDirect(waits, {}, {}, { seed: 3, signal: abort.signal })
    setTimeout(() => abort.abort("enough"), 50)
    await expect(running).rejects.toThrow("interrupted: enough")
    const already = new AbortController()
    already.abort("before start")
    await expect(runStageDirect(waits, {}, {}, { signal: already.signal })).rejects.toThrow("interrupted: before start")
  })

  it("rejects a config its Schema refuses and an input the stage does not declare", async () => {
    await expect(runStageDirect(shout, { times: 0 }, { text: inputDir() })).rejects.toThrow(/times/)
    await expect(runStageDirect(shout, { times: 1, extra: 1 }, { text: inputDir() })).rejects.toThrow(/extra/)
    await expect(runStageDirect(shout, { times: 1 }, { txt: inputDir() })).rejects.toThrow(/shout: no input named "txt"/)
  })
})
