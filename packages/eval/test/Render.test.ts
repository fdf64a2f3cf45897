import { PNG } from "pngjs"
import { describe, expect, it } from "vitest"
import { available, unavailable } from "../src/Availability.ts"
import { sideBySideGif } from "../src/Gif.ts"
import { buildPaperTable, tableMarkdown } from "../src/PaperTable.ts"
import { stepSuccessPng } from "../src/Plot.ts"
import { makeVideo } from "../src/Video.ts"

describe("rollout GIF", () => {
  it("encodes ground truth and generated side by side, one GIF frame per video frame", () => {
    const gt = makeVideo(new Uint8Array(3 * 4 * 4 * 3).fill(200), 3, 4, 4)
    const gen = makeVideo(new Uint8Array(2 * 4 * 4 * 3).fill(20), 2, 4, 4)
    const bytes = sideBySideGif([gt, gen], { scale: 2, gap: 2 })
    expect(Buffer.from(bytes.subarray(0, 6)).toString("ascii")).toBe("GIF89a")
    // logical screen width = 2 panels × 4 px × scale 2 + gap 2
    expect(bytes[6]! | (bytes[7]! << 8)).toBe(18)
    expect(bytes[8]! | (bytes[9]! << 8)).toBe(8)
    // image descriptors (0x2C after a graphic control extension block terminator) = frame count
    let frames = 0
    for (let i = 0; i + 1 < bytes.length; i++) if (bytes[i] === 0x00 && bytes[i + 1] === 0x2c) frames++
    expect(frames).toBe(3)
  })
})

describe("step-wise success plot", () => {
  it("renders a PNG of the plot's size", async () => {
    const png = PNG.sync.read(Buffer.from(await stepSuccessPng([{ label: "fold", successPct: [100, 50, 0] }])))
    expect(png.width).toBeGreaterThan(400)
    expect(png.height).toBeGreaterThan(200)
  })
})

describe("paper table", () => {
  it("lays out step-wise and final-success columns and marks unavailable metrics", () => {
    const table = buildPaperTable([
      {
        method: "VideoWorld 2",
        training: "Craft",
        tasks: [
          { task: "fold-plane", stepSuccessPct: [100, 75, 50], episodes: 4 },
          { task: "fold-boat", stepSuccessPct: [50, 25, 0], episodes: 4 },
          { task: "tower", stepSuccessPct: [50, 25], episodes: 4 }
        ],
        ssim: available(0.8123),
        lpips: unavailable("no model file given (set eval.lpipsModel)")
      }
    ])
    expect(table.columns).toEqual(["1", "2", "3", "tower", "SSIM", "LPIPS"])
    // folding pooled over plane and boat (4 episodes each), blocks report their final step
    expect(table.rows[0]!.values).toEqual([75, 50, 25, 25, 0.8123, null])
    const md = tableMarkdown(table)
    expect(md).toContain("| VideoWorld 2 | Craft | 75.0 | 50.0 | 25.0 | 25.0 | .812 | n/a |")
    expect(md).toContain("LPIPS unavailable — no model file given (set eval.lpipsModel)")
  })
})
