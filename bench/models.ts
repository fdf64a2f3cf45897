/**
 * Train-step throughput of transformer blocks with the shapes our models train at, on one tfjs backend.
 *
 * The network is a pre-LN transformer (LayerNorm → multi-head attention → residual → LayerNorm → GELU MLP →
 * residual, final LayerNorm, MSE loss, Adam) built from @vw2/nn's layers, so it runs what the models run
 * (fused ops on the tensorflow backend, composite tfjs ops elsewhere). bench/pytorch/transformer.py
 * builds the same network from the same spec, so the ratio compares frameworks, not architectures. The
 * shapes (width, depth, heads, MLP ratio, tokens per sample, causal or not) are those of the dLDM, DiT and AR
 * presets; "small" presets are what a user would train on a CPU box; see SPECS.
 *
 * TWINS (end of file): the new mini models' own train steps (dLDM warm-up with the conv U-Net decoder, the
 * VDM's pre-training step, the craft judge's classifier) at the quickstart's configs, each next to a PyTorch
 * twin of the same architecture in bench/pytorch/models.py.
 */
import * as tf from "@tensorflow/tfjs"
import { AdamW, causalMask, computeGradients, Init, type InitContext, LayerNorm, Mlp, Module, MultiHeadAttention } from "@vw2/nn"
import { Schema } from "effect"

export interface TransformerSpec {
  /** `<model>-<preset>`, e.g. `dit-small` */
  readonly name: string
  /** where the shape comes from */
  readonly shapeOf: string
  readonly batch: number
  readonly tokens: number
  readonly width: number
  readonly depth: number
  readonly heads: number
  readonly mlpRatio: number
  readonly causal: boolean
}

/**
 * mini: the presets the quickstart and tests use (packages/dldm/src/DldmConfig.ts miniPreset,
 * packages/diffusion/src/VideoDiTConfig.ts miniDiT, packages/ar/src/ArConfig.ts defaults), 9-frame 32×32 clips.
 * small: 4× wider, 4× more tokens: the smallest size that learns MiniCraft well, and the CPU-training target.
 */
export const SPECS: ReadonlyArray<TransformerSpec> = [
  {
    name: "dldm-mini", shapeOf: "dLDM miniPreset: 5 latent frames × 4×4 tokens, encoder 2 + decoder 2 blocks of width 48",
    batch: 8, tokens: 80, width: 48, depth: 4, heads: 4, mlpRatio: 2, causal: false
  },
  {
    name: "dit-mini", shapeOf: "miniDiT: 9 frames × (32/4)² patches, width 64, depth 3",
    batch: 4, tokens: 576, width: 64, depth: 3, heads: 4, mlpRatio: 2, causal: false
  },
  {
    name: "ar-mini", shapeOf: "AR defaults: dim 64, depth 2, ~96-token causal stream (text + 16 patches + 3 clips of codes)",
    batch: 8, tokens: 96, width: 64, depth: 2, heads: 4, mlpRatio: 4, causal: true
  },
  {
    name: "dldm-small", shapeOf: "dLDM at 64×64: 5 latent frames × 8×8 tokens, 4 + 4 blocks of width 192",
    batch: 8, tokens: 320, width: 192, depth: 8, heads: 6, mlpRatio: 4, causal: false
  },
  {
    name: "dit-small", shapeOf: "DiT at 64×64 latents: 4 frames × 8×8 patches, width 256, depth 4",
    batch: 8, tokens: 256, width: 256, depth: 4, heads: 8, mlpRatio: 4, causal: false
  },
  {
    name: "ar-small", shapeOf: "AR: dim 256, depth 6, 256-token causal stream",
    batch: 8, tokens: 256, width: 256, depth: 6, heads: 8, mlpRatio: 4, causal: true
  }
]

/**
 * FLOPs of one train step: matmuls only (they are > 95% of the work), backward = 2× forward.
 * Per block forward: qkv 3D², out D², MLP 2·r·D² per token (×2 for multiply-add), attention 2·T²·D twice.
 */
export const trainStepFlops = (s: TransformerSpec): number => {
  const rows = s.batch * s.tokens
  const dense = 2 * rows * (4 + 2 * s.mlpRatio) * s.width * s.width
  const attention = 2 * 2 * s.batch * s.tokens * s.tokens * s.width
  return 3 * s.depth * (dense + attention)
}

