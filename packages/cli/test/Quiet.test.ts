/** `vw2 plan` keeps TensorFlow's native load notices off the terminal unless `--verbose`. */
import { describe, expect, it } from "vitest"
import { fixture, sandbox, vw2 } from "./cliHarness.ts"

describe("quiet by default", () => {
  it("prints no TensorFlow notice on plan; --verbose shows them when the native backend loads", () => {
    const box = sandbox("quiet")
    const env = { ...box.env }
    delete env.TF_CPP_MIN_LOG_LEVEL
    const quiet = vw2({ ...box, env }, ["plan", fixture])
    expect(quiet.status, quiet.stderr).toBe(0)
    expect(quiet.stderr).not.toMatch(/absl|oneDNN|cpu_feature_guard|port\.cc/)
    const native = /tfjs tensorflow \(native/.test(quiet.stdout)
    const verbose = vw2({ ...box, env }, ["plan", fixture, "--verbose"])
    expect(verbose.status, verbose.stderr).toBe(0)
    // libtensorflow announces oneDNN when it loads; only the native backend loads it
    if (native) expect(verbose.stderr).toMatch(/oneDNN custom operations are on/)
    expect(verbose.stdout.split("\n")[1]).toBe(quiet.stdout.split("\n")[1])
  })
})
