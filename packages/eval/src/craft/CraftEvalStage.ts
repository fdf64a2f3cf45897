/**
 * Stage `craft-eval` (CraftBench protocol on MiniCraft): for every test episode (unseen appearance), roll
 * out from its instruction and initial frame — AR codes → dLDM/VDM decode → last frame → next clip — and
 * score the video: step-wise success with the `craft-judge` classifier judge when the pipeline wires one
 * (the exact MiniCraft judge then reports beside it as a diagnostic, `craft_exact/...`), else with the exact
 * judge; the user's ONNX step classifier when given; SSIM and LPIPS against the ground truth. Writes the paper-layout table (markdown + JSON, with
 * the CALVIN results of `calvin-head`), side-by-side rollout GIFs and the step-wise success plot; logs
 * `craft/<task>/step_k`, `craft/ssim`, `craft/lpips` and the `lowfi/…`, `craft_exact/…`, `craft_classifier/…`
 * counterparts (the CALVIN numbers are calvin-head's metrics, not logged again here).
 * AR sampling defaults to temperature 1 with top-k 20: greedy decoding collapses onto a few codes.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { type ClipDecoder, loadArCheckpoint, type Rollout, rollout } from "@vw2/ar"
import { type ArtifactKind, ConfigField, defineStage, type InputArtifact, StageError, type StageContext } from "@vw2/core"
import { Dataset } from "@vw2/data"
import { describeBackend, Rng, selectBackend } from "@vw2/nn"
import { Effect, Schema } from "effect"
import { encodeInstruction } from "@vw2/ar"
import { type Availability, available, unavailable } from "../Availability.ts"
import type { CalvinReport } from "../calvin/CalvinHeadStage.ts"
import { sideBySideGif } from "../Gif.ts"
import { classifySteps, loadOnnxModel } from "../OnnxModel.ts"
import { buildPaperTable, tableMarkdown, type TableRow } from "../PaperTable.ts"
import { stepSuccessPng } from "../Plot.ts"
import { loadCraftJudge } from "../judge/CraftJudge.ts"
import { stepwiseSuccess } from "../StepwiseSuccess.ts"
import { fromUnitFloat, makeVideo, type RgbVideo } from "../Video.ts"
import { evaluateCraft, type TestEpisode } from "./CraftEvaluation.ts"
import { loadClipDecoder } from "./DldmDecoder.ts"
import { makeEpisodeJudge } from "./MiniCraftJudging.ts"

const { nonNegativeInt, nonNegativeNumber, positiveInt, withDefault } = ConfigField

export const CraftEvalConfig = Schema.Struct({
  /** the table row's labels */
  method: withDefault(Schema.String, "VideoWorld 2"),
  training: withDefault(Schema.String, "Craft"),
  /** test episodes per task (0 = all) */
  episodesPerTask: nonNegativeInt(0),
  /** AR sampling (temperature 0 = greedy, which collapses onto a few codes; topK 0 = no cut) */
  temperature: nonNegativeNumber(1),
  topK: nonNegativeInt(20),
  /** "reference": roll out to the ground truth's length (EOS ignored), so SSIM/LPIPS compare equal lengths;
   * "eos": stop when the AR predicts the task is done (or after maxClipsFactor × the reference's clips) */
  horizon: withDefault(Schema.Literals(["reference", "eos"]), "reference"),
  maxClipsFactor: positiveInt(2),
  /** the VDM sampler (authors: 35 Karras steps, CFG 7) */
  decoder: withDefault(Schema.Struct({ steps: positiveInt(35), cfg: nonNegativeNumber(7) }), {}),
  /** user-supplied ONNX models; without them the metric is reported unavailable */
  lpipsModel: Schema.optionalKey(Schema.String),
  stepClassifierModel: Schema.optionalKey(Schema.String),
  /** rollout GIFs to upload (first n test episodes) */
  gifs: nonNegativeInt(5),
  /** with a VDM: also roll out with the low-fi decoder alone (same AR, same seeds) as a second table row,
   * which separates what the VDM adds from what the codes carry */
  compareLowFi: withDefault(Schema.Boolean, true)
})
export type CraftEvalConfig = typeof CraftEvalConfig.Type

