/**
 * Stage `calvin-head`: trains the action head on MiniCALVIN demonstrations tokenized by the dLDM, then
 * runs CALVIN's long-horizon protocol on MiniCALVIN in closed loop (AR codes from instruction + current
 * frame → head → actions → environment): success rate at 1..5 chained subtasks and Avg. Len.
 * Inputs: the tokenized demos ("code-dataset"), the demos themselves ("robot-dataset": actions, robot_obs),
 * the AR trained on those codes ("ar-checkpoint"). Outputs: the head ("action-head-checkpoint") and the
 * protocol report ("eval-report": calvin.json, read by craft-eval for the final table).
 * Metrics: this stage is the one owner of `calvin/*` (`calvin/l2` while training, `calvin/heldout_l2*`,
 * `calvin/success_k`, `calvin/avg_len`); craft-eval shows the report in its table but logs none of them.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as tf from "@tensorflow/tfjs"
import { loadArCheckpoint, readCodeDataset } from "@vw2/ar"
import { ConfigField, defineStage, StageError } from "@vw2/core"
import { Dataset } from "@vw2/data"
import { AdamW, asFloatState, describeBackend, Init, loadCheckpoint, resumableRng, Rng, runTraining, saveCheckpoint, selectBackend, warmupCosine } from "@vw2/nn"
import { Effect, Schema } from "effect"
import { DEFAULT_EP_LEN, evaluateLongHorizon, type LongHorizonReport } from "../internal/minicalvin.ts"
import { ACTION_DIM, actionLoss, CalvinHead, type CalvinHeadArchitecture, CalvinHeadModelConfig, PROPRIO_DIM } from "./CalvinHead.ts"
import { CodePolicy } from "./CodePolicy.ts"
import { type HeadExamples, headExamples } from "./HeadData.ts"

const { nonNegativeInt, nonNegativeNumber, positiveInt, positiveNumber, withDefault } = ConfigField

export const CalvinHeadStageConfig = Schema.Struct({
  model: withDefault(CalvinHeadModelConfig, {}),
  train: withDefault(
    Schema.Struct({
      steps: positiveInt(400),
      batchSize: positiveInt(64),
      lr: positiveNumber(1e-3),
      weightDecay: nonNegativeNumber(0.01),
      warmupSteps: nonNegativeInt(10),
      logEvery: positiveInt(20)
    }),
    {}
  ),
  /** the closed-loop protocol (CALVIN: 1000 chains, EP_LEN 360; MiniCALVIN's expert needs ≤ ~45 steps) */
  protocol: withDefault(
    Schema.Struct({
      chains: nonNegativeInt(20),
      seed: nonNegativeInt(0),
      /** scene variant of the evaluation environment (CALVIN's D) */
      variant: withDefault(Schema.String, "D"),
      epLen: positiveInt(DEFAULT_EP_LEN),
      temperature: nonNegativeNumber(0),
      topK: nonNegativeInt(0)
    }),
    {}
  )
})
export type CalvinHeadStageConfig = typeof CalvinHeadStageConfig.Type

export interface CalvinReport {
  readonly format: "vw2-calvin/1"
  /** success rate (0..1) at 1..5 consecutive subtasks */
  readonly successRates: ReadonlyArray<number>
  readonly avgLen: number
  readonly chains: number
  readonly perTask: LongHorizonReport["perTask"]
  /** AR plans (clips) per chain, on average */
  readonly plansPerChain: number
}

/**
 * Held-out action error of the head on the test demos: with their own codes, with codes of another
 * transition (a head that ignores its codes scores the same), and the mean training action (no model).
 */
