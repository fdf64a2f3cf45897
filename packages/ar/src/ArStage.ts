/**
 * Stage `ar`: trains the autoregressive transformer on the dLDM's codes of the training split.
 * Input "code-dataset" (tokenize), output "ar-checkpoint".
 */
import { ConfigField, defineStage, StageError } from "@vw2/core"
import { Effect, Schema } from "effect"
import { ArModelConfig, maxStreamLength, type ArArchitecture } from "./ArConfig.ts"
import { saveArCheckpoint } from "./ArCheckpoint.ts"
import { ArTransformer } from "./ArTransformer.ts"
import { type CodeDataset, type CodedEpisode, readCodeDataset, startFrame } from "./CodeDataset.ts"
import { streamExample } from "./CodeStream.ts"
import { buildVocabulary, encodeInstruction, type InstructionVocabulary } from "./InstructionTokenizer.ts"
import { AdamW, describeBackend, Init, Rng, selectBackend, trainStep, warmupCosine } from "./internal/nn.ts"
import { type ArBatch, batchLoss } from "./Train.ts"

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

export const ArStageConfig = Schema.Struct({
  model: withDefault(ArModelConfig, {}),
  text: withDefault(TextEncoderConfig, { kind: "vocab" }),
  train: withDefault(ArTrainConfig, {})
})
export type ArStageConfig = typeof ArStageConfig.Type

interface Example {
  readonly episode: CodedEpisode
  readonly clip: number
}

const makeBatch = (examples: ReadonlyArray<Example>, data: CodeDataset, arch: ArArchitecture, vocab: InstructionVocabulary): ArBatch => {
  const length = maxStreamLength(arch) - 1
  const frameSize = arch.height * arch.width * 3
  const text = new Int32Array(examples.length * arch.maxTextTokens)
  const frames = new Float32Array(examples.length * frameSize)
  const stream = new Int32Array(examples.length * length)
  const targets = new Int32Array(examples.length * length)
  examples.forEach(({ episode, clip }, b) => {
    text.set(encodeInstruction(vocab, episode.instruction), b * arch.maxTextTokens)
    frames.set(startFrame(episode, clip, data.info), b * frameSize)
    const ex = streamExample(episode, clip, { codesPerClip: arch.codesPerClip, historyClips: arch.historyClips, codeVocab: arch.codeVocab, length })
    stream.set(ex.stream, b * length)
    targets.set(ex.targets, b * length)
  })
  return { text, frames, stream, targets, batch: examples.length, streamLength: length }
}

export const ar = defineStage({
  name: "ar",
  version: "1",
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
        const examples: Array<Example> = data.episodes.flatMap((episode) => Array.from({ length: episode.clips }, (_, clip) => ({ episode, clip })))
        if (examples.length === 0) throw new Error(`${inputs.codes.dir}: the training episodes have no clips (are they shorter than the dLDM's clip length ${data.info.clipLength}?)`)
        ctx.log(`ar: ${data.episodes.length} episodes, ${examples.length} clips, vocabulary ${vocab.words.length} words, ${arch.codesPerClip} codes/clip`)
        const model = new ArTransformer(Init.seeded(ctx.seed), arch)
        const { train } = config
        const optimizer = new AdamW({ lr: train.lr, beta1: train.beta1, beta2: train.beta2, weightDecay: train.weightDecay })
        const schedule = warmupCosine({ peakLr: train.lr, warmupSteps: train.warmupSteps, totalSteps: train.steps })
        const rng = new Rng(ctx.seed ^ 0x5eed)
        try {
          for (let step = 0; step < train.steps; step++) {
            if (ctx.signal.aborted) throw new Error("interrupted")
            const picked = Array.from({ length: Math.min(train.batchSize, examples.length) }, () => examples[rng.int(examples.length)]!)
            const batch = makeBatch(picked, data, arch, vocab)
            const r = trainStep({ variables: model.trainableVariables(), optimizer, lossFn: () => batchLoss(model, batch), lr: schedule(step), clipNorm: train.clipNorm })
            if (step % train.logEvery === 0 || step === train.steps - 1) {
              ctx.metrics({ "ar/loss": r.loss, "ar/grad_norm": r.gradNorm, "ar/lr": schedule(step) }, step)
            }
            ctx.progress(step + 1, train.steps, `loss ${r.loss.toFixed(3)}`)
            if (step % train.logEvery === 0) await new Promise<void>((resolve) => setImmediate(resolve)) // let progress and signals through
          }
          await saveArCheckpoint(ctx.outputDir("checkpoint"), model, { vocabulary: vocab, codes: data.info })
        } finally {
          optimizer.dispose()
          model.dispose()
        }
      },
      catch: (cause) => new StageError({ stage: "ar", message: cause instanceof Error ? cause.message : String(cause), cause })
    })
})
