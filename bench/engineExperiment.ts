/**
 * No-op stages for bench/engine.ts: a chain of `depth` steps whose work is nothing but writing one small
 * file, so wall time is engine overhead (planning, hashing, store, executor, worker start-up, tracking).
 */
import { defineExperiment, definePipeline, defineStage } from "@vw2/core"
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

const head = defineStage({
  name: "noop-head",
  version: "1",
  config: Schema.Struct({ i: Schema.Int, run: Schema.String }),
  inputs: {},
  outputs: { out: "noop" },
  run: (ctx, config) => Effect.sync(() => fs.writeFileSync(path.join(ctx.outputDir("out"), "v.json"), JSON.stringify(config)))
})

const link = defineStage({
  name: "noop-link",
  version: "1",
  config: Schema.Struct({ k: Schema.Int }),
  inputs: { in: "noop" },
  outputs: { out: "noop" },
  run: (ctx, _config, inputs) => Effect.sync(() => fs.copyFileSync(path.join(inputs.in.dir, "v.json"), path.join(ctx.outputDir("out"), "v.json")))
})

export const noopPipeline = definePipeline()
  .step("s0", head, {})
  .step("s1", link, { in: "s0.out" })
  .step("s2", link, { in: "s1.out" })
  .step("s3", link, { in: "s2.out" })
  .step("s4", link, { in: "s3.out" })

export const trialsFromEnv = Number(process.env.VW2_BENCH_TRIALS ?? "4")

export default defineExperiment({
  name: "bench-noop",
  pipeline: noopPipeline,
  config: { s0: { i: 0, run: process.env.VW2_BENCH_RUN ?? "x" }, s1: { k: 1 }, s2: { k: 2 }, s3: { k: 3 }, s4: { k: 4 } },
  sweep: { grid: { "s0.i": Array.from({ length: trialsFromEnv }, (_, i) => i) } }
})
