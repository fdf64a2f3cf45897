import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { readManifest } from "../src/dataset/Manifest.ts"
import { generateMiniCraftStage } from "../src/stages/generate-minicraft.ts"
import { contextIn } from "./support/stageContext.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "minicraft-stage-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const decode = Schema.decodeUnknownSync(generateMiniCraftStage.config)

describe("generate-minicraft stage", () => {
  it("has defaults for every field and rejects bad values with the field's path", () => {
    expect(decode({})).toMatchObject({ height: 32, width: 32, trainEpisodesPerTask: 4, testEpisodesPerTask: 2, framesPerStep: 12, seed: 0 })
    expect(decode({}).tasks).toHaveLength(5)
    expect(() => decode({ width: 200 })).toThrow(/width/)
    expect(() => decode({ tasks: ["fold-crane"] })).toThrow(/tasks/)
  })

  it("writes a video-dataset, uploads its statistics and contact sheet, reports progress", async () => {
    const root = path.join(tmp, "run")
    const { ctx, uploads, metrics, progress } = contextIn(root)
    const config = decode({ tasks: ["fold-plane", "blocks-horse"], trainEpisodesPerTask: 2, testEpisodesPerTask: 1, framesPerStep: 6, idleFrames: 2 })
    await Effect.runPromise(generateMiniCraftStage.run(ctx, config, {}))
    const manifest = readManifest(path.join(root, "dataset"))
    expect(manifest.splits["train"]).toHaveLength(4)
    expect(manifest.splits["test"]).toHaveLength(2)
    expect(uploads.sort()).toEqual(["dataset/contact-sheet.png", "dataset/stats.json"])
    for (const u of uploads) expect(fs.statSync(path.join(root, u)).size).toBeGreaterThan(100)
    expect(JSON.parse(fs.readFileSync(path.join(root, "dataset/stats.json"), "utf8"))).toEqual(manifest.stats)
    expect(metrics[0]).toMatchObject({ "minicraft/episodes": 6, "minicraft/frames": 6 * (4 + 7 * 6) })
    expect(progress).toEqual([1, 2, 3, 4, 5, 6])
  })

  it("fails with a StageError when the output already holds a dataset", async () => {
    const root = path.join(tmp, "run")
    const { ctx } = contextIn(root)
    const exit = await Effect.runPromiseExit(generateMiniCraftStage.run(ctx, decode({ tasks: ["fold-plane"] }), {}))
    expect(exit._tag).toBe("Failure")
    expect(String(exit)).toMatch(/StageError[\s\S]*already holds a finished dataset/)
  })
})