interface EvalInputs {
  readonly dataset: InputArtifact
  readonly dldm: InputArtifact
  readonly vdm?: InputArtifact
  readonly ar: InputArtifact
  readonly calvin?: InputArtifact
  /** the `craft-judge` checkpoint: when given, it judges step-wise success and the exact judge becomes a diagnostic */
  readonly judge?: InputArtifact
}

const supersampleOf = (dataset: Dataset): number | undefined =>
  (dataset.manifest.stats as { minicraft?: { supersample?: number } } | undefined)?.minicraft?.supersample

/** Completed prefix from per-frame "steps done" predictions: states 1..k reached in order. */
const prefixFromPredictions = (predicted: ReadonlyArray<number>, steps: number): number => {
  let reached = 0
  for (const p of predicted) if (p === reached + 1 && reached < steps) reached++
  return reached
}

const writeFile = (ctx: StageContext, relative: string, data: string | Uint8Array) => {
  const [output, ...rest] = relative.split("/")
  const file = path.join(ctx.outputDir(output!), ...rest)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, data)
  ctx.upload(relative)
}

export const runCraftEval = async (ctx: StageContext, config: CraftEvalConfig, inputs: EvalInputs): Promise<void> => {
  ctx.log(`tfjs backend: ${describeBackend(await selectBackend())}`)
  const dataset = Dataset.open(inputs.dataset.dir)
  const { model: ar, config: arConfig } = await loadArCheckpoint(inputs.ar.dir)
  const decoder = await loadClipDecoder(inputs.dldm.dir, inputs.vdm?.dir, { steps: config.decoder.steps, cfg: config.decoder.cfg, seed: ctx.seed })
  const lpips = await loadOnnxModel(config.lpipsModel, "craft-eval.lpipsModel")
  const classifier = await loadOnnxModel(config.stepClassifierModel, "craft-eval.stepClassifierModel")
  const craftJudge = inputs.judge === undefined ? undefined : await loadCraftJudge(inputs.judge.dir)
  try {
    if (ar.arch.codesPerClip !== decoder.dldm.geo.codesPerClip) {
      throw new Error(`the AR predicts ${ar.arch.codesPerClip} codes per clip, the dLDM decodes ${decoder.dldm.geo.codesPerClip}: were they trained on the same tokenizer?`)
    }
    const { height, width } = dataset
    const refs = dataset.episodes({ split: "test" })
    const perTask = new Map<string, number>()
    const chosen = refs.filter((r) => {
      const n = perTask.get(r.task) ?? 0
      perTask.set(r.task, n + 1)
      return config.episodesPerTask === 0 || n < config.episodesPerTask
    })
    if (chosen.length === 0) throw new Error(`${inputs.dataset.dir}: no test episodes`)
    ctx.log(`craft-eval: ${chosen.length} test episodes, decoder ${decoder.kind} (${decoder.framesPerClip} frames/clip), LPIPS ${lpips._tag}, judge ${craftJudge === undefined ? "exact (pixel matching)" : "craft-judge classifier (exact judge as diagnostic)"}`)
    if (craftJudge !== undefined && (craftJudge.height !== height || craftJudge.width !== width)) {
      throw new Error(`the craft judge was trained at ${craftJudge.height}×${craftJudge.width}, the dataset is ${height}×${width}: train craft-judge on this dataset`)
    }
    const judges = new Map<string, ReturnType<typeof makeEpisodeJudge>>()
    const episodes: Array<TestEpisode> = chosen.map((ref) => {
      const meta = dataset.meta(ref.id)
      const judge = makeEpisodeJudge({ task: ref.task, appearance: meta.appearance }, height, width, supersampleOf(dataset))
      judges.set(ref.id, judge)
      const frames = dataset.readFrames(ref.id, Array.from({ length: ref.length }, (_, t) => t))
      return { id: ref.id, task: ref.task, instruction: meta.instruction, steps: judge.steps, groundTruth: makeVideo(frames, ref.length, height, width) }
    })
    const clipStep = decoder.framesPerClip - 1
    const lowFi = decoder.kind === "vdm" && config.compareLowFi ? await loadClipDecoder(inputs.dldm.dir, undefined, { steps: 1, cfg: 0, seed: ctx.seed }) : undefined
    // progress counts episodes over both passes (decoder, then low-fi), so it never runs backwards
    const passes = lowFi === undefined ? 1 : 2
    const evaluateWith = async (clipDecoder: ClipDecoder, label: string, pass: number) => {
      const rollouts = new Map<string, Rollout>()
      const evaluation = await evaluateCraft({
        episodes,
        lpips,
        judge: (e, video) => (craftJudge === undefined ? judges.get(e.id)!.completedPrefix(video) : craftJudge.completedPrefix(e.task, video.data, video.frames)),
        ...(craftJudge === undefined ? {} : { diagnosticJudge: (e: TestEpisode, video: RgbVideo) => judges.get(e.id)!.completedPrefix(video) }),
        generate: async (e) => {
          const referenceClips = Math.max(1, Math.ceil((e.groundTruth.frames - 1) / clipStep))
          const initial = Float32Array.from(e.groundTruth.data.subarray(0, height * width * 3), (b) => b / 255)
          const r = await rollout({
            model: ar,
            decoder: clipDecoder,
            text: encodeInstruction(arConfig.vocabulary, e.instruction),
            initialFrame: initial,
            sampling: { temperature: config.temperature, topK: config.topK, useKvCache: true },
            rng: new Rng(ctx.seed * 7919 + rollouts.size), // the same AR draws for every decoder
            maxClips: config.horizon === "reference" ? referenceClips : referenceClips * config.maxClipsFactor,
            maxFrames: config.horizon === "reference" ? e.groundTruth.frames : Number.MAX_SAFE_INTEGER,
            stopOnEos: config.horizon === "eos"
          })
          rollouts.set(e.id, r)
          return fromUnitFloat(r.frames, r.frameCount, height, width)
        },
        onEpisode: (o, i) => {
          ctx.progress(pass * episodes.length + i + 1, passes * episodes.length, `${label} ${o.id}: ${o.completedPrefix}/${o.steps} steps, SSIM ${o.ssim.toFixed(3)}`)
          ctx.log(
            `${label} ${o.id}: judge ${o.completedPrefix}/${o.steps} (ground truth ${o.groundTruthPrefix}/${o.steps}), SSIM ${o.ssim.toFixed(3)}, ` +
              `${o.generatedFrames} frames, stopped by ${rollouts.get(o.id)?.stoppedBy}`
          )
        }
      })
      return { evaluation, rollouts }
    }
    const { evaluation: result, rollouts } = await evaluateWith(decoder, decoder.kind, 0)
    const lowFiResult = lowFi === undefined ? undefined : (await evaluateWith(lowFi, "low-fi", 1)).evaluation
    lowFi?.dispose()

    // the user's step classifier, when given: the paper's judge, as a second opinion on the same videos
    let classifierTasks: Availability<ReturnType<typeof stepwiseSuccess>> = classifier._tag === "available" ? available([]) : unavailable(classifier.reason)
    if (classifier._tag === "available") {
      const judged = []
      for (const o of result.outcomes) {
        judged.push({ episode: o.id, task: o.task, steps: o.steps, completedPrefix: prefixFromPredictions(await classifySteps(classifier.value, o.generated), o.steps) })
      }
      classifierTasks = available(stepwiseSuccess(judged))
    }

    const calvinFile = inputs.calvin === undefined ? undefined : path.join(inputs.calvin.dir, "calvin.json")
    const calvin = calvinFile !== undefined && fs.existsSync(calvinFile) ? (JSON.parse(fs.readFileSync(calvinFile, "utf8")) as CalvinReport) : undefined

    const metrics: Record<string, number> = {}
    for (const t of result.tasks) t.stepSuccessPct.forEach((p, k) => (metrics[`craft/${t.task}/step_${k + 1}`] = p))
    if (result.ssim._tag === "available") metrics["craft/ssim"] = result.ssim.value
    if (result.lpips._tag === "available") metrics["craft/lpips"] = result.lpips.value
    if (classifierTasks._tag === "available") for (const t of classifierTasks.value) t.stepSuccessPct.forEach((p, k) => (metrics[`craft_classifier/${t.task}/step_${k + 1}`] = p))
    if (lowFiResult !== undefined) {
      for (const t of lowFiResult.tasks) t.stepSuccessPct.forEach((p, k) => (metrics[`lowfi/craft/${t.task}/step_${k + 1}`] = p))
      if (lowFiResult.ssim._tag === "available") metrics["lowfi/ssim"] = lowFiResult.ssim.value
      if (lowFiResult.lpips._tag === "available") metrics["lowfi/lpips"] = lowFiResult.lpips.value
    }
    const finalStepMean = (tasks: ReadonlyArray<{ stepSuccessPct: ReadonlyArray<number> }>) => tasks.reduce((s, t) => s + t.stepSuccessPct[t.stepSuccessPct.length - 1]!, 0) / tasks.length
    const gtMean = finalStepMean(result.groundTruthTasks)
    metrics["craft/judge_on_ground_truth"] = gtMean
    if (result.diagnostic !== undefined) {
      for (const t of result.diagnostic.tasks) t.stepSuccessPct.forEach((p, k) => (metrics[`craft_exact/${t.task}/step_${k + 1}`] = p))
      metrics["craft_exact/judge_on_ground_truth"] = finalStepMean(result.diagnostic.groundTruthTasks)
    }
    ctx.metrics(metrics, 0)

    const rows: Array<TableRow> = [{ method: config.method, training: config.training, tasks: result.tasks, ssim: result.ssim, lpips: result.lpips }]
    if (lowFiResult !== undefined) {
      rows.push({ method: `${config.method}, low-fi decoder only`, training: config.training, tasks: lowFiResult.tasks, ssim: lowFiResult.ssim, lpips: lowFiResult.lpips })
    }
    const table = buildPaperTable(rows)
    const calvinLine =
      calvin === undefined
        ? "CALVIN: not part of this pipeline"
        : `CALVIN (MiniCALVIN, ${calvin.chains} chains): success at 1..5 = ${calvin.successRates.map((r) => (100 * r).toFixed(1)).join(" / ")}; Avg. Len. ${calvin.avgLen.toFixed(2)}`
    const classifierLine =
      classifierTasks._tag === "available"
        ? `step classifier (${config.stepClassifierModel}): ${classifierTasks.value.map((t) => `${t.task} ${t.stepSuccessPct.map((p) => p.toFixed(0)).join("/")}`).join("; ")}`
        : `step classifier: unavailable — ${classifierTasks.reason}`
    const markdown = [
      `# CraftBench (MiniCraft, unseen test appearances) — ${config.method}, ${config.training}`,
      "",
      tableMarkdown(table),
      `judge (${craftJudge === undefined ? "exact pixel judge" : "craft-judge classifier"}) on the ground-truth videos: ${gtMean.toFixed(1)} % final-step success (100 % expected)`,
      ...(result.diagnostic === undefined
        ? []
        : [
            `exact pixel judge (diagnostic): ${result.diagnostic.tasks.map((t) => `${t.task} ${t.stepSuccessPct.map((p) => p.toFixed(0)).join("/")}`).join("; ")}; on the ground truth ${finalStepMean(result.diagnostic.groundTruthTasks).toFixed(1)} %`
          ]),
      classifierLine,
      calvinLine,
      "",
      "| episode | task | judge steps | exact judge steps | SSIM | LPIPS | frames | stopped by |",
      "|---|---|---|---|---|---|---|---|",
      ...result.outcomes.map(
        (o) =>
          `| ${o.id} | ${o.task} | ${o.completedPrefix}/${o.steps} | ${o.diagnosticPrefix === undefined ? "—" : `${o.diagnosticPrefix}/${o.steps}`} | ${o.ssim.toFixed(3)} | ${o.lpips === undefined ? "n/a" : o.lpips.toFixed(3)} | ${o.generatedFrames} | ${rollouts.get(o.id)?.stoppedBy} |`
      ),
      ...(lowFiResult === undefined
        ? []
        : ["", `low-fi decoder only: ${lowFiResult.outcomes.map((o) => `${o.id} ${o.completedPrefix}/${o.steps}, SSIM ${o.ssim.toFixed(3)}`).join("; ")}`]),
      ""
    ].join("\n")
    writeFile(ctx, "report/table.md", markdown)
    writeFile(
      ctx,
      "report/table.json",
      JSON.stringify(
        {
          ...table,
          detail: undefined,
          tasks: result.tasks,
          judge: craftJudge === undefined ? "exact" : "craft-judge",
          groundTruthJudge: result.groundTruthTasks,
          exactJudge: result.diagnostic ?? null,
          classifier: classifierTasks,
          calvin: calvin ?? null,
          episodes: result.outcomes.map(({ generated: _generated, ...o }) => ({ ...o, stoppedBy: rollouts.get(o.id)?.stoppedBy, clips: rollouts.get(o.id)?.clipCodes.length })),
          lowFiEpisodes: lowFiResult?.outcomes.map(({ generated: _generated, ...o }) => o) ?? null
        },
        null,
        2
      ) + "\n"
    )
    const series = [
      ...result.tasks.map((t) => ({ label: t.task, successPct: t.stepSuccessPct })),
      ...(lowFiResult?.tasks.map((t) => ({ label: `${t.task} (low-fi only)`, successPct: t.stepSuccessPct })) ?? [])
    ]
    writeFile(ctx, "report/stepwise-success.png", await stepSuccessPng(series, `${config.method} (${config.training}): step-wise success`))
    // GIF panels: ground truth | generated (| low-fi decoder only)
    for (const [i, o] of result.outcomes.slice(0, config.gifs).entries()) {
      const episode = episodes.find((e) => e.id === o.id)!
      const lowFiVideo = lowFiResult?.outcomes[i]?.generated
      writeFile(ctx, `report/rollouts/${o.id}.gif`, sideBySideGif(lowFiVideo === undefined ? [episode.groundTruth, o.generated] : [episode.groundTruth, o.generated, lowFiVideo]))
    }
    ctx.log(`\n${tableMarkdown(table)}${calvinLine}`)
  } finally {
    ar.dispose()
    decoder.dispose()
    if (lpips._tag === "available") await lpips.value.release()
    if (classifier._tag === "available") await classifier.value.release()
    craftJudge?.dispose()
  }
}

