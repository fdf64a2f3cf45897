import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { sandbox, vw2 } from "./cliHarness.ts"

const quickstart = fileURLToPath(new URL("../../../experiments/examples/moons.ts", import.meta.url))
const small = ["--set", "mlp.epochs=8", "--set", "linear.epochs=8"]

/** "[   1.2s] ▶ mlp 96968404 p0-s0 running" → seconds, per step and status */
const timeline = (stdout: string) => {
  const events = new Map<string, number>()
  for (const match of stdout.matchAll(/^\[\s*([\d.]+)(ms|s)\] \S+ (\w+) [0-9a-f]{8} \S+ (running|done)/gm)) {
    events.set(`${match[3]} ${match[4]}`, Number(match[1]) / (match[2] === "ms" ? 1000 : 1))
  }
  return events
}

describe("quickstart (example pipeline, real tfjs training)", () => {
  it("trains both branches in parallel, then caches everything, and an override reruns only its branch", () => {
    const box = sandbox("quickstart")
    const first = vw2(box, ["run", quickstart, ...small])
    expect(first.status).toBe(0)
    expect(first.stdout).toContain("6 ran, 0 cached")
    const t = timeline(first.stdout)
    // the two model branches overlap in time
    expect(t.get("mlp running")!).toBeLessThan(t.get("linear done")!)
    expect(t.get("linear running")!).toBeLessThan(t.get("mlp done")!)
    const accuracy = Number(/evalMlp\s*│[^\n]*accuracy=([\d.]+)/.exec(first.stdout)![1])
    expect(accuracy).toBeGreaterThan(0.8) // the MLP really learned the two moons

    const second = vw2(box, ["run", quickstart, ...small])
    expect(second.status).toBe(0)
    expect(second.stdout).toContain("0 ran, 6 cached")

    const changed = vw2(box, ["run", quickstart, ...small, "--set", "mlp.hidden=[8]"])
    expect(changed.status).toBe(0)
    expect(changed.stdout).toContain("3 ran, 3 cached")
    expect(changed.stdout).toMatch(/linear\s*│[^\n]*│ cached/)
  })
})
