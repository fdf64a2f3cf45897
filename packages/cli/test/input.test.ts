/**
 * What the user gets back for bad input, through the real `vw2` binary: the exit code (2, nothing ran), an
 * error that names the experiment file and the config path, and experiment files written anywhere on disk.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { fixture, readLog, sandbox, vw2 } from "./cliHarness.ts"

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-cli-files-"))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))
const write = (name: string, text: string) => {
  const file = path.join(scratch, name)
  fs.writeFileSync(file, text)
  return file
}

describe("vw2 input errors", () => {
  it("exits 2 for flags the parser rejects, 0 for bare help", () => {
    const box = sandbox("flags")
    const badInt = vw2(box, ["run", fixture, "--cpus", "abc"])
    expect(badInt.status).toBe(2)
    expect(badInt.stderr).toContain("--cpus")
    expect(vw2(box, ["run", fixture, "--no-such-flag"]).status).toBe(2)
    expect(vw2(box, ["plan"]).status).toBe(2) // missing file argument
    expect(vw2(box, []).status).toBe(0)
    expect(vw2(box, ["--help"]).status).toBe(0)
    const noMemory = vw2(box, ["run", fixture, "--memory", "0"])
    expect(noMemory.status).toBe(2)
    expect(noMemory.stderr).toContain("--memory 0: expected megabytes")
    const tooBig = vw2(box, ["run", fixture, "--memory", "1000", "--set", "a.memoryMb=4000"])
    expect(tooBig.status).toBe(2)
    expect(tooBig.stderr).toContain("needs 4000 MB of memory but the executor has 1000 MB")
    expect(readLog(box.log)).toEqual([])
  })

  it("names the experiment file and the config path of an invalid config", () => {
    const box = sandbox("badfile")
    const file = write("bad-config.ts", `
import { defineExperiment } from "@vw2/core"
import { baseConfig, pipeline } from ${JSON.stringify(fixture)}
export default defineExperiment({ name: "bad", pipeline, config: { ...baseConfig, a: { ...baseConfig.a, scale: "big" } } as never })
`)
    const r = vw2(box, ["run", file])
    expect(r.status).toBe(2)
    expect(r.stderr).toContain(`${file}: invalid config (experiment config)`)
    expect(r.stderr).toContain('a.scale: Expected number, got "big"')
    expect(r.stdout).toBe("")
    expect(readLog(box.log)).toEqual([])
  })

  it("points at the line of a syntax error in the experiment file", () => {
    const box = sandbox("syntax")
    const file = write("syntax.ts", `import { defineExperiment } from "@vw2/core"\nconst x: number =\nexport default x +\n`)
    const r = vw2(box, ["plan", file])
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+`))
  })
})

describe("an executor that cannot start", () => {
  it("reports the reason in a few lines and exits 2 without running anything", () => {
    const box = sandbox("noray")
    const r = vw2(box, ["run", fixture, "--executor", "ray", "--ray-address", "127.0.0.1:1"])
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/^vw2: ray executor: /m)
    expect(r.stderr).toContain("vw2 ray up")
    expect(r.stderr).not.toMatch(/^\s+at /m) // no stack trace
    expect(readLog(box.log)).toEqual([])
  })
})

describe("an experiment file outside the repository", () => {
  it("imports @vw2/core and effect and runs on local workers, recording the executor", () => {
    const box = sandbox("outside")
    const file = write("mine.ts", `
import { defineExperiment, definePipeline, defineStage } from "@vw2/core"
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
const count = defineStage({
  name: "count", version: "1", config: Schema.Struct({ n: Schema.Int }), inputs: {}, outputs: { numbers: "numbers" },
  run: (ctx, config) => Effect.sync(() => fs.writeFileSync(path.join(ctx.outputDir("numbers"), "n.json"), JSON.stringify(config.n)))
})
const double = defineStage({
  name: "double", version: "1", config: Schema.Struct({}), inputs: { numbers: "numbers" }, outputs: { doubled: "numbers" },
  run: (ctx, _config, inputs) => Effect.sync(() => {
    const n = JSON.parse(fs.readFileSync(path.join(inputs.numbers.dir, "n.json"), "utf8")) as number
    fs.writeFileSync(path.join(ctx.outputDir("doubled"), "n.json"), JSON.stringify(2 * n))
  })
})
export default defineExperiment({
  name: "mine",
  pipeline: definePipeline().step("count", count, {}).step("double", double, { numbers: "count.numbers" }),
  config: { count: { n: 21 }, double: {} }
})
`)
    const r = vw2(box, ["run", file, "--executor", "local", "--cpus", "1"])
    expect(r.stderr).not.toContain("Cannot find package")
    expect(r.status).toBe(0)
    const plan = JSON.parse(vw2(box, ["plan", file, "--json"]).stdout)
    const double = plan.invocations.find((i: { step: string }) => i.step === "double")
    expect(double.status).toBe("cached")
    expect(JSON.parse(fs.readFileSync(path.join(box.home, "store", double.hash, "doubled", "n.json"), "utf8"))).toBe(42)
    const [record] = JSON.parse(vw2(box, ["status", "--json"]).stdout)
    expect(record.executor).toMatch(/^local: 1 cpu slot\(s\), \d+ MB memory, no GPUs$/)
  })
})
