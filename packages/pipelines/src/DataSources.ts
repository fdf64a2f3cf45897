/**
 * Where the pipeline's data comes from, as config: the procedural benchmarks (mini and CI) or the real
 * datasets in their own formats (paper scale). Each source stage delegates to @vw2/data's stage for that
 * source, so the DAG has one shape and `craft-data.source` / `calvin-data.source` pick the data.
 */
import { defineStage, type StageContext } from "@vw2/core"
import {
  GenerateMiniCalvinConfig,
  generateMiniCalvinStage,
  GenerateMiniCraftConfig,
  generateMiniCraftStage,
  ImportCalvinConfig,
  importCalvinStage,
  ImportOpenXConfig,
  importOpenXStage,
  ImportVideoConfig,
  importVideoStage
} from "@vw2/data"
import { Effect, Schema } from "effect"

const withoutSource = <C extends { readonly source: string }>(config: C): Omit<C, "source"> => {
  const { source: _source, ...rest } = config
  return rest
}

/** Craft videos: MiniCraft (generated) or a video folder with step annotations (Video-CraftBench). */
export const CraftSourceConfig = Schema.Union([
  Schema.Struct({ source: Schema.Literal("minicraft"), ...GenerateMiniCraftConfig.fields }),
  Schema.Struct({ source: Schema.Literal("video-folder"), ...ImportVideoConfig.fields })
])

export const craftSource = defineStage({
  name: "craft-source",
  version: "2", // MiniCraft v2 (generate-minicraft 2): objects that dominate a step's change, test geometry inside train's
  config: CraftSourceConfig,
  inputs: {},
  outputs: { dataset: "video-dataset" },
  seeded: false,
  run: (ctx, config) =>
    config.source === "minicraft" ? generateMiniCraftStage.run(ctx, withoutSource(config), {}) : importVideoStage.run(ctx, withoutSource(config), {})
})

/** A context whose output `dataset` lands in `renamed` (so two imports can fill two outputs). */
const renameOutput = (ctx: StageContext, renamed: string): StageContext => ({
  ...ctx,
  outputDir: (name) => ctx.outputDir(name === "dataset" ? renamed : name),
  upload: (relative) => ctx.upload(relative.startsWith("dataset/") ? `${renamed}/${relative.slice("dataset/".length)}` : relative)
})

/** Robot data: MiniCALVIN demos + its Open-X stand-in, or real CALVIN + Open-X (RLDS) shards. */
export const CalvinSourceConfig = Schema.Union([
  Schema.Struct({ source: Schema.Literal("minicalvin"), ...GenerateMiniCalvinConfig.fields }),
  Schema.Struct({ source: Schema.Literal("calvin"), calvin: ImportCalvinConfig, openx: ImportOpenXConfig })
])

export const calvinSource = defineStage({
  name: "calvin-source",
  version: "1",
  config: CalvinSourceConfig,
  inputs: {},
  outputs: { dataset: "robot-dataset", openx: "robot-dataset" },
  seeded: false,
  run: (ctx, config) =>
    config.source === "minicalvin"
      ? generateMiniCalvinStage.run(ctx, withoutSource(config), {})
      : Effect.andThen(importCalvinStage.run(ctx, config.calvin, {}), importOpenXStage.run(renameOutput(ctx, "openx"), config.openx, {}))
})
