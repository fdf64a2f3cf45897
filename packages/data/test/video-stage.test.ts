import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { readManifest } from "../src/dataset/Manifest.ts"
import { defaultMiniCraftConfig, generateMiniCraft } from "../src/minicraft/Generate.ts"
import { importVideoStage } from "../src/stages/import-video.ts"
import { ffmpegAvailable } from "../src/video/Ffmpeg.ts"
import { exportVideoFolder } from "../src/video/VideoFolder.ts"
import { contextIn } from "./support/stageContext.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "video-stage-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const decode = Schema.decodeUnknownSync(importVideoStage.config)

describe.skipIf(!ffmpegAvailable())("import-video stage", () => {
  it("imports a video folder given by config.path into a video-dataset", async () => {
    const dataset = path.join(tmp, "minicraft")
    generateMiniCraft(dataset, { ...defaultMiniCraftConfig, tasks: ["blocks-human"], episodesPerTask: { train: 1, test: 1 }, framesPerStep: 6, idleFrames: 2 })
    const folder = path.join(tmp, "videos")
    await exportVideoFolder(dataset, folder, { container: "mp4", quality: "lossless" })
    const root = path.join(tmp, "run")
    const { ctx, uploads } = contextIn(root, "craftbench")
    await Effect.runPromise(importVideoStage.run(ctx, decode({ path: folder, name: "craft" }), {}))
    const manifest = readManifest(path.join(root, "dataset"))
    expect(manifest).toMatchObject({ name: "craft", width: 32, height: 32, fps: 8, splits: { train: ["blocks-human-train-000"], test: ["blocks-human-test-000"] } })
    expect(uploads.sort()).toEqual(["dataset/contact-sheet.png", "dataset/stats.json"])
  })

  it("names config.path when the folder does not exist", async () => {
    const { ctx } = contextIn(path.join(tmp, "run2"), "craftbench")
    const exit = await Effect.runPromiseExit(importVideoStage.run(ctx, decode({ path: path.join(tmp, "nope") }), {}))
    expect(String(exit)).toMatch(/path: .*nope is not a directory/)
    expect(() => decode({})).toThrow(/path/)
  })
})
