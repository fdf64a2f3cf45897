/**
 * Every experiment file of the VideoWorld 2 system loads and validates under both presets: the planner
 * resolves each stage's config with its Schema, expands the sweep, and wires the DAG (what `vw2 plan` does).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { type Experiment, isExperiment, parseOverride, planExperiment } from "@vw2/core"
import { describe, expect, it } from "vitest"
import { presetFromEnv } from "../src/Presets.ts"

const root = path.resolve(import.meta.dirname, "../../..")
const files = ["experiments/quickstart.ts", ...fs.readdirSync(path.join(root, "experiments/paper")).filter((f) => f.endsWith(".ts")).map((f) => `experiments/paper/${f}`)]

/** Import an experiment file afresh with VW2_PRESET set (the query string defeats the module cache). */
const load = async (file: string, preset: string): Promise<Experiment> => {
  const previous = process.env["VW2_PRESET"]
  process.env["VW2_PRESET"] = preset
  try {
    const module = (await import(`${pathToFileURL(path.join(root, file)).href}?preset=${preset}`)) as { default: unknown }
    if (!isExperiment(module.default)) throw new Error(`${file}: default export is not an experiment`)
    return module.default
  } finally {
    if (previous === undefined) delete process.env["VW2_PRESET"]
    else process.env["VW2_PRESET"] = previous
  }
}

describe("experiment files", () => {
  it("covers the paper's tables", () => {
    expect(files.sort()).toEqual([
      "experiments/paper/ablation-arch.ts",
      "experiments/paper/ablation-clip-length.ts",
      "experiments/paper/ablation-codebook.ts",
      "experiments/paper/ablation-queries.ts",
      "experiments/paper/ablation-vdm-training.ts",
      "experiments/paper/baselines.ts",
      "experiments/paper/calvin.ts",
      "experiments/paper/main.ts",
      "experiments/quickstart.ts"
    ])
  })

  for (const file of files) {
    for (const preset of file.includes("quickstart") ? ["mini"] : ["mini", "paper"]) {
      it(`${file} plans at the ${preset} preset`, async () => {
        const experiment = await load(file, preset)
        const plan = planExperiment(experiment)
        expect(plan.invocations.length).toBeGreaterThan(0)
        if (!file.includes("quickstart")) expect(plan.experiment).toContain(preset)
        // every step of the pipeline is planned, and every input is wired to an upstream invocation
        expect(new Set(plan.invocations.map((i) => i.step))).toEqual(new Set(experiment.pipeline.steps.map((s) => s.name)))
        const hashes = new Set(plan.invocations.map((i) => i.hash))
        for (const inv of plan.invocations) for (const dep of inv.dependsOn) expect(hashes.has(dep)).toBe(true)
      })
    }
  }

  it("sweeps expand to one trial per ablation row", async () => {
    expect(planExperiment(await load("experiments/paper/ablation-arch.ts", "mini")).trials).toHaveLength(4)
    expect(planExperiment(await load("experiments/paper/ablation-queries.ts", "mini")).trials).toHaveLength(4)
    expect(planExperiment(await load("experiments/paper/ablation-clip-length.ts", "paper")).trials).toHaveLength(5)
  })

  it("a wrong override fails validation with its path", async () => {
    const experiment = await load("experiments/quickstart.ts", "mini")
    expect(() => planExperiment(experiment, [parseOverride("ar.train.steps=-3")])).toThrow(/ar\.train\.steps/)
    const changed = planExperiment(experiment, [parseOverride("ar.train.lr=0.001")])
    const base = planExperiment(experiment)
    // an AR change re-plans ar and what consumes it, nothing upstream
    const hashes = (p: typeof base) => new Map(p.invocations.map((i) => [i.step, i.hash]))
    const [a, b] = [hashes(base), hashes(changed)]
    for (const step of ["craft-data", "vdm-pretrain", "warmup", "dldm", "tokenize", "ar-calvin", "calvin-head"]) expect(b.get(step)).toBe(a.get(step))
    for (const step of ["ar", "craft-eval"]) expect(b.get(step)).not.toBe(a.get(step))
  })

  it("rejects an unknown preset name", () => {
    expect(() => presetFromEnv({ VW2_PRESET: "huge" })).toThrow(/VW2_PRESET=huge: expected one of mini, paper/)
    expect(presetFromEnv({})).toBe("mini")
  })
})
