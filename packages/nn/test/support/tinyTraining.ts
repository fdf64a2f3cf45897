/**
 * A tiny model trained by the harness on real files (a temporary resume directory): two Linear layers on a
 * fixed regression set, batches drawn both by an Rng (like the AR / CALVIN / judge stages) and from a replayed
 * seeded generator (like the dLDM / VDM stages), with clipping, a warm-up cosine schedule, EMA and an
 * evaluation hook, so every kind of state a checkpoint holds is exercised.
 */
import * as tf from "@tensorflow/tfjs"
import {
  AdamW,
  Init,
  Linear,
  Module,
  PositionedIterator,
  Rng,
  replayFrom,
  resumableRng,
  runTraining,
  warmupCosine,
  type CheckpointCadence,
  type InitContext,
  type TrainingResult
} from "../../src/index.ts"

class Tiny extends Module {
  readonly a: Linear
  readonly b: Linear
  constructor(init: InitContext) {
    super(init)
    this.a = this.module("a", new Linear(init, 4, 16))
    this.b = this.module("b", new Linear(init, 16, 1))
  }
  call(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.b.call(tf.relu(this.a.call(x))))
  }
}

const EXAMPLES = 64
const xs = Float32Array.from({ length: EXAMPLES * 4 }, (_, i) => Math.sin(i * 0.37) + 0.1 * Math.cos(i * 1.7))
const ys = Float32Array.from({ length: EXAMPLES }, (_, i) => xs[4 * i]! * 0.8 - xs[4 * i + 2]! * 0.5 + 0.3)

/** an endless seeded generator of index pairs (the replayed kind of data iterator) */
function* pairs(seed: number): Generator<[number, number]> {
  const r = new Rng(seed)
  for (;;) yield [r.int(EXAMPLES), r.int(EXAMPLES)]
}

export interface TinyRun {
  readonly result?: TrainingResult
  readonly error?: unknown
  readonly weights: Map<string, Array<number>>
  readonly optimizer: Map<string, Array<number>>
  readonly optimizerStep: number
  readonly ema: Map<string, Array<number>>
  readonly metrics: Array<{ readonly step: number; readonly values: Readonly<Record<string, number>> }>
  readonly logs: Array<string>
  readonly checkpointed: Array<[number, number]>
}

export interface TinyOptions {
  readonly resumeDir?: string
  readonly steps?: number
  /** abort the signal while this step runs (the harness stops before the next one) */
  readonly abortAt?: number
  readonly pauseAtStep?: number
  readonly checkpoint?: CheckpointCadence
  /** AdamW's implementation (default "tfjs"; "auto" takes the fused native op on the tensorflow backend) */
  readonly adamw?: "auto" | "tfjs"
}

const plain = (m: ReadonlyMap<string, { data: Float32Array }>) => new Map([...m].map(([k, v]) => [k, Array.from(v.data)]))

export async function runTiny(o: TinyOptions): Promise<TinyRun> {
  const steps = o.steps ?? 20
  const model = new Tiny(Init.seeded(7))
  const optimizer = new AdamW({ lr: 0.05, weightDecay: 0.01, implementation: o.adamw ?? "tfjs" })
  const rng = new Rng(11)
  const batches = new PositionedIterator(replayFrom(() => pairs(13)))
  const controller = new AbortController()
  const metrics: Array<{ step: number; values: Record<string, number> }> = []
  const logs: Array<string> = []
  const checkpointed: Array<[number, number]> = []
  let result: TrainingResult | undefined
  let error: unknown
  try {
    result = await runTraining({
      ctx: {
        signal: controller.signal,
        metrics: (values, step) => metrics.push({ step, values: { ...values } }),
        progress: () => undefined,
        log: (m) => logs.push(m),
        ...(o.resumeDir !== undefined ? { resumeDir: o.resumeDir } : {}),
        checkpointed: (step, total) => checkpointed.push([step, total]),
        ...(o.pauseAtStep !== undefined ? { pauseAtStep: o.pauseAtStep } : {})
      },
      name: "tiny",
      steps,
      modules: { model },
      groups: [{ variables: model.trainableVariables(), optimizer }],
      schedule: warmupCosine({ peakLr: 0.05, warmupSteps: 3, totalSteps: steps }),
      clipNorm: 0.5,
      ema: { module: model, decay: 0.9 },
      state: { rng: resumableRng(rng), batches },
      metricsEvery: 2,
      // no checkpoint on interruption by default: the tests resume from the periodic ones, as after a kill -9
      checkpoint: o.checkpoint ?? { everySteps: 3, onInterrupt: false },
      evaluate: {
        every: 5,
        run: (step) => {
          const value = tf.tidy(() => tf.mean(tf.square(tf.sub(model.call(tf.tensor2d(xs, [EXAMPLES, 4])), tf.tensor2d(ys, [EXAMPLES, 1])))).dataSync()[0]!)
          metrics.push({ step, values: { "tiny/eval_mse": value } })
        }
      },
      step: (step) => {
        if (step === o.abortAt) controller.abort()
        const picks = [rng.int(EXAMPLES), rng.int(EXAMPLES), ...batches.next()]
        const x = tf.tensor2d(picks.flatMap((i) => Array.from(xs.subarray(4 * i, 4 * i + 4))), [picks.length, 4])
        const y = tf.tensor2d(picks.map((i) => ys[i]!), [picks.length, 1])
        return {
          loss: () => tf.mean(tf.square(tf.sub(model.call(x), y))) as tf.Scalar,
          dispose: () => tf.dispose([x, y])
        }
      }
    })
  } catch (e) {
    error = e
  }
  const run: TinyRun = {
    ...(result !== undefined ? { result } : {}),
    ...(error !== undefined ? { error } : {}),
    weights: plain(model.stateDict()),
    optimizer: plain(optimizer.stateDict()),
    optimizerStep: optimizer.step,
    ema: result?.ema !== undefined ? plain(result.ema.stateDict()) : new Map(),
    metrics,
    logs,
    checkpointed
  }
  result?.ema?.dispose()
  optimizer.dispose()
  model.dispose()
  return run
}
