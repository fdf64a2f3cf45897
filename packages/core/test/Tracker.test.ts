import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Tracker } from "../src/index.ts"

describe("noop tracker", () => {
  it("hands out distinct run ids", async () => {
    const t = Tracker.makeNoopTracker()
    const ids = await Effect.runPromise(
      Effect.all([t.startExperimentRun({ experiment: "e", configHash: "h", params: {}, tags: {} }), t.startTrialRun("x", { trialId: "t", seed: 0, params: {}, tags: {} })])
    )
    expect(new Set(ids).size).toBe(2)
  })
})
