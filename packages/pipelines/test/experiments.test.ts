/**
 * Every experiment file of the VideoWorld 2 system loads and validates under both presets: the planner
 * resolves each stage's config with its Schema, expands the sweep, and wires the DAG (what `vw2 plan` does).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { type Experiment, loadExperimentFilePromise, loadExperimentPromise, parseOverride, planExperiment } from "@vw2/core"
import { describe, expect, it } from "vitest"
import { craftPresets, mainTablePresets, presetNames } from "../src/Presets.ts"

const root = path.resolve(import.meta.dirname, "../../..")
// authors-dldm.ts wires the authors' own scripts (a checkout, their weights, GPUs) with one size: it has its own
// test (packages/cli/test/AuthorsDldm.test.ts); every other paper file reproduces a table on our pipeline
const authorsPipeline = "authors-dldm.ts"
const files = ["experiments/quickstart.ts", ...fs.readdirSync(path.join(root, "experiments/paper")).filter((f) => f.endsWith(".ts") && f !== authorsPipeline).map((f) => `experiments/paper/${f}`)]

/** The experiment a file declares at `preset` (undefined: a file with one size), as `vw2 plan --preset` loads it. */
const load = (file: string, preset: string | undefined): Promise<Experiment> => loadExperimentPromise(path.join(root, file), preset)

describe("experiment files", () => {
  it("covers the paper's tables", () => {
    expect(files.sort()).toEqual([
      "experiments/paper/ablation-arch.ts",
      "experiments/paper/ablation-clip-length.ts",
      "experiments/paper/ablation-codebook.ts",
      "experiments/paper/ablation-queries.ts",
      "experiments/paper/ablation-vdm-training.ts",
      "experiments/paper/ar-sweep.ts",
      "experiments/paper/baselines.ts",
      "experiments/paper/calvin.ts",
      "experiments/paper/main.ts",
      "experiments/quickstart.ts"
    ])
  })

  for (const file of files) {
    for (const preset of file.includes("quickstart") ? [undefined] : presetNames) {
      it(`${file} plans at the ${preset ?? "only"} preset`, async () => {
        const experiment = await load(file, preset)
        const plan = planExperiment(experiment)
        expect(plan.invocations.length).toBeGreaterThan(0)
        expect(experiment.preset).toBe(preset)
        if (preset !== undefined) expect(plan.experiment).toMatch(new RegExp(`-${preset}$`))
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
    const experiment = await load("experiments/quickstart.ts", undefined)
    expect(() => planExperiment(experiment, [parseOverride("ar.train.steps=-3")])).toThrow(/ar\.train\.steps/)
    const changed = planExperiment(experiment, [parseOverride("ar.train.lr=0.001")])
    const base = planExperiment(experiment)
    // an AR change re-plans ar and what consumes it, nothing upstream
    const hashes = (p: typeof base) => new Map(p.invocations.map((i) => [i.step, i.hash]))
    const [a, b] = [hashes(base), hashes(changed)]
    for (const step of ["craft-data", "vdm-pretrain", "warmup", "dldm", "tokenize", "ar-calvin", "calvin-head"]) expect(b.get(step)).toBe(a.get(step))
    for (const step of ["ar", "craft-eval"]) expect(b.get(step)).not.toBe(a.get(step))
  })

  it("declares mini and paper in every paper file, mini by default, and the preset's configs", async () => {
    for (const file of files.filter((f) => f.startsWith("experiments/paper/"))) {
      const value = await loadExperimentFilePromise(path.join(root, file))
      expect(value._tag, file).toBe("ExperimentWithPresets")
      if (value._tag !== "ExperimentWithPresets") continue
      expect(Object.keys(value.presets).sort(), file).toEqual(["mini", "paper"])
      expect(value.defaultPreset, file).toBe("mini")
      expect((await load(file, undefined)).preset, file).toBe("mini")
    }
    // the preset picks the config: the paper AR is Cosmos-AR-4B-wide, the mini one tiny
    const main = (preset: string) => load("experiments/paper/main.ts", preset).then((e) => planExperiment(e).config["ar"] as { model: { dim: number } })
    expect((await main("paper")).model.dim).toBe(mainTablePresets.paper.ar.model?.dim)
    expect((await main("mini")).model.dim).toBe(mainTablePresets.mini.ar.model?.dim)
    // a sweep built from the preset's base config: the arch rows carry that preset's DiT width
    const arch = planExperiment(await load("experiments/paper/ablation-arch.ts", "paper"))
    for (const trial of arch.trials) expect(arch.invocations.find((i) => i.hash === trial.invocations["dldm"])!.config).toMatchObject({ dit: { width: craftPresets.paper.dldm.dit?.width } })
  })

  it("rejects an unknown preset naming the accepted ones, and a preset for a file with one size", async () => {
    await expect(load("experiments/paper/main.ts", "huge")).rejects.toThrow(/unknown preset "huge": experiment paper-main has presets mini, paper/)
    await expect(load("experiments/quickstart.ts", "paper")).rejects.toThrow(/preset paper asked for, but experiment quickstart has no presets/)
  })
})
