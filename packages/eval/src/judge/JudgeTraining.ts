/**
 * Trains the craft judge's step classifier (docs/paper.md "Evaluation"; "What the paper leaves open": a
 * judge that is fair across methods) on freshly rendered MiniCraft frames only (JudgeData.ts), each batch
 * degraded at random (Degradations.ts), with negatives the judge must reject: every frame is also `other`
 * for the heads of the other tasks, and a share of each batch is uniform noise or blurred mush.
 */
import * as tf from "@tensorflow/tfjs"
import { ConfigField } from "@vw2/core"
import { MiniCraft } from "@vw2/data"
import { AdamW, Init, resumableRng, Rng, runTraining, type TrainingContext, warmupCosine } from "@vw2/nn"
import { Schema } from "effect"
import { type CraftJudge, type JudgeRules, makeCraftJudge } from "./CraftJudge.ts"
import { augmentWithShift, type AugmentOptions, defaultAugment, mush, shiftMask, toUnit, uniformNoise } from "./Degradations.ts"
import { type RenderSettings, renderJudgeSamples } from "./JudgeData.ts"
import { classifierLoss, halfMask, otherClass, StepClassifier, type StepClassifierArchitecture, type StepClassifierConfig } from "./StepClassifier.ts"

const { nonNegativeInt, nonNegativeNumber, positiveInt, positiveNumber } = ConfigField

const share = (fallback: number) => ConfigField.withDefault(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1)), fallback)

export const JudgeDataConfig = Schema.Struct({
  /** appearances drawn per task (from the test and the train sampler, see testAppearanceShare): many, few frames each, for appearance coverage */
  appearancesPerTask: positiveInt(80),
  /** frames rendered per appearance (random script, random frame) */
  framesPerAppearance: positiveInt(16),
  /** share of frames from a script with two adjacent steps swapped / a random step order */
  swappedShare: share(0.2),
  shuffledShare: share(0.15),
  /** share of frames with the hand off its scripted path (random place or frozen at its start) */
  freeHandShare: share(0.3),
  /**
   * share of appearances from the test sampler: judged videos show the test domain, and its hardest looks
   * (a light table under a light paper's back: folded flaps barely stand out) need many draws to be covered
   */
  testAppearanceShare: share(0.85)
})
export type JudgeDataConfig = typeof JudgeDataConfig.Type

export const JudgeTrainConfig = Schema.Struct({
  steps: positiveInt(1200),
  batchSize: positiveInt(64),
  lr: positiveNumber(3e-3),
  weightDecay: nonNegativeNumber(1e-4),
  warmupSteps: nonNegativeInt(20),
  /** weight of each other task's head on a frame (its target: `other`) */
  otherTaskWeight: nonNegativeNumber(0.15),
  /**
   * weight of an `other` target in the frame's own head: `other` is most of the own-head labels (mid-action,
   * swapped and shuffled orders), and an unsure classifier then says `other` on a true state of an unseen
   * appearance (a missed step), while the negatives are rejected with a wide margin by the order rules too
   */
  otherWeight: nonNegativeNumber(0.5),
  /** weight of the hand mask's per-pixel binary cross-entropy */
  handWeight: nonNegativeNumber(4),
  /** share of each batch replaced by uniform noise or mush (every head: `other`) */
  negativeShare: share(0.06),
  /** share of each batch left undegraded */
  cleanShare: share(0.2),
  /**
   * how often a fold task's frames are drawn against a block task's: a fold changes fewer pixels late in the
   * sequence (fold-boat's last folds: 24–40 px at 32 px, blocks 40–140) and is the judge's hardest read
   */
  foldWeight: positiveNumber(2),
  logEvery: positiveInt(50)
})
export type JudgeTrainConfig = typeof JudgeTrainConfig.Type

/** The training augmentation (defaults: Degradations.defaultAugment, wider than every calibration degradation). */
export const JudgeAugmentConfig = Schema.Struct({
  noiseMax: nonNegativeNumber(defaultAugment.noiseMax),
  pNoise: share(defaultAugment.pNoise),
  pBlur: share(defaultAugment.pBlur),
  pDownUp: share(defaultAugment.pDownUp),
  brightnessMax: nonNegativeNumber(defaultAugment.brightnessMax),
  pBrightness: share(defaultAugment.pBrightness),
  gainMax: nonNegativeNumber(defaultAugment.gainMax),
  colorMax: nonNegativeNumber(defaultAugment.colorMax),
  pGain: share(defaultAugment.pGain),
  shiftMax: nonNegativeInt(defaultAugment.shiftMax),
  pShift: share(defaultAugment.pShift)
})

export interface TrainCraftJudgeOptions {
  readonly tasks: ReadonlyArray<string>
  /** step count of each task (same order) */
  readonly steps: ReadonlyArray<number>
  readonly render: RenderSettings
  readonly seed: number
  readonly model: StepClassifierConfig
  readonly data: JudgeDataConfig
  readonly train: JudgeTrainConfig
  readonly augment: AugmentOptions
  readonly rules: JudgeRules
  /** the stage's context: metrics (`judge/loss`, `judge/ce`, `judge/hand_bce`), progress, interruption, mid-stage
   * checkpoints and resume; default: a quiet one without checkpoints */
  readonly ctx?: TrainingContext
}

export interface TrainedCraftJudge {
  /** `paused`: stopped at ctx.pauseAtStep (an early-stopping rung); the stage writes no outputs */
  readonly status: "completed" | "paused"
  readonly judge: CraftJudge
  readonly model: StepClassifier
  readonly arch: StepClassifierArchitecture
  readonly samples: number
  readonly renderSeconds: number
  readonly trainSeconds: number
}

