import { describe, expect, it } from "vitest"
import { completedPrefix, stepwiseSuccess } from "../src/StepwiseSuccess.ts"

describe("step-wise success", () => {
  it("counts a step only when every earlier step succeeded", () => {
    expect(completedPrefix([true, true, false, true])).toBe(2)
    expect(completedPrefix([false, true])).toBe(0)
    expect(completedPrefix([true, true])).toBe(2)
  })

  it("aggregates per task as the share of episodes reaching each step", () => {
    const table = stepwiseSuccess([
      { episode: "a", task: "fold-plane", steps: 3, completedPrefix: 3 },
      { episode: "b", task: "fold-plane", steps: 3, completedPrefix: 1 },
      { episode: "c", task: "fold-plane", steps: 3, completedPrefix: 0 },
      { episode: "d", task: "fold-plane", steps: 3, completedPrefix: 2 },
      { episode: "e", task: "blocks-tower", steps: 2, completedPrefix: 2 }
    ])
    expect(table).toEqual([
      { task: "blocks-tower", episodes: 1, stepSuccessPct: [100, 100] },
      { task: "fold-plane", episodes: 4, stepSuccessPct: [75, 50, 25] }
    ])
  })
})