const fail = (cause: unknown) => new StageError({ stage: "craft-eval", message: cause instanceof Error ? cause.message : String(cause), cause })

/** One craft-eval stage per wiring: the inputs present decide the decoder (vdm), the table's CALVIN row and the judge. */
const craftEvalStage = <const I extends Readonly<Record<string, ArtifactKind>>>(inputs: I) =>
  defineStage({
    name: "craft-eval",
    headline: ["craft/ssim", "craft/judge_on_ground_truth"],
    version: "2",
    config: CraftEvalConfig,
    inputs,
    outputs: { report: "eval-report" },
    run: (ctx, config, resolved) => Effect.tryPromise({ try: () => runCraftEval(ctx, config, resolved as unknown as EvalInputs), catch: fail })
  })

const main = { dataset: "video-dataset", dldm: "dldm-checkpoint", vdm: "vdm-checkpoint", ar: "ar-checkpoint", calvin: "eval-report" } as const
const lowFi = { dataset: "video-dataset", dldm: "dldm-checkpoint", ar: "ar-checkpoint", calvin: "eval-report" } as const
const noCalvin = { dataset: "video-dataset", dldm: "dldm-checkpoint", vdm: "vdm-checkpoint", ar: "ar-checkpoint" } as const
const lowFiNoCalvin = { dataset: "video-dataset", dldm: "dldm-checkpoint", ar: "ar-checkpoint" } as const
const judged = { judge: "judge-checkpoint" } as const

/** CraftBench evaluation decoding with the VDM, with the CALVIN report of `calvin-head` in the table (the main DAG). */
export const craftEval = craftEvalStage(main)

/** The same evaluation for pipelines without a VDM (VideoWorld 1-like baseline): clips decoded by the low-fi decoder. */
export const craftEvalLowFi = craftEvalStage(lowFi)

/** Craft-only evaluation (ablation and baseline branches, which skip CALVIN), decoding with the VDM. */
export const craftEvalNoCalvin = craftEvalStage(noCalvin)

/** Craft-only evaluation without a VDM (low-fi decoder). */
export const craftEvalLowFiNoCalvin = craftEvalStage(lowFiNoCalvin)

/** The four evaluations judged by the `craft-judge` classifier (input `judge`; the exact judge reports as `craft_exact/...`). */
export const craftEvalJudged = craftEvalStage({ ...main, ...judged })
export const craftEvalLowFiJudged = craftEvalStage({ ...lowFi, ...judged })
export const craftEvalNoCalvinJudged = craftEvalStage({ ...noCalvin, ...judged })
export const craftEvalLowFiNoCalvinJudged = craftEvalStage({ ...lowFiNoCalvin, ...judged })