const quiet: TrainingContext = { signal: new AbortController().signal, metrics: () => undefined, progress: () => undefined, log: () => undefined }

export const trainCraftJudge = async (o: TrainCraftJudgeOptions): Promise<TrainedCraftJudge> => {
  const arch: StepClassifierArchitecture = { ...o.model, height: o.render.height, width: o.render.width, tasks: o.tasks, steps: o.steps }
  const other = otherClass(arch)
  const t0 = performance.now()
  const samples = renderJudgeSamples({ ...o.render, ...o.data, tasks: o.tasks, seed: o.seed }, other)
  const renderSeconds = (performance.now() - t0) / 1000
  const model = new StepClassifier(Init.seeded(o.seed), arch)
  const { train } = o
  const optimizer = new AdamW({ lr: train.lr, weightDecay: train.weightDecay })
  const schedule = warmupCosine({ peakLr: train.lr, warmupSteps: train.warmupSteps, totalSteps: train.steps })
  const rng = new Rng(o.seed ^ 0x7a11)
  const uniform = () => rng.next()
  const size = { height: o.render.height, width: o.render.width }
  const pixelCount = size.height * size.width
  const half = { height: Math.ceil(size.height / 2), width: Math.ceil(size.width / 2) }
  const halfCount = half.height * half.width
  const frameSize = pixelCount * 3
  const tasks = o.tasks.length
  const B = train.batchSize
  // frames are laid out task by task, equally many each: draw a task by its weight, then one of its frames
  const perTask = samples.count / tasks
  const taskWeights = o.tasks.map((name) => (MiniCraft.getTask(name).family === "fold" ? train.foldWeight : 1))
  const totalWeight = taskWeights.reduce((a, b) => a + b, 0)
  const drawFrame = (): number => {
    let u = rng.next() * totalWeight
    let k = 0
    while (k < tasks - 1 && u >= taskWeights[k]!) u -= taskWeights[k++]!
    return k * perTask + rng.int(perTask)
  }
  const t1 = performance.now()
  let status: TrainedCraftJudge["status"]
  try {
    const result = await runTraining({
      ctx: o.ctx ?? quiet,
      name: "craft-judge",
      metricPrefix: "judge",
      steps: train.steps,
      modules: { model },
      groups: [{ variables: model.trainableVariables(), optimizer }],
      schedule,
      state: { rng: resumableRng(rng) },
      metricsEvery: train.logEvery,
      progress: { message: (r) => `judge step ${r.step}: loss ${r.loss.toFixed(3)}` },
      step: () => {
        const pixels = new Float32Array(B * frameSize)
        const labels = new Int32Array(B * tasks)
        const weights = new Float32Array(B * tasks)
        const handMask = new Float32Array(B * halfCount)
        const shifted = new Float32Array(pixelCount)
        const handWeights = new Float32Array(B)
        for (let b = 0; b < B; b++) {
          const i = drawFrame()
          const clean = toUnit(samples.frames.subarray(i * frameSize, (i + 1) * frameSize))
          const u = rng.next()
          if (u < train.negativeShare) {
            // no scene at all: every head must say `other`
            const noise = u < train.negativeShare / 2
            pixels.set(noise ? uniformNoise(size, uniform) : mush(clean, size), b * frameSize)
            handWeights[b] = noise ? 1 : 0 // noise has no hand; a mushed hand is anywhere

            labels.fill(other, b * tasks, (b + 1) * tasks)
            weights.fill(1, b * tasks, (b + 1) * tasks)
            continue
          }
          const mask = samples.hand.subarray(i * pixelCount, (i + 1) * pixelCount)
          if (rng.next() < train.cleanShare) {
            pixels.set(clean, b * frameSize)
            halfMask(mask, size.height, size.width, handMask.subarray(b * halfCount, (b + 1) * halfCount))
          } else {
            const aug = augmentWithShift(clean, size, o.augment, uniform)
            pixels.set(aug.frame, b * frameSize)
            halfMask(shiftMask(mask, size, aug.dx, aug.dy, shifted), size.height, size.width, handMask.subarray(b * halfCount, (b + 1) * halfCount))
          }
          handWeights[b] = 1
          for (let k = 0; k < tasks; k++) {
            const own = k === samples.task[i]
            labels[b * tasks + k] = own ? samples.state[i]! : other
            weights[b * tasks + k] = !own ? train.otherTaskWeight : samples.state[i] === other ? train.otherWeight : 1
          }
        }
        return {
          loss: () =>
            tf.tidy(() =>
              classifierLoss(
                model,
                tf.tensor4d(pixels, [B, size.height, size.width, 3]),
                { labels: tf.tensor2d(labels, [B, tasks], "int32"), weights: tf.tensor2d(weights, [B, tasks]), hand: tf.tensor3d(handMask, [B, half.height, half.width]), handWeights: tf.tensor1d(handWeights) },
                train.handWeight
              )
            ),
          metrics: (r) => ({ loss: r.loss, ce: r.aux["ce"]!, hand_bce: r.aux["hand"]! })
        }
      }
    })
    status = result.status
  } catch (e) {
    model.dispose()
    throw e
  } finally {
    optimizer.dispose()
  }
  const trainSeconds = (performance.now() - t1) / 1000
  return { status, judge: makeCraftJudge(model, o.rules), model, arch, samples: samples.count, renderSeconds, trainSeconds }
}
