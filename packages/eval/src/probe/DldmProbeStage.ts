/**
 * Stage `dldm-probe` (issue 13 item 6; docs/paper.md "What the paper leaves open"): diagnostics of a dLDM
 * checkpoint on the craft dataset's held-out test episodes — own vs swapped vs repeat reconstruction, code
 * usage, linear probes to step and phase, and (with a `craft-judge` checkpoint) judged oracle-code and
 * random-code rollouts. Logs `probe/...` metrics; writes report/probe.json and report/probe.md.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { ConfigField, defineStage, StageError, type StageContext } from "@vw2/core"
import { Dataset } from "@vw2/data"
import { loadDldm } from "@vw2/dldm"
import { describeBackend, selectBackend } from "@vw2/nn"
import { Effect, Schema } from "effect"
import { loadCraftJudge } from "../judge/CraftJudge.ts"
import { probeDldm, probeMarkdown, probeMetrics } from "./DldmProbe.ts"

const { nonNegativeInt, positiveInt, withDefault } = ConfigField

export const DldmProbeConfig = Schema.Struct({
  trainSplit: withDefault(Schema.String, "train"),
  testSplit: withDefault(Schema.String, "test"),
  /** frames between clip starts (0 = 1 + temporalCompression: dense, overlapping clips) */
  clipStride: nonNegativeInt(0),
  /** fit-set clips for the linear probes, evenly spread over the train split */
  maxTrainClips: positiveInt(2000),
  probeIterations: positiveInt(300),
  /** judged rollouts: test episodes per task (0 = all) */
  rolloutEpisodesPerTask: nonNegativeInt(0)
})
export type DldmProbeConfig = typeof DldmProbeConfig.Type

export const runDldmProbe = async (
  ctx: StageContext,
  config: DldmProbeConfig,
  inputs: { readonly dataset: string; readonly dldm: string; readonly judge?: string }
): Promise<void> => {
  ctx.log(`tfjs backend: ${describeBackend(await selectBackend())}`)
  const dataset = Dataset.open(inputs.dataset)
  const { model } = await loadDldm(inputs.dldm)
  const judge = inputs.judge === undefined ? undefined : await loadCraftJudge(inputs.judge)
  try {
    const t0 = performance.now()
    const result = probeDldm(
      model,
      dataset,
      judge,
      {
        trainSplit: config.trainSplit,
        testSplit: config.testSplit,
        clipStride: config.clipStride === 0 ? 1 + model.config.temporalCompression : config.clipStride,
        maxTrainClips: config.maxTrainClips,
        probeIterations: config.probeIterations,
        rolloutEpisodesPerTask: config.rolloutEpisodesPerTask,
        seed: ctx.seed
      },
      ctx.log
    )
    ctx.metrics(probeMetrics(result), 0)
    const markdown = probeMarkdown(result)
    const dir = ctx.outputDir("report")
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, "probe.json"), JSON.stringify(result, null, 2) + "\n")
    fs.writeFileSync(path.join(dir, "probe.md"), markdown)
    ctx.upload("report/probe.json")
    ctx.upload("report/probe.md")
    ctx.log(`\n${markdown}`)
    ctx.log(`dldm-probe: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  } finally {
    model.dispose()
    judge?.dispose()
  }
}

const fail = (cause: unknown) => new StageError({ stage: "dldm-probe", message: cause instanceof Error ? cause.message : String(cause), cause })

/** dldm-probe with judged rollouts (the `judge` output of `craft-judge`). */
export const dldmProbe = defineStage({
  name: "dldm-probe",
  headline: ["probe/teacher_forced/swapped_over_own_pct", "probe/step/over_chance", "probe/codes/perplexity", "probe/rollout/oracle/step_1"],
  version: "1",
  config: DldmProbeConfig,
  inputs: { dataset: "video-dataset", dldm: "dldm-checkpoint", judge: "judge-checkpoint" },
  outputs: { report: "eval-report" },
  run: (ctx, config, inputs) =>
    Effect.tryPromise({ try: () => runDldmProbe(ctx, config, { dataset: inputs.dataset.dir, dldm: inputs.dldm.dir, judge: inputs.judge.dir }), catch: fail })
})

/** dldm-probe without a judge (reconstruction, usage and linear probes only). */
export const dldmProbeNoJudge = defineStage({
  name: "dldm-probe",
  headline: ["probe/teacher_forced/swapped_over_own_pct", "probe/step/over_chance", "probe/codes/perplexity", "probe/rollout/oracle/step_1"],
  version: "1",
  config: DldmProbeConfig,
  inputs: { dataset: "video-dataset", dldm: "dldm-checkpoint" },
  outputs: { report: "eval-report" },
  run: (ctx, config, inputs) => Effect.tryPromise({ try: () => runDldmProbe(ctx, config, { dataset: inputs.dataset.dir, dldm: inputs.dldm.dir }), catch: fail })
})
