/** `vw2 plan`'s table fits the terminal: trials as rows when they fit, else steps as rows. */
import { describe, expect, it } from "vitest"
import { type PlanDocument, renderPlan } from "../src/PlanView.ts"

const doc = (steps: ReadonlyArray<string>, trials: number): PlanDocument => {
  const hash = (step: string, t: number) => `${step}-${t}`.padEnd(64, "0")
  const planned = Array.from({ length: trials }, (_, t) => ({
    id: `p${t}-s0`,
    index: t,
    seed: 0,
    assignments: trials > 1 ? { "train.lr": 10 ** -(t + 1) } : {},
    configHash: "c".repeat(64),
    invocations: Object.fromEntries(steps.map((s) => [s, hash(s, t)]))
  }))
  const invocations = planned.flatMap((t, i) => steps.map((s) => ({ hash: hash(s, i), step: s, status: i === 0 ? "cached" : "to-run" })))
  return {
    format: "vw2.plan/1",
    experiment: "demo",
    file: "/x/demo.ts",
    store: "/x/.vw2",
    configHash: "c".repeat(64),
    steps,
    config: {},
    pinnedAxes: [],
    trials: planned,
    invocations,
    summary: { trials, invocations: invocations.length, trialSteps: trials * steps.length, cached: steps.length, toRun: invocations.length - steps.length }
  } as unknown as PlanDocument
}

const widest = (text: string) => Math.max(...text.split("\n").slice(2, -1).map((l) => l.length))

describe("renderPlan", () => {
  it("lists a long pipeline's steps down the screen instead of wrapping", () => {
    const steps = ["craft-data", "calvin-data", "vdm-pretrain", "warmup", "dldm", "tokenize", "craft-judge", "dldm-probe", "tokenize-calvin", "ar", "ar-calvin", "calvin-head", "craft-eval"]
    const text = renderPlan(doc(steps, 1), { width: 100 })
    expect(widest(text)).toBeLessThanOrEqual(100)
    const rows = text.split("\n").filter((l) => /^│ (craft|calvin|vdm|warmup|dldm|tokenize|ar)/.test(l))
    expect(rows).toHaveLength(13)
    expect(rows[0]).toMatch(/│ craft-data\s+│ craft-data cached │/)
    expect(text.split("\n").at(-1)).toBe("1 trial(s) × 13 step(s) = 13 stage runs → 13 distinct invocation(s): 13 cached, 0 to run")
  })

  it("keeps trials as rows when they fit, and says how many trials a narrow terminal leaves out", () => {
    const small = renderPlan(doc(["data", "train", "eval"], 3), { width: 100 })
    expect(small.split("\n")[3]).toMatch(/│ trial\s+│ seed │ data\s+│ train\s+│ eval/)
    expect(small).toContain("train.lr=0.001")
    const many = renderPlan(doc(["craft-data", "warmup", "dldm", "tokenize", "ar", "craft-eval", "dldm-probe"], 12), { width: 80 })
    expect(widest(many)).toBeLessThanOrEqual(80)
    expect(many).toMatch(/… 9 more trials \(vw2 plan --json lists all\)/)
  })
  it("names the preset and every sweep axis a --set pinned", () => {
    const plan = { ...doc(["data", "train"], 1), preset: "paper", pinnedAxes: ["train.lr: grid of 3 value(s) → --set train.lr=0.1"] }
    const text = renderPlan(plan, { width: 100 })
    expect(text.split("\n")[0]).toBe("experiment demo  preset paper  (/x/demo.ts)")
    expect(text).toContain("pinned by --set: train.lr: grid of 3 value(s) → --set train.lr=0.1")
  })
})