/**
 * One pre-LN block from @vw2/nn's layers, the ones the model packages train with (LayerNorm, MultiHeadAttention,
 * Mlp with tanh-GELU): on the tensorflow backend they run the fused ops of packages/nn/src/layers/fused.ts.
 */
class BenchBlock extends Module {
  readonly norm1: LayerNorm
  readonly attn: MultiHeadAttention
  readonly norm2: LayerNorm
  readonly mlp: Mlp

  constructor(init: InitContext, spec: TransformerSpec) {
    super(init)
    this.norm1 = this.module("norm1", new LayerNorm(init, spec.width))
    this.attn = this.module("attn", new MultiHeadAttention(init, spec.width, spec.heads))
    this.norm2 = this.module("norm2", new LayerNorm(init, spec.width))
    this.mlp = this.module("mlp", new Mlp(init, spec.width, spec.mlpRatio * spec.width))
  }

  /** x [B, T, D], mask bool [T, T] or none */
  call(x: tf.Tensor3D, mask: tf.Tensor | undefined): tf.Tensor3D {
    const h = tf.add(x, this.attn.call(this.norm1.call(x) as tf.Tensor3D, undefined, mask))
    return tf.add(h, this.mlp.call(this.norm2.call(h))) as tf.Tensor3D
  }
}

class BenchTransformer extends Module {
  readonly blocks: ReadonlyArray<BenchBlock>
  readonly norm: LayerNorm

  constructor(init: InitContext, spec: TransformerSpec) {
    super(init)
    this.blocks = this.moduleList("blocks", Array.from({ length: spec.depth }, () => new BenchBlock(init, spec)))
    this.norm = this.module("norm", new LayerNorm(init, spec.width))
  }

  call(x: tf.Tensor3D, mask: tf.Tensor | undefined): tf.Tensor {
    return this.norm.call(this.blocks.reduce((h, block) => block.call(h, mask), x))
  }
}

export interface BenchModel {
  readonly spec: TransformerSpec
  /** one forward + backward + Adam update; resolves when the loss value is on the host */
  readonly step: () => number
  readonly dispose: () => void
}

export const buildBenchModel = (spec: TransformerSpec, seed = 0): BenchModel => {
  const { batch: B, tokens: T, width: D } = spec
  const model = new BenchTransformer(Init.seeded(seed), spec)
  const variables = model.trainableVariables()
  const x = tf.randomNormal([B, T, D], 0, 1, "float32", seed + 1000) as tf.Tensor3D
  const target = tf.randomNormal([B, T, D], 0, 1, "float32", seed + 1001) as tf.Tensor3D
  const mask = spec.causal ? causalMask(T) : undefined // bool [T, T], true on and below the diagonal
  // what our models train with: nn's AdamW; decay 0 = bench/pytorch/transformer.py's torch.optim.Adam(lr=1e-4)
  // (betas 0.9/0.999, eps 1e-8); one fused op per step on `tensorflow`
  const optimizer = new AdamW({ lr: 1e-4, weightDecay: 0 })

  const loss = (): tf.Scalar => tf.mean(tf.square(tf.sub(model.call(x, mask), target)))
  return {
    spec,
    step: () => {
      const { loss: value, grads } = computeGradients(variables, loss)
      optimizer.apply(variables, grads)
      tf.dispose([...grads.values()])
      return value
    },
    dispose: () => {
      optimizer.dispose()
      tf.dispose([x, target, ...(mask ? [mask] : [])])
      model.dispose()
    }
  }
}

export interface StepTiming {
  readonly spec: string
  readonly backend: string
  readonly steps: number
  /** median wall time of a timed step, ms */
  readonly stepMs: number
  readonly samplesPerSec: number
  readonly gflops: number
  readonly firstLoss: number
  readonly lastLoss: number
}

/**
 * Times train steps on the active backend: `warmup` untimed steps (kernel caches, allocator), then timed
 * steps until `budgetMs` is spent (at least `minSteps`, at most `maxSteps`); reports the median.
 */
