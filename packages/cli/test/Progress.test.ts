/** Terminal progress and the end-of-run summary: monotone bars with ETA, headline metrics, width, trial labels. */
import type { InvocationResult, Plan, PlannedInvocation, PlannedTrial, RunEvent, RunObserver, RunSummary } from "@vw2/core"
import { Effect } from "effect"
import { PassThrough } from "node:stream"
import { describe, expect, it } from "vitest"
import { formatProgress, headlineMetrics, lineProgress, ProgressTrack, ttyProgress } from "../src/Progress.ts"
import { renderSummary } from "../src/Summary.ts"
import { isTensorflowNoise } from "../src/TfBackend.ts"

const invocation = (step: string, stage: string, trials: ReadonlyArray<string> = ["t0"]) =>
  ({ hash: `${step}`.padEnd(64, "0"), step, stage, trials }) as unknown as PlannedInvocation

/** Hands `observer` the start of a run planning `invocations`, then `events` (what runPlan's feed does). */
const feed = (observer: RunObserver, invocations: ReadonlyArray<PlannedInvocation>, ...events: ReadonlyArray<RunEvent>) => {
  const plan = { experiment: "x", configHash: "", steps: [], config: {}, trials: [], pinnedAxes: [], invocations } as unknown as Plan
  for (const event of [{ type: "run-started", plan, backend: "inline", tags: {}, artifacts: [], timestamp: 0 } as const, ...events]) Effect.runSync(observer.onEvent(event))
}

describe("ProgressTrack", () => {
  it("never shows less than it has shown, and extrapolates the rate since the first report", () => {
    const t = new ProgressTrack()
    t.update(0, 10, "start", 1_000)
    t.update(8, 10, "decoder ep 8", 9_000) // 80 % after 8 s: 1 s per 10 %
    expect(formatProgress(t, 9_000)).toBe("██████████░░  80% ETA 2.0s")
    // a second pass that counts from 0 again (craft-eval's low-fi pass before its fix): held at 80 %
    t.update(4, 10, "low-fi ep 4", 10_000)
    expect(t.fraction).toBe(0.8)
    expect(t.message).toBe("low-fi ep 4")
    // time since the last report counts against the estimate; it never goes below 0
    expect(t.etaMs(10_000)).toBeCloseTo(1_000, 6)
    expect(t.etaMs(60_000)).toBe(0)
    t.update(10, 10, undefined, 11_000)
    expect(formatProgress(t, 11_000)).toBe("████████████ 100%")
  })

  it("has no ETA before the rate is known", () => {
    const t = new ProgressTrack()
    t.update(3, 10, undefined, 5_000)
    expect(t.etaMs(6_000)).toBeUndefined()
    expect(formatProgress(t, 6_000)).toBe("████░░░░░░░░  30%")
  })
})

describe("headline metrics", () => {
  it("puts the stage's own metrics first, leaves bookkeeping out and drops the row's prefix", () => {
    const values = { "warmup/lr": 1e-3, "warmup/loss": 0.25, "warmup/step_ms": 40, "warmup/grad_norm": 2, "other/x": 1, "warmup/reconstruction": 0.125 }
    expect(headlineMetrics(values, { step: "warmup", stage: "warmup" })).toEqual([["loss", 0.25], ["reconstruction", 0.125], ["other/x", 1]])
    // a step running another stage (ar-calvin runs `ar`, which logs `ar/…`)
    expect(headlineMetrics({ "ar/loss": 3, "ar/lr": 1 }, { step: "ar-calvin", stage: "ar" })).toEqual([["loss", 3]])
  })

  it("shows a stage's declared headline first, in its order, skipping keys it has not logged", () => {
    const values = { "probe/codes/perplexity": 80, "probe/step/over_chance": 2, "probe/phase/accuracy": 0.8, "probe/x": 1 }
    const owner = { step: "dldm-probe", stage: "dldm-probe", headline: ["probe/step/over_chance", "probe/nosuch", "probe/codes/perplexity"] }
    expect(headlineMetrics(values, owner, 3)).toEqual([["probe/step/over_chance", 2], ["probe/codes/perplexity", 80], ["probe/x", 1]])
  })
})

describe("lineProgress", () => {
  it("keeps TensorFlow's load notices out unless verbose, and prints throttled, monotone progress", () => {
    const lines: Array<string> = []
    const notice = "I0000 00:00:1796608006.036488   26881 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results"
    const inv = invocation("craft-eval", "craft-eval")
    const quiet = lineProgress((l) => lines.push(l), { progressEveryMs: 0 })
    const log = (message: string) => ({ type: "log", message, timestamp: 0, invocation: inv.hash }) as const
    feed(
      quiet,
      [inv],
      log("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"),
      log(notice),
      log("craft-eval: 4 test episodes"),
      { type: "progress", done: 8, total: 10, message: "vdm ep 8", invocation: inv.hash },
      { type: "progress", done: 4, total: 10, message: "low-fi ep 4", invocation: inv.hash }
    )
    expect(lines.map((l) => l.replace(/^\[\s*[\d.]+m?s\]\s+/, ""))).toEqual([
      "craft-eval | craft-eval: 4 test episodes",
      "craft-eval ██████████░░  80% vdm ep 8",
      "craft-eval ██████████░░  80% low-fi ep 4"
    ])
    const verbose: Array<string> = []
    feed(lineProgress((l) => verbose.push(l), { verbose: true }), [inv], log(notice))
    expect(verbose).toHaveLength(1)
  })
})

