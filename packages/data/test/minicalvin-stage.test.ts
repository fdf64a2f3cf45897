import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { type Batch, mixtureBatches } from "../src/dataset/Batches.ts"
import { DatasetClips } from "../src/dataset/Clips.ts"
import { Dataset } from "../src/dataset/Dataset.ts"
import { findTfRecordShards } from "../src/formats/rlds.ts"
import { generateMiniCalvinStage } from "../src/stages/generate-minicalvin.ts"
import { importCalvinStage } from "../src/stages/import-calvin.ts"
import { importOpenXStage } from "../src/stages/import-openx.ts"
import { contextIn } from "./support/stageContext.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "minicalvin-stage-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe("generate-minicalvin / import-openx / import-calvin stages", () => {
  const generated = path.join(tmp, "gen")

  it("has defaults and rejects bad values with the field's path", () => {
    const decode = Schema.decodeUnknownSync(generateMiniCalvinStage.config)
    expect(decode({})).toMatchObject({ trainSequences: 12, testSequences: 4, size: 32, chainLength: 5, trainVariants: ["A", "B", "C"], testVariants: ["D"], calvinExport: false })
    expect(decode({}).openx.embodiments).toHaveLength(3)
    expect(() => decode({ size: 8 })).toThrow(/size/)
    expect(() => decode({ testVariants: ["E"] })).toThrow(/testVariants/)
    expect(() => decode({ openx: { embodiments: ["humanoid"] } })).toThrow(/openx[\s\S]*embodiments/)
    expect(() => Schema.decodeUnknownSync(importOpenXStage.config)({})).toThrow(/path/)
  })

  it("generates demonstrations, a multi-embodiment Open-X stand-in that mixes with them, and a CALVIN export", async () => {
    const { ctx, uploads, metrics } = contextIn(generated)
    const config = Schema.decodeUnknownSync(generateMiniCalvinStage.config)({
      trainSequences: 2, testSequences: 1, chainLength: 2, size: 16, calvinExport: true, openx: { sequences: 1 }
    })
    await Effect.runPromise(generateMiniCalvinStage.run(ctx, config, {}))
    const dataset = Dataset.open(path.join(generated, "dataset"))
    expect(dataset.episodes({ split: "train" })).toHaveLength(4)
    expect(dataset.episodes({ split: "test" })).toHaveLength(2)
    const openx = Dataset.open(path.join(generated, "openx"))
    expect(openx.manifest.tasks).toEqual(["minicalvin_closeup", "minicalvin_static", "minicalvin_wrist"])
    expect(openx.episodes()).toHaveLength(3 * 2)
    expect(findTfRecordShards(path.join(generated, "openx", "rlds"))).toHaveLength(3)
    expect(uploads.sort()).toEqual(["dataset/contact-sheet.png", "dataset/stats.json"])
    expect(metrics[0]).toMatchObject({ "minicalvin/episodes": 6, "minicalvin/openx_episodes": 6 })
    // the two outputs co-train: a 50/50 mixture of their clips
    const spec = { length: 4 }
    const batch: Batch = mixtureBatches([
      { source: new DatasetClips(dataset, spec), weight: 1 },
      { source: new DatasetClips(openx, spec), weight: 1 }
    ], { batchSize: 8, seed: 0, batches: 1 }).next().value!
    expect(batch.shape).toEqual([8, 4, 16, 16, 3])
    expect(batch.actionMask!.every((m) => m === 1)).toBe(true)
    expect(fs.existsSync(path.join(generated, "dataset", "calvin", "training", "ep_start_end_ids.npy"))).toBe(true)
  })

  it("import-openx and import-calvin read what generate-minicalvin exported, and name a missing path", async () => {
    const rlds = contextIn(path.join(tmp, "openx"), "openx")
    const openxConfig = Schema.decodeUnknownSync(importOpenXStage.config)({ path: path.join(generated, "openx", "rlds"), height: 16, width: 16, testFraction: 0 })
    await Effect.runPromise(importOpenXStage.run(rlds.ctx, openxConfig, {}))
    expect(Dataset.open(path.join(tmp, "openx", "dataset")).episodes({ split: "train" })).toHaveLength(6)

    const calvin = contextIn(path.join(tmp, "calvin"), "calvin")
    const calvinConfig = Schema.decodeUnknownSync(importCalvinStage.config)({ path: path.join(generated, "dataset", "calvin"), height: 16, width: 16 })
    await Effect.runPromise(importCalvinStage.run(calvin.ctx, calvinConfig, {}))
    const imported = Dataset.open(path.join(tmp, "calvin", "dataset"))
    const original = Dataset.open(path.join(generated, "dataset"))
    expect(imported.episodes().map((e) => [e.split, e.task, e.length])).toEqual(original.episodes().map((e) => [e.split, e.task, e.length]))

    const missing = contextIn(path.join(tmp, "missing"), "robot_data")
    const exit = await Effect.runPromiseExit(importCalvinStage.run(missing.ctx, Schema.decodeUnknownSync(importCalvinStage.config)({ path: "/nonexistent/calvin" }), {}))
    expect(String(exit)).toMatch(/robot_data\.path: \/nonexistent\/calvin does not exist/)
  })
})