export const timeTrainSteps = (
  spec: TransformerSpec,
  options: { readonly warmup?: number; readonly minSteps?: number; readonly maxSteps?: number; readonly budgetMs?: number } = {}
): StepTiming => {
  const { warmup = 2, minSteps = 3, maxSteps = 30, budgetMs = 4000 } = options
  const model = buildBenchModel(spec)
  try {
    const firstLoss = model.step()
    for (let i = 1; i < warmup; i++) model.step()
    const times: Array<number> = []
    let lastLoss = firstLoss
    const start = performance.now()
    while (times.length < maxSteps && (times.length < minSteps || performance.now() - start < budgetMs)) {
      const t0 = performance.now()
      lastLoss = model.step()
      times.push(performance.now() - t0)
    }
    times.sort((a, b) => a - b)
    const stepMs = times[Math.floor(times.length / 2)]!
    return {
      spec: spec.name, backend: tf.getBackend(), steps: times.length, stepMs,
      samplesPerSec: spec.batch / (stepMs / 1000), gflops: trainStepFlops(spec) / (stepMs / 1000) / 1e9,
      firstLoss, lastLoss
    }
  } finally {
    model.dispose()
  }
}

/** Square float32 matmul throughput on the active backend (GFLOP/s of the median of `reps`). */
export const matmulGflops = (n: number, reps = 5): number => {
  const a = tf.randomNormal([n, n], 0, 1, "float32", 1)
  const b = tf.randomNormal([n, n], 0, 1, "float32", 2)
  tf.matMul(a, b).dispose()
  const times: Array<number> = []
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now()
    const c = tf.matMul(a, b)
    c.dataSync()
    times.push(performance.now() - t0)
    c.dispose()
  }
  tf.dispose([a, b])
  const median = times.sort((x, y) => x - y)[Math.floor(reps / 2)]!
  return (2 * n ** 3) / (median / 1000) / 1e9
}

// ---- the model packages' own networks (tfjs only: their PyTorch twins would be new code, not a reference) ----

export interface RealModelBench {
  readonly name: string
  readonly shapeOf: string
  readonly batch: number
  /** builds the model, optimizer and a fixed batch; the returned step runs one real train step */
  readonly build: () => Promise<{ readonly step: () => number; readonly dispose: () => void }>
}

/** Fixed pseudo-random video in [0, 1]: [B, T, H, W, 3]. */
const video = (b: number, t: number, h: number, w: number, seed: number) => tf.randomUniform([b, t, h, w, 3], 0, 1, "float32", seed)

