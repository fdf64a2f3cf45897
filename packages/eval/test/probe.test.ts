/**
 * dldm-probe: the linear probe separates what is separable and stays at chance on random labels; the probe
 * on a real MiniCraft dataset scores the repeat baselines exactly, reads an untrained (copying) gated decoder
 * as carrying nothing, and its judged rollouts are not fed true frames (exact judge: ground truth 100 %, an
 * untrained decoder's oracle and random-code rollouts 0 %).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { runStageDirect } from "@vw2/core"
import { Dataset, generateMiniCraftStage } from "@vw2/data"
import { Dldm, miniPreset } from "@vw2/dldm"
import { Init, Rng, selectBackend } from "@vw2/nn"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeEpisodeJudge } from "../src/craft/MiniCraftJudging.ts"
import { probeDldm, probeMetrics, type ProbeJudge } from "../src/probe/DldmProbe.ts"
import { fitLinearProbe } from "../src/probe/LinearProbe.ts"
import { makeVideo } from "../src/Video.ts"

describe("linear probe", () => {
  const rng = new Rng(3)
  const blobs = (n: number, shuffle: boolean) => {
    const x: number[][] = []
    const y: number[] = []
    for (let i = 0; i < n; i++) {
      const label = i % 3
      x.push(Array.from({ length: 8 }, (_, d) => (d === label ? 2 : 0) + rng.normal()))
      y.push(shuffle ? Math.floor(rng.next() * 3) : label)
    }
    return { x, y }
  }

  it("separable classes: test accuracy well above chance; random labels: about chance", () => {
    const [a, b] = [blobs(150, false), blobs(90, false)]
    const fit = fitLinearProbe(a.x, a.y, b.x, b.y)
    expect(fit.testAccuracy).toBeGreaterThan(0.8)
    expect(fit.chance).toBeCloseTo(1 / 3, 5)
    const [c, d] = [blobs(150, true), blobs(300, true)]
    const noise = fitLinearProbe(c.x, c.y, d.x, d.y)
    expect(noise.testAccuracy / noise.chance).toBeLessThan(1.3)
  })
})

describe("probeDldm on MiniCraft", () => {
  let root: string
  let dataset: Dataset
  let model: Dldm
  beforeAll(async () => {
    await selectBackend()
    const run = await runStageDirect(generateMiniCraftStage, { trainEpisodesPerTask: 1, testEpisodesPerTask: 1, tasks: ["fold-plane", "blocks-tower"] }, {}, { seed: 0 })
    root = path.dirname(run.outputRoot)
    dataset = Dataset.open(path.join(run.outputRoot, "dataset"))
    model = new Dldm(Init.seeded(0), miniPreset) // untrained: the gated decoder copies the previous frame
  }, 120_000)
  afterAll(() => {
    model?.dispose()
    if (root !== undefined) fs.rmSync(root, { recursive: true, force: true })
  })

  it("repeat baselines are exact, an untrained copying decoder carries nothing, rollouts are judged on decoded frames only", () => {
    const supersample = (dataset.manifest.stats as { minicraft?: { supersample?: number } } | undefined)?.minicraft?.supersample
    const judges = new Map<string, ReturnType<typeof makeEpisodeJudge>>()
    const judgeOf = (task: string, id: string) => {
      const j = judges.get(id) ?? makeEpisodeJudge({ task, appearance: dataset.meta(id).appearance }, dataset.height, dataset.width, supersample)
      judges.set(id, j)
      return j
    }
    // the exact MiniCraft judge (a real judge; it needs the episode's appearance, hence the episode id)
    const exact: ProbeJudge = {
      steps: (task, id) => judgeOf(task, id).steps,
      completedPrefix: (task, frames, T, id) => judgeOf(task, id).completedPrefix(makeVideo(frames, T, dataset.height, dataset.width))
    }
    const r = probeDldm(model, dataset, exact, { trainSplit: "train", testSplit: "test", clipStride: 8, maxTrainClips: 500, probeIterations: 50, rolloutEpisodesPerTask: 0, seed: 0 })
    // chained repeat = frame 0 repeated, computed here independently over the same clips
    const T = 9
    const size = 32 * 32 * 3
    let sum = 0
    let clips = 0
    for (const ep of dataset.episodes({ split: "test" })) {
      for (let s = 0; s + T <= ep.length; s += 8, clips++) {
        const f = dataset.readFrames(ep.id, Array.from({ length: T }, (_, t) => s + t))
        let d = 0
        for (let t = 1; t < T; t++) for (let k = 0; k < size; k++) d += Math.abs(f[t * size + k]! - f[k]!) / 255
        sum += d / ((T - 1) * size)
      }
    }
    expect(r.testClips).toBe(clips)
    expect(r.chained.repeat).toBeCloseTo(sum / clips, 5)
    // an untrained gated decoder is a near copy: own = swapped, own ≈ repeat
    expect(Math.abs(r.teacherForced.swappedOverOwnPct)).toBeLessThan(1)
    // |x̂ − prev| ≤ sigmoid(−4)·max|0.5 − prev| < .01 per pixel for the untrained gated output
    expect(Math.abs(r.teacherForced.own - r.teacherForced.repeat)).toBeLessThan(0.01)
    expect(r.codes.distinct).toBeGreaterThan(0)
    expect(r.codes.perplexity).toBeLessThanOrEqual(r.codes.distinct + 1e-9)
    const judged = r.judged!
    expect(judged.groundTruth.meanFraction).toBe(1)
    expect(judged.oracle.step1).toBe(0)
    expect(judged.randomCodes.step1).toBe(0)
    const m = probeMetrics(r)
    for (const key of ["probe/teacher_forced/swapped_over_own_pct", "probe/codes/perplexity", "probe/step/over_chance", "probe/phase/accuracy", "probe/rollout/oracle/step_1"]) {
      expect(Number.isFinite(m[key]), key).toBe(true)
    }
  }, 180_000)
})
