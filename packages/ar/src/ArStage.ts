/**
 * Stage `ar`: trains the autoregressive transformer on the dLDM's codes of the training split.
 * Input "code-dataset" (tokenize), output "ar-checkpoint".
 */
import { ConfigField, defineStage, StageError } from "@vw2/core"
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ArModelConfig, type ArArchitecture } from "./ArConfig.ts"
import { saveArCheckpoint } from "./ArCheckpoint.ts"
import { ArTransformer } from "./ArTransformer.ts"
import { clipExamples, makeBatch } from "./Batches.ts"
import { readCodeDataset } from "./CodeDataset.ts"
import { teacherForcedReport } from "./Evaluate.ts"
import { buildVocabulary } from "./InstructionTokenizer.ts"
import { AdamW, describeBackend, Init, resumableRng, Rng, runTraining, selectBackend, warmupCosine } from "./internal/nn.ts"
import { batchLoss } from "./Train.ts"

const { nonNegativeInt, nonNegativeNumber, positiveInt, positiveNumber, withDefault } = ConfigField

/**
 * How instructions become tokens. `vocab`: a word vocabulary built from the training data (mini scale).
 * `pretrained`: the text encoder the paper-scale preset names (Cosmos AR conditions on T5-XXL); declared so
 * paper configs are complete, rejected at run time by this pure-TS build, which has no T5 runtime.
 */
export const TextEncoderConfig = Schema.Union([
  Schema.Struct({ kind: Schema.Literal("vocab"), maxTokens: positiveInt(12) }),
  Schema.Struct({ kind: Schema.Literal("pretrained"), model: Schema.String, maxTokens: positiveInt(512) })
])

export const ArTrainConfig = Schema.Struct({
  steps: positiveInt(300),
  batchSize: positiveInt(16),
  /** paper: AdamW lr 3e-4, wd 0.05, betas (0.9, 0.98) */
  lr: positiveNumber(3e-4),
  weightDecay: nonNegativeNumber(0.05),
  beta1: positiveNumber(0.9),
  beta2: positiveNumber(0.98),
  warmupSteps: nonNegativeInt(20),
  clipNorm: positiveNumber(1),
  /** log the loss every this many steps */
  logEvery: positiveInt(10)
})

/** Teacher-forced top-1 / cross-entropy on held-out clips vs the unigram baseline (Evaluate.ts). */
export const ArEvalConfig = Schema.Struct({
  /** the split scored (the dLDM tokenized it too); none of its clips is trained on */
  split: withDefault(Schema.String, "test"),
  /** also score every this many steps (0 = at the end only) */
  every: nonNegativeInt(0)
})

export const ArStageConfig = Schema.Struct({
  model: withDefault(ArModelConfig, {}),
  text: withDefault(TextEncoderConfig, { kind: "vocab" }),
  train: withDefault(ArTrainConfig, {}),
  eval: withDefault(ArEvalConfig, {})
})
export type ArStageConfig = typeof ArStageConfig.Type

export const ar = defineStage({
  name: "ar",
  headline: ["ar/heldout/top1_over_unigram", "ar/heldout/top1", "ar/loss"],
  version: "2",
  config: ArStageConfig,
  inputs: { codes: "code-dataset" },
  outputs: { checkpoint: "ar-checkpoint" },
  resources: () => ({ cpus: 1 }),
  run: (ctx, config, inputs) =>
    Effect.tryPromise({
      try: async () => {
        if (config.text.kind === "pretrained") {
          throw new Error(`ar.text: the pretrained text encoder ${config.text.model} is declared for paper scale; this build has no runtime for it (use ar.text.kind = "vocab")`)
        }
        ctx.log(`tfjs backend: ${describeBackend(await selectBackend())}`)
        const data = readCodeDataset(inputs.codes.dir, { split: "train" })
        if (data.episodes.length === 0) throw new Error(`${inputs.codes.dir}: no training episodes`)
        const vocab = buildVocabulary(data.episodes.map((e) => e.instruction), config.text.maxTokens)
        const arch: ArArchitecture = {
          ...config.model,
          codeVocab: data.info.codeVocab,
          codesPerClip: data.info.transitionsPerClip * data.info.queries,
          textVocab: vocab.words.length,
          maxTextTokens: vocab.maxTokens,
          height: data.info.height,
          width: data.info.width
        }
        const examples = clipExamples(data)
        const heldOutData = readCodeDataset(inputs.codes.dir, { split: config.eval.split })
        const heldOut = { data: heldOutData, examples: clipExamples(heldOutData) }
        if (examples.length === 0) throw new Error(`${inputs.codes.dir}: the training episodes have no clips (are they shorter than the dLDM's clip length ${data.info.clipLength}?)`)
        ctx.log(`ar: ${data.episodes.length} episodes, ${examples.length} clips, vocabulary ${vocab.words.length} words, ${arch.codesPerClip} codes/clip`)
        const model = new ArTransformer(Init.seeded(ctx.seed), arch)
        const { train } = config
        const optimizer = new AdamW({ lr: train.lr, beta1: train.beta1, beta2: train.beta2, weightDecay: train.weightDecay })
        const schedule = warmupCosine({ peakLr: train.lr, warmupSteps: train.warmupSteps, totalSteps: train.steps })
        const rng = new Rng(ctx.seed ^ 0x5eed)
        const evaluate = (step: number) => {
          if (heldOut.examples.length === 0) return undefined
          const r = teacherForcedReport(model, vocab, { data, examples }, heldOut)
          ctx.metrics(
            {
              "ar/heldout/top1": r.top1,
              "ar/heldout/unigram_top1": r.unigramTop1,
              "ar/heldout/top1_over_unigram": r.unigramTop1 > 0 ? r.top1 / r.unigramTop1 : 0,
              "ar/heldout/nll": r.nll,
              "ar/heldout/unigram_nll": r.unigramNll
            },
            step
          )
          return r
        }
        try {
          const result = await runTraining({
            ctx,
            name: "ar",
            steps: train.steps,
            modules: { model },
            groups: [{ variables: model.trainableVariables(), optimizer }],
            schedule,
            clipNorm: train.clipNorm,
            state: { rng: resumableRng(rng) },
            metricsEvery: train.logEvery,
            evaluate: { every: config.eval.every, run: (step) => void evaluate(step) },
            progress: { message: (r) => `loss ${r.loss.toFixed(3)}` },
            step: () => {
              const picked = Array.from({ length: Math.min(train.batchSize, examples.length) }, () => examples[rng.int(examples.length)]!)
              const batch = makeBatch(picked, data, arch, vocab)
              return { loss: () => batchLoss(model, batch) }
            }
          })
          if (result.status === "paused") return
          const report = evaluate(train.steps)
          if (report === undefined) ctx.log(`ar: no "${config.eval.split}" clips to evaluate on`)
          else ctx.log(`ar: held-out (${config.eval.split}) teacher-forced top-1 ${report.top1.toFixed(3)} vs unigram ${report.unigramTop1.toFixed(3)}; nll ${report.nll.toFixed(3)} vs ${report.unigramNll.toFixed(3)}`)
          const dir = ctx.outputDir("checkpoint")
          await saveArCheckpoint(dir, model, { vocabulary: vocab, codes: data.info })
          if (report !== undefined) fs.writeFileSync(path.join(dir, "heldout.json"), JSON.stringify({ split: config.eval.split, ...report }, null, 2))
        } finally {
          optimizer.dispose()
          model.dispose()
        }
      },
      catch: (cause) => new StageError({ stage: "ar", message: cause instanceof Error ? cause.message : String(cause), cause })
    })
})