export const REAL_MODELS: ReadonlyArray<RealModelBench> = [
  {
    name: "dLDM mini (warm-up step)", shapeOf: "@vw2/dldm miniPreset, 8 clips of 9×32×32, AdamW + clip 1", batch: 8,
    build: async () => {
      const { Dldm, miniPreset } = await import("@vw2/dldm")
      const { AdamW, Init, trainStep } = await import("@vw2/nn")
      const model = new Dldm(Init.seeded(1), miniPreset)
      const opt = new AdamW({ lr: 3e-4, weightDecay: 0.1 })
      const clip = video(8, 9, 32, 32, 3)
      const vars = model.trainableVariables()
      return {
        step: () => trainStep({ variables: vars, optimizer: opt, clipNorm: 1, lossFn: () => model.reconstructionLoss(clip, model.forward(clip).recon) }).loss,
        dispose: () => { opt.dispose(); model.dispose(); clip.dispose() }
      }
    }
  },
  {
    name: "DiT mini (rectified flow step)", shapeOf: "@vw2/diffusion miniDiT without the ControlNet branch, 4 clips of 9×32×32", batch: 4,
    build: async () => {
      const { VideoDiT, miniDiT, rectifiedFlowLoss } = await import("@vw2/diffusion")
      const { AdamW, Init, trainStep } = await import("@vw2/nn")
      const dit = new VideoDiT(Init.seeded(0), { ...miniDiT, control: { ...miniDiT.control, enabled: false } })
      const opt = new AdamW({ lr: 3e-4, weightDecay: 0 })
      const clip = video(4, 9, 32, 32, 4)
      let seed = 0
      return {
        step: () => trainStep({ variables: dit.trainableVariables(), optimizer: opt, lossFn: () => rectifiedFlowLoss(dit, clip, undefined, undefined, { seed: seed++ }).loss }).loss,
        dispose: () => { opt.dispose(); dit.dispose(); clip.dispose() }
      }
    }
  },
  {
    name: "AR mini (next-code step)", shapeOf: "@vw2/ar defaults (dim 64, depth 2), vocab 1000, 16 codes/clip, 2 history clips, 8 streams", batch: 8,
    build: async () => {
      const { ArTransformer, batchLoss } = await import("@vw2/ar")
      const { AdamW, Init, trainStep } = await import("@vw2/nn")
      const arch = {
        dim: 64, depth: 2, heads: 4, mlpRatio: 4, patchSize: 8, historyClips: 2,
        codeVocab: 1000, codesPerClip: 16, textVocab: 32, maxTextTokens: 8, height: 32, width: 32
      }
      const model = new ArTransformer(Init.seeded(0), arch)
      const opt = new AdamW({ lr: 3e-4, beta2: 0.98, weightDecay: 0.05 })
      const B = 8, S = 1 + (arch.historyClips + 1) * (arch.codesPerClip + 1)
      const ints = (n: number, mod: number, salt: number) => Int32Array.from({ length: n }, (_, i) => (i * 7919 + salt) % mod)
      // loss on the current clip's codes and terminator only (the last codesPerClip + 1 positions)
      const targets = Int32Array.from({ length: B * S }, (_, i) => (i % S >= S - arch.codesPerClip - 1 ? (i * 31) % (arch.codeVocab + 3) : -1))
      const batch = {
        text: ints(B * arch.maxTextTokens, arch.textVocab, 1), frames: Float32Array.from({ length: B * 32 * 32 * 3 }, (_, i) => (i % 17) / 17),
        stream: ints(B * S, arch.codeVocab + 3, 2), targets, batch: B, streamLength: S
      }
      return {
        step: () => trainStep({ variables: model.trainableVariables(), optimizer: opt, lossFn: () => batchLoss(model, batch) }).loss,
        dispose: () => { opt.dispose(); model.dispose() }
      }
    }
  }
]

/** Median train-step time of a real model on the active backend; same protocol as timeTrainSteps. */
export const timeRealModel = async (bench: RealModelBench, budgetMs: number, minSteps: number): Promise<{ stepMs: number; steps: number; samplesPerSec: number }> => {
  const model = await bench.build()
  try {
    model.step()
    const times: Array<number> = []
    const start = performance.now()
    while (times.length < 30 && (times.length < minSteps || performance.now() - start < budgetMs)) {
      const t0 = performance.now()
      model.step()
      times.push(performance.now() - t0)
    }
    const stepMs = times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!
    return { stepMs, steps: times.length, samplesPerSec: bench.batch / (stepMs / 1000) }
  } finally {
    model.dispose()
  }
}

// ---- the new mini models against their PyTorch twins (bench/pytorch/models.py) ----

/**
 * What one twin bench sends to bench/pytorch/models.py: the decoded stage config of the quickstart (so both
 * sides build from the same numbers and follow a preset change), the batch and the optimiser settings.
 */
export interface TwinRequest {
  readonly name: string
  readonly kind: "dldm" | "vdm" | "judge"
  readonly batch: number
  readonly config: unknown
  readonly optim: { readonly lr: number; readonly weightDecay: number; readonly beta1: number; readonly beta2: number; readonly eps: number; readonly clipNorm?: number }
  readonly [extra: string]: unknown
}

export interface TwinBench {
  /** `--only=<name>` selects it; `--only=models` selects every twin */
  readonly name: string
  readonly shapeOf: string
  readonly request: () => Promise<TwinRequest>
  /** the tfjs side: the package's own model, loss and trainStep, on a fixed batch */
  readonly build: (request: TwinRequest) => Promise<{ readonly step: () => number; readonly dispose: () => void; readonly params: number }>
}

const trainableCount = (vars: ReadonlyMap<string, tf.Variable>): number => [...vars.values()].reduce((n, v) => n + v.size, 0)