const heldOutErrors = (head: CalvinHead, train: HeadExamples, test: HeadExamples): { own: number; swapped: number; meanAction: number } =>
  tf.tidy(() => {
    const n = test.codesPerTransition
    const shift = Math.max(1, Math.floor(test.count / 2))
    const swappedCodes = new Int32Array(test.codes.length)
    for (let i = 0; i < test.count; i++) swappedCodes.set(test.codes.subarray(((i + shift) % test.count) * n, (((i + shift) % test.count) + 1) * n), i * n)
    const proprio = tf.tensor2d(test.proprio, [test.count, PROPRIO_DIM])
    const actions = tf.tensor3d(test.actions, [test.count, test.actionsPerTransition, ACTION_DIM])
    const l2 = (codes: Int32Array) => actionLoss(head, tf.tensor2d(codes, [test.count, n], "int32"), proprio, actions).dataSync()[0]!
    const span = train.actionsPerTransition * ACTION_DIM
    const mean = new Float32Array(span)
    for (let i = 0; i < train.count; i++) for (let k = 0; k < span; k++) mean[k]! += train.actions[i * span + k]! / train.count
    const meanAction = tf.mean(tf.square(tf.sub(actions, tf.reshape(tf.tensor1d(mean), [1, train.actionsPerTransition, ACTION_DIM])))).dataSync()[0]!
    return { own: l2(test.codes), swapped: l2(swappedCodes), meanAction }
  })

export const loadCalvinHead = async (dir: string): Promise<CalvinHead> => {
  const ck = await loadCheckpoint<CalvinHeadArchitecture>(dir)
  const head = new CalvinHead(Init.seeded(0), ck.config)
  head.loadStateDict(asFloatState(ck.weights, `${dir}/model.safetensors`))
  return head
}