describe("ttyProgress", () => {
  const terminal = () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 80, rows: 20 }) as unknown as NodeJS.WriteStream & PassThrough
    let text = ""
    stream.on("data", (d) => (text += String(d)))
    return { stream, text: () => text }
  }

  it("draws nothing before the run starts (no bare counter above the table) and fits lines to the width", async () => {
    const { stream, text } = terminal()
    const progress = ttyProgress(stream)
    progress.print("starting MLflow server …")
    await new Promise((r) => setTimeout(r, 1_200))
    expect(text()).toBe("starting MLflow server …\n")
    const inv = invocation("a-very-long-step-name-that-fills", "s")
    feed(
      progress,
      [inv],
      { type: "status", invocation: inv.hash, status: "running", timestamp: 0 },
      { type: "progress", done: 1, total: 4, message: "a long message ".repeat(10), invocation: inv.hash },
      { type: "metrics", step: 1, timestamp: 0, values: { "s/loss": 0.5 }, invocation: inv.hash }
    )
    progress.stop()
    const drawn = text().split("\n").map((l) => l.replace(/\u001b\[[?0-9;]*[A-Za-z]/g, ""))
    expect(drawn.some((l) => l.includes("25%"))).toBe(true)
    expect(Math.max(...drawn.map((l) => l.length))).toBeLessThanOrEqual(79)
  })
})

describe("summary", () => {
  const trials: Array<PlannedTrial> = [0.1, 0.01].flatMap((lr, p) =>
    [0, 1].map((seed) => ({ id: `p${p}-s${seed}`, index: 2 * p + seed, seed, assignments: { "train.lr": lr }, configHash: "", invocations: {} }))
  )
  const result = (step: string, stage: string, trialIds: ReadonlyArray<string>, status: InvocationResult["status"], metrics: Record<string, number>): InvocationResult => ({
    hash: `${step}${trialIds.join("")}`.padEnd(64, "f"),
    step,
    stage,
    trials: trialIds,
    headline: [],
    status,
    durationMs: 1234,
    metrics
  })
  const summary: RunSummary = {
    status: "succeeded",
    experimentRunId: "r",
    durationMs: 65_000,
    results: [
      result("data", "generate", trials.map((t) => t.id), "cached", { "data/episodes": 8 }),
      result("baseline", "fit", ["p0-s1", "p1-s1"], "done", {}),
      ...trials.map((t, i) =>
        result("train", "fit", [t.id], "done", { "train/lr": 0.1, "train/loss": 0.5 + i, "train/accuracy_on_the_held_out_split_of_the_data": 0.75, "train/step_ms": 3, "train/x": 1, "train/y": 2 })
      )
    ]
  }

  it("labels sweep trials, shows cached steps' metrics and fits the terminal", () => {
    const text = renderSummary(summary, { trials, width: 80 })
    const lines = text.split("\n")
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80)
    expect(text).toContain("lr=0.01 seed=1")
    expect(text).toContain("all 4")
    expect(lines.find((l) => l.includes("baseline"))).toContain("seed=1 (2 trials)")
    expect(lines.find((l) => l.includes("data"))).toContain("episodes=8")
    const train = lines.find((l) => l.includes("lr=0.1 seed=0"))!
    expect(train).toContain("loss=0.5")
    expect(train).not.toContain("step_ms")
    expect(lines.at(-1)).toBe("SUCCEEDED in 1m5s: 5 ran, 1 cached, 0 failed, 0 skipped")
    // a wide terminal shows more of the metrics
    expect(renderSummary(summary, { trials, width: 200 })).toContain("accuracy_on_the_held_out_split_of_the_data=0.75")
  })

  it("leaves TensorFlow's notices out of a failed stage's stderr tail", () => {
    const failed: RunSummary = {
      ...summary,
      status: "failed",
      results: [{ ...result("train", "fit", ["p0-s0"], "failed", {}), error: "boom", stderrTail: "I0000 00:00:1796608006.036488   26881 port.cc:153] oneDNN custom operations are on.\nError: boom" }]
    }
    const text = renderSummary(failed, { trials })
    expect(text).toContain("    Error: boom")
    expect(text).not.toContain("oneDNN")
  })
})

describe("TensorFlow notices", () => {
  it("recognises the load notices and nothing else", () => {
    for (const line of [
      "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
      "I0000 00:00:1796608006.036488   26881 port.cc:153] oneDNN custom operations are on.",
      "I0000 00:00:1796608705.953342    6241 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions",
      "2024-05-01 10:00:00.123456: I tensorflow/core/platform/cpu_feature_guard.cc:210] This TensorFlow binary is optimized",
      "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags."
    ]) expect(isTensorflowNoise(line), line).toBe(true)
    for (const line of [
      "E0000 00:00:1796608006.036488   26881 op.cc:1] an error",
      "W0000 00:00:1796608006.036488   26881 allocator.cc:1] Allocation of 400000000 exceeds 10% of free system memory.", "warmup: loss 0.2", "Error: I0000 is not a notice"]) expect(isTensorflowNoise(line), line).toBe(false)
  })
})