export const TWINS: ReadonlyArray<TwinBench> = [
  {
    name: "dldm-warmup-mini",
    shapeOf: "warm-up step of the quickstart (miniStageConfigs.warmup): miniPreset with the conv U-Net decoder, 8 clips of 9×32×32, train-mode latentNorm and input noise, MSE, clip 1, AdamW",
    request: async () => {
      const { miniStageConfigs, WarmupConfigSchema } = await import("@vw2/dldm")
      const w = Schema.decodeUnknownSync(WarmupConfigSchema)(miniStageConfigs.warmup)
      return { name: "dldm-warmup-mini", kind: "dldm", batch: w.optim.batchSize, config: w.model, optim: w.optim }
    },
    build: async (r) => {
      const { Dldm, makeOptimizer } = await import("@vw2/dldm")
      const { Init, trainStep } = await import("@vw2/nn")
      const config = r.config as import("@vw2/dldm").DldmConfig
      const model = new Dldm(Init.seeded(1), config)
      const optimizer = makeOptimizer(r.optim as import("@vw2/dldm").OptimConfig)
      const clip = video(r.batch, config.frames, config.height, config.width, 3)
      const variables = model.trainableVariables()
      const clipNorm = r.optim.clipNorm !== undefined && r.optim.clipNorm > 0 ? r.optim.clipNorm : undefined
      return {
        params: trainableCount(variables),
        // WarmupStage's step: forward(video, train = true), the configured reconstruction loss
        step: () => trainStep({ variables, optimizer, ...(clipNorm !== undefined ? { clipNorm } : {}), lossFn: () => model.reconstructionLoss(clip, model.forward(clip, true).recon) }).loss,
        dispose: () => { optimizer.dispose(); model.dispose(); clip.dispose() }
      }
    }
  },
  {
    name: "vdm-pretrain-mini",
    shapeOf: "vdm-pretrain step of the quickstart (VdmPretrainConfig defaults): miniDiT without the control branch, 8 clips of 9×32×32, mini rectified-flow objective, clip 1, AdamW",
    request: async () => {
      const { VdmPretrainConfig } = await import("@vw2/diffusion")
      const { miniPreset } = await import("@vw2/dldm")
      const v = Schema.decodeUnknownSync(VdmPretrainConfig)({})
      const t = v.train
      return {
        name: "vdm-pretrain-mini", kind: "vdm", batch: t.batchSize, config: v.model, objective: v.objective,
        optim: { lr: t.lr, weightDecay: t.weightDecay, beta1: t.beta1, beta2: t.beta2, eps: 1e-8, clipNorm: t.clipNorm },
        // frames of the clip the stage trains on; the quickstart's MiniCraft frames are the dLDM's size
        clip: { length: v.clip.length, height: miniPreset.height, width: miniPreset.width }
      }
    },
    build: async (r) => {
      const { VideoDiT, rectifiedFlowLoss } = await import("@vw2/diffusion")
      const { AdamW, Init, trainStep } = await import("@vw2/nn")
      const dit = new VideoDiT(Init.seeded(0), r.config as import("@vw2/diffusion").VideoDiTConfig)
      const o = r.optim
      const optimizer = new AdamW({ lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay })
      const clip = r["clip"] as { length: number; height: number; width: number }
      const x0 = tf.tidy(() => tf.sub(tf.mul(video(r.batch, clip.length, clip.height, clip.width, 5), 2), 1)) // [−1, 1] as the stage feeds it
      const objective = r["objective"] as import("@vw2/diffusion").FlowObjectiveConfig
      const variables = dit.trainableVariables()
      let seed = 0
      return {
        params: trainableCount(variables),
        step: () => trainStep({ variables, optimizer, ...(o.clipNorm !== undefined ? { clipNorm: o.clipNorm } : {}), lossFn: () => rectifiedFlowLoss(dit, x0, undefined, undefined, { seed: seed++, objective }).loss }).loss,
        dispose: () => { optimizer.dispose(); dit.dispose(); x0.dispose() }
      }
    }
  },
  {
    name: "judge-mini",
    shapeOf: "craft-judge step (CraftJudgeConfig defaults): StepClassifier on batch 64 of 32×32 frames, 5 MiniCraft task heads, state CE + hand-mask BCE, AdamW",
    request: async () => {
      const { CraftJudgeConfig, classCount } = await import("@vw2/eval")
      const { MiniCraft } = await import("@vw2/data")
      const j = Schema.decodeUnknownSync(CraftJudgeConfig)({})
      const tasks = MiniCraft.defaultMiniCraftConfig.tasks
      const steps = tasks.map((t) => MiniCraft.getTask(t).steps.length)
      const { height, width } = MiniCraft.defaultMiniCraftConfig
      return {
        name: "judge-mini", kind: "judge", batch: j.train.batchSize,
        config: { ...j.model, height, width, taskNames: tasks, steps, tasks: tasks.length, classes: classCount({ steps }) },
        // JudgeTraining.ts: AdamW({ lr, weightDecay }) with @vw2/nn's default betas, no clipping
        optim: { lr: j.train.lr, weightDecay: j.train.weightDecay, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        handWeight: j.train.handWeight
      }
    },
    build: async (r) => {
      const { StepClassifier, classifierLoss } = await import("@vw2/eval")
      const { AdamW, Init, trainStep } = await import("@vw2/nn")
      const c = r.config as { channels: number; maxChannels: number; hidden: number; height: number; width: number; taskNames: ReadonlyArray<string>; steps: ReadonlyArray<number>; tasks: number; classes: number }
      const model = new StepClassifier(Init.seeded(0), { channels: c.channels, maxChannels: c.maxChannels, hidden: c.hidden, height: c.height, width: c.width, tasks: c.taskNames, steps: c.steps })
      const optimizer = new AdamW({ lr: r.optim.lr, weightDecay: r.optim.weightDecay })
      const B = r.batch
      const [h2, w2] = [Math.ceil(c.height / 2), Math.ceil(c.width / 2)]
      // a fixed batch (JudgeTraining renders and degrades frames on the host; that is data loading, not the step)
      const frames = tf.randomUniform([B, c.height, c.width, 3], 0, 1, "float32", 6) as tf.Tensor4D
      const targets = tf.tidy(() => ({
        labels: tf.cast(tf.floor(tf.randomUniform([B, c.tasks], -1, c.classes, "float32", 7)), "int32") as tf.Tensor2D,
        weights: tf.randomUniform([B, c.tasks], 0, 1, "float32", 8) as tf.Tensor2D,
        hand: tf.cast(tf.less(tf.randomUniform([B, h2, w2], 0, 1, "float32", 9), 0.05), "float32") as tf.Tensor3D,
        handWeights: tf.ones([B]) as tf.Tensor1D
      }))
      const variables = model.trainableVariables()
      const handWeight = r["handWeight"] as number
      return {
        params: trainableCount(variables),
        step: () => trainStep({ variables, optimizer, lossFn: () => classifierLoss(model, frames, targets, handWeight) }).loss,
        dispose: () => { optimizer.dispose(); model.dispose(); tf.dispose([frames, targets.labels, targets.weights, targets.hand, targets.handWeights]) }
      }
    }
  }
]

/**
 * Median train-step time of a twin's tfjs side on the active backend: `warmup` untimed steps, then until
 * `budgetMs` (≥ minSteps). Throws when the timed steps leave tensors behind (a leaking step also slows down).
 */
export const timeTwin = async (
  bench: TwinBench, request: TwinRequest, budgetMs: number, warmup = 3, minSteps = 5
): Promise<{ stepMs: number; cpuMs: number; steps: number; params: number; firstLoss: number; lastLoss: number }> => {
  const model = await bench.build(request)
  try {
    const firstLoss = model.step()
    for (let i = 1; i < warmup; i++) model.step()
    const warm = tf.memory().numTensors
    const times: Array<number> = []
    // process CPU time (all threads) per step: on a shared machine it moves less with the load than wall time
    const cpu: Array<number> = []
    let lastLoss = firstLoss
    const start = performance.now()
    while (times.length < 60 && (times.length < minSteps || performance.now() - start < budgetMs)) {
      const t0 = performance.now()
      const c0 = process.cpuUsage()
      lastLoss = model.step()
      const c = process.cpuUsage(c0)
      times.push(performance.now() - t0)
      cpu.push((c.user + c.system) / 1000)
    }
    const leaked = tf.memory().numTensors - warm
    if (leaked !== 0) throw new Error(`${bench.name}: ${times.length} train steps leaked ${leaked} tensors`)
    const median = (xs: Array<number>) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    return { stepMs: median(times), cpuMs: median(cpu), steps: times.length, params: model.params, firstLoss, lastLoss }
  } finally {
    model.dispose()
  }
}