export const calvinHead = defineStage({
  name: "calvin-head",
  headline: ["calvin/avg_len", "calvin/success_1", "calvin/heldout_l2", "calvin/heldout_l2_swapped_codes"],
  version: "2",
  config: CalvinHeadStageConfig,
  inputs: { codes: "code-dataset", demos: "robot-dataset", ar: "ar-checkpoint" },
  outputs: { head: "action-head-checkpoint", report: "eval-report" },
  run: (ctx, config, inputs) =>
    Effect.tryPromise({
      try: async () => {
        ctx.log(`tfjs backend: ${describeBackend(await selectBackend())}`)
        const codes = readCodeDataset(inputs.codes.dir, { split: "train" })
        const demos = Dataset.open(inputs.demos.dir)
        const data = headExamples(codes, demos)
        const testCodes = readCodeDataset(inputs.codes.dir, { split: "test" })
        const heldOut = testCodes.episodes.length > 0 ? headExamples(testCodes, demos) : undefined
        ctx.log(`calvin-head: ${data.count} transitions × ${data.codesPerTransition} codes → ${data.actionsPerTransition} actions each`)
        const arch: CalvinHeadArchitecture = { ...config.model, codeVocab: codes.info.codeVocab, codesPerTransition: data.codesPerTransition, actionsPerTransition: data.actionsPerTransition }
        const head = new CalvinHead(Init.seeded(ctx.seed), arch)
        const { train } = config
        const optimizer = new AdamW({ lr: train.lr, weightDecay: train.weightDecay })
        const schedule = warmupCosine({ peakLr: train.lr, warmupSteps: train.warmupSteps, totalSteps: train.steps })
        const rng = new Rng(ctx.seed ^ 0xca1)
        const span = data.actionsPerTransition
        try {
          const result = await runTraining({
            ctx,
            name: "calvin-head",
            metricPrefix: "calvin",
            steps: train.steps,
            modules: { head },
            groups: [{ variables: head.trainableVariables(), optimizer }],
            schedule,
            state: { rng: resumableRng(rng) },
            metricsEvery: train.logEvery,
            progress: { total: train.steps + config.protocol.chains, message: (r) => `l2 ${r.loss.toFixed(4)}` },
            step: () => {
              const b = Math.min(train.batchSize, data.count)
              const picks = Array.from({ length: b }, () => rng.int(data.count))
              const batchCodes = new Int32Array(b * data.codesPerTransition)
              const batchProprio = new Float32Array(b * PROPRIO_DIM)
              const batchActions = new Float32Array(b * span * ACTION_DIM)
              picks.forEach((i, r) => {
                batchCodes.set(data.codes.subarray(i * data.codesPerTransition, (i + 1) * data.codesPerTransition), r * data.codesPerTransition)
                batchProprio.set(data.proprio.subarray(i * PROPRIO_DIM, (i + 1) * PROPRIO_DIM), r * PROPRIO_DIM)
                batchActions.set(data.actions.subarray(i * span * ACTION_DIM, (i + 1) * span * ACTION_DIM), r * span * ACTION_DIM)
              })
              return {
                loss: () =>
                  tf.tidy(() =>
                    actionLoss(
                      head,
                      tf.tensor2d(batchCodes, [b, data.codesPerTransition], "int32"),
                      tf.tensor2d(batchProprio, [b, PROPRIO_DIM]),
                      tf.tensor3d(batchActions, [b, span, ACTION_DIM])
                    )
                  ),
                metrics: (r) => ({ l2: r.loss })
              }
            }
          })
          if (result.status === "paused") return
          await saveCheckpoint(ctx.outputDir("head"), { model: head, config: arch })
          if (heldOut !== undefined) {
            const e = heldOutErrors(head, data, heldOut)
            ctx.metrics({ "calvin/heldout_l2": e.own, "calvin/heldout_l2_swapped_codes": e.swapped, "calvin/heldout_l2_mean_action": e.meanAction }, train.steps)
            ctx.log(`calvin-head: held-out l2 ${e.own.toFixed(4)} (another transition's codes ${e.swapped.toFixed(4)}, mean action ${e.meanAction.toFixed(4)}) on ${heldOut.count} test transitions`)
          }

          const { model: ar, config: arConfig } = await loadArCheckpoint(inputs.ar.dir)
          try {
            if (ar.arch.height !== ar.arch.width) throw new Error(`MiniCALVIN renders square frames; the AR in ${inputs.ar.dir} expects ${ar.arch.height}×${ar.arch.width}`)
            const { protocol } = config
            const sampling = { temperature: protocol.temperature, topK: protocol.topK, useKvCache: true }
            const policies: Array<CodePolicy> = []
            let chainsDone = 0
            const report = await evaluateLongHorizon(
              () => {
                const policy = new CodePolicy({ ar, head, vocabulary: arConfig.vocabulary, sampling, rng: new Rng(protocol.seed + chainsDone) })
                policies.push(policy)
                let current: string | undefined
                ctx.progress(train.steps + ++chainsDone, train.steps + protocol.chains, "CALVIN protocol")
                return (observation, instruction) => {
                  if (instruction !== current) {
                    policy.reset(instruction)
                    current = instruction
                  }
                  return policy.act({ rgb: observation.frame, robotObs: observation.robotObs })
                }
              },
              { chains: protocol.chains, seed: protocol.seed, variant: protocol.variant, epLen: protocol.epLen, size: ar.arch.height }
            )
            const result: CalvinReport = {
              format: "vw2-calvin/1",
              successRates: report.successRates,
              avgLen: report.avgLen,
              chains: report.chains.length,
              perTask: report.perTask,
              plansPerChain: report.chains.length === 0 ? 0 : policies.reduce((n, p) => n + p.plans, 0) / report.chains.length
            }
            const metrics: Record<string, number> = { "calvin/avg_len": report.avgLen }
            report.successRates.forEach((rate, k) => (metrics[`calvin/success_${k + 1}`] = 100 * rate))
            ctx.metrics(metrics, train.steps)
            const out = ctx.outputDir("report")
            fs.writeFileSync(path.join(out, "calvin.json"), JSON.stringify(result, null, 2) + "\n")
            ctx.upload("report/calvin.json")
            ctx.log(`CALVIN (${report.chains.length} chains): ${report.successRates.map((r) => (100 * r).toFixed(1)).join(" / ")}, Avg. Len. ${report.avgLen.toFixed(2)}`)
          } finally {
            ar.dispose()
          }
        } finally {
          optimizer.dispose()
          head.dispose()
        }
      },
      catch: (cause) => new StageError({ stage: "calvin-head", message: cause instanceof Error ? cause.message : String(cause), cause })
    })
})
