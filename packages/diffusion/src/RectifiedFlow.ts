/**
 * The diffusion objective and sampler of the VideoWorld 2 release (Cosmos-Predict2 "rectified-flow
 * scaling" inside EDM's σ-parametrisation, σ_data = 1), with two switches of ours for the mini preset
 * (docs/paper.md "Facts from the authors' released code", diffusion objective):
 *
 *   training:  σ = exp(N(p_mean, p_std)) · √(latent frames),  t = σ / (1 + σ)
 *              x_σ = x0 + σ·ε,  network input (1 − t)·x_σ = (1 − t)·x0 + t·ε,  network time t
 *              x0_pred = (1 − t)·x_σ − t·F      (F: the network's velocity output)
 *              loss = mean over un-conditioned frames of (σ² + 1)/σ² · (x0_pred − x0)²
 *   sampling:  Karras schedule (σ 80 → 0.002, ρ 7), probability-flow ODE dx/dσ = (x − D(x, σ)) / σ,
 *              classifier-free guidance D = D_cond + g · (D_cond − D_uncond) (Cosmos convention, g = 7).
 *
 * Switches (authors' values are the defaults):
 * - `preconditioning: "edm"` (Karras et al. 2022, Table 1) with `sigmaData` σ_d: input c_in·x_σ,
 *   x0_pred = c_skip·x_σ + c_out·F with c_in = 1/√(σ²+σ_d²), c_skip = σ_d²/(σ²+σ_d²), c_out = σσ_d/√(σ²+σ_d²);
 *   loss weight (σ² + σ_d²)/(σσ_d)². A small σ_d makes an untrained network (F = 0) predict ≈ 0.
 * - `residual`: the diffused signal is the change from the first frame, s = x − x_first (the first frame is
 *   added back after denoising). Together with edm and a small σ_d, the untrained DiT is "repeat the first
 *   frame", and training only has to learn the motion.
 *
 * Conditioning frames (the first frame, as in video2world): their network input is the clean frame (in data
 * space, also when `residual`), their network time is `conditionFrameTime`, their x0_pred is replaced by the
 * ground truth and their loss is masked. Tensors are channels-last videos `[B, T, H, W, C]` (B batch,
 * T frames, H×W pixels/latents, C channels).
 */
import * as tf from "@tensorflow/tfjs"
import { karrasSigmas, type KarrasScheduleConfig, defaultKarrasSchedule } from "./KarrasSchedule.ts"

/** How the noisy input and the network output combine into x0_pred. */
export type Preconditioning = "rectified-flow" | "edm"
export const preconditionings: ReadonlyArray<Preconditioning> = ["rectified-flow", "edm"]

export interface FlowObjectiveConfig {
  /** mean of log σ / √frames (authors' code: 0) */
  readonly pMean: number
  /** std of log σ / √frames (authors' code: 1) */
  readonly pStd: number
  /** multiply σ by √(latent frames): longer videos need more noise to hide the same content (authors' code: on) */
  readonly scaleSigmaByFrames: boolean
  /** leading frames given clean as condition, loss-masked (video2world: 1) */
  readonly conditionFrames: number
  /** network time fed for conditioning frames (0 = clean) */
  readonly conditionFrameTime: number
  /** "rectified-flow" (authors' code) or "edm" scalings; absent = "rectified-flow" */
  readonly preconditioning?: Preconditioning
  /** σ_data, the diffused signal's scale (authors' code: 1); absent = 1 */
  readonly sigmaData?: number
  /** diffuse x − x_first instead of x (ours; authors' code: off); absent = off */
  readonly residual?: boolean
  /** the sampler's default Karras range (authors' code: 80 … 0.002). A network never trained near σ_max
   * denoises garbage there, and a few-step schedule never recovers: keep σ_max inside the training σ range */
  readonly samplingSigmaMax?: number
  readonly samplingSigmaMin?: number
}

export const defaultFlowObjective: FlowObjectiveConfig = {
  pMean: 0,
  pStd: 1,
  scaleSigmaByFrames: true,
  conditionFrames: 1,
  conditionFrameTime: 0,
  preconditioning: "rectified-flow",
  sigmaData: 1,
  residual: false,
  samplingSigmaMax: 80,
  samplingSigmaMin: 0.002
}

/**
 * The mini preset's objective (ours): the diffused signal is the change from the first frame, which is small
 * (most pixels do not move: its rms is ≈ 0.14 on MiniCraft 32 px clips in [−1, 1]), so edm scalings with
 * σ_d = 0.1 and training σ around e^−0.5, not scaled by frames. The untrained DiT then equals
 * repeat-the-first-frame (plus c_skip·x_σ, ≈ 1 % of the noise at σ = 1) and training improves on it. Measured
 * (scripts/vdm-probe.ts, 300 steps at batch 8, lr 3e-3): held-out x0 mse at σ = 1 0.0036 vs repeat 0.0047 with
 * σ_d = 0.1; with σ_d = 0.25 the l1 stayed ~1.7× repeat's after 100 steps (the skip passes more noise at σ = 1).
 */
export const miniFlowObjective: FlowObjectiveConfig = {
  // median training σ e^−2 ≈ 0.14 ≈ σ_data, as EDM's p_mean −1.2 is for σ_data 0.5: measured at 200 pretraining steps,
  // p_mean −0.5 left the low-σ end untrained (x0 L1 at σ = 0.2 .0229 → .0196, sample mse .0271 → .0195 with −2)
  pMean: -2,
  pStd: 1.2,
  scaleSigmaByFrames: false,
  conditionFrames: 1,
  conditionFrameTime: 0,
  preconditioning: "edm",
  sigmaData: 0.1,
  residual: true,
  // e^(−2 + 2·1.2) ≈ 1.5 is the 97.5th percentile of the training σ; the residual (std ≈ 0.14) is buried at 5
  samplingSigmaMax: 5,
  samplingSigmaMin: 0.002
}

/** The Karras schedule an objective samples with by default (its sampling range, ρ = 7). */
export const samplingSchedule = (config: FlowObjectiveConfig): KarrasScheduleConfig => ({
  ...defaultKarrasSchedule,
  sigmaMax: config.samplingSigmaMax ?? defaultKarrasSchedule.sigmaMax,
  sigmaMin: config.samplingSigmaMin ?? defaultKarrasSchedule.sigmaMin
})

/** What the objective needs from a network: the velocity F for a scaled input, per-frame time and the
 * per-frame condition flag (1 = clean conditioning frame). */
export type VelocityNet = (input: {
  /** [B, T, H, W, C] network input (1 − t)·x_σ, with conditioning frames replaced by the clean frames */
  readonly x: tf.Tensor
  /** [B, T] network time t ∈ [0, 1) per frame */
  readonly time: tf.Tensor
  /** [B, T] 1 for conditioning frames, else 0 */
  readonly conditionMask: tf.Tensor
}) => tf.Tensor

/** t = σ / (1 + σ): the rectified-flow time of an EDM noise level. */
export const sigmaToTime = (sigma: tf.Tensor): tf.Tensor => tf.tidy(() => tf.div(sigma, tf.add(sigma, 1)))

/** EDM loss weight (σ² + σ_d²) / (σ·σ_d)²; σ_d = 1 gives the authors' (σ² + 1) / σ². */
export const lossWeight = (sigma: tf.Tensor, sigmaData = 1): tf.Tensor =>
  tf.tidy(() => {
    const s2 = tf.square(sigma)
    const d2 = sigmaData * sigmaData
    return tf.div(tf.add(s2, d2), tf.mul(s2, d2))
  })

/** Per-sample scalings for noise levels `sigma` [B]: network input c_in·x_σ, x0_pred = c_skip·x_σ + c_out·F, network time. */
export interface Preconditioners {
  readonly cIn: tf.Tensor
  readonly cSkip: tf.Tensor
  readonly cOut: tf.Tensor
  readonly time: tf.Tensor
}

export const preconditioners = (sigma: tf.Tensor, config: FlowObjectiveConfig = defaultFlowObjective): Preconditioners =>
  tf.tidy(() => {
    const time = sigmaToTime(sigma)
    if ((config.preconditioning ?? "rectified-flow") === "rectified-flow") {
      const keep = tf.sub(1, time)
      return { cIn: keep, cSkip: keep, cOut: tf.neg(time), time }
    }
    const d = config.sigmaData ?? 1
    const total = tf.add(tf.square(sigma), d * d) // σ² + σ_d²
    const cIn = tf.rsqrt(total)
    return { cIn, cSkip: tf.div(d * d, total), cOut: tf.mul(tf.mul(sigma, d), cIn), time }
  })

/** Checks the objective fields that need it, naming the config path. */
export const validateFlowObjective = (config: FlowObjectiveConfig, path = "objective"): void => {
  const p = config.preconditioning ?? "rectified-flow"
  if (!preconditionings.includes(p)) throw new Error(`${path}.preconditioning: expected one of ${preconditionings.join(", ")}, got ${JSON.stringify(p)}`)
  if (!((config.sigmaData ?? 1) > 0)) throw new Error(`${path}.sigmaData: expected > 0, got ${config.sigmaData}`)
  const { sigmaMin, sigmaMax } = samplingSchedule(config)
  if (!(sigmaMin > 0 && sigmaMax > sigmaMin)) {
    throw new Error(`${path}.samplingSigmaMax: expected 0 < samplingSigmaMin (${sigmaMin}) < samplingSigmaMax (${sigmaMax})`)
  }
  if (config.residual === true && config.conditionFrames < 1) {
    throw new Error(`${path}.residual: the residual is taken from the first frame, which must be a condition (conditionFrames ≥ 1)`)
  }
}

/** [B] training noise levels from a standard-normal draw `normal` [B]: exp(p_mean + p_std·n) · √frames. */
export const trainingSigmas = (normal: tf.Tensor, frames: number, config: FlowObjectiveConfig = defaultFlowObjective): tf.Tensor =>
  tf.tidy(() => {
    const base = tf.exp(tf.add(tf.mul(normal, config.pStd), config.pMean))
    return config.scaleSigmaByFrames ? tf.mul(base, Math.sqrt(frames)) : base
  })

const assertVideo = (x: tf.Tensor, what: string): void => {
  if (x.rank !== 5) throw new Error(`${what}: expected a video tensor [B, T, H, W, C], got shape [${x.shape.join(", ")}]`)
}

/**
 * Per-sample [B] or per-frame [B|1, T] values repeated over a [B, T, H, W, C] video, as a full tensor: a
 * rank-1 matmul against ones, because broadcasting element-wise ops are ~5–10× slower (forward and
 * backward) on tfjs's pure-JS backend.
 */
export const expandToVideo = (values: tf.Tensor, shape: ReadonlyArray<number>): tf.Tensor =>
  tf.tidy(() => {
    const [b, t, h, w, c] = shape as [number, number, number, number, number]
    const perFrame = values.rank === 1 ? tf.matMul(tf.reshape(values, [b, 1]), tf.ones([1, t])) : values // [B|1, T]
    const rows = tf.reshape(perFrame, [-1, 1]) // [B·T, 1]
    const full = tf.reshape(tf.matMul(rows, tf.ones([1, h * w * c])), [perFrame.shape[0]!, t, h, w, c])
    return full.shape[0] === b ? full : tf.tile(full, [b, 1, 1, 1, 1])
  })

/** [1, T] mask with 1 on the first `conditionFrames` frames. */
export const conditionMaskFor = (frames: number, conditionFrames: number): tf.Tensor2D => {
  if (conditionFrames < 0 || conditionFrames >= frames) {
    throw new Error(`diffusion.objective.conditionFrames: expected 0 ≤ conditionFrames < frames (${frames}), got ${conditionFrames}`)
  }
  const m = new Float32Array(frames)
  m.fill(1, 0, conditionFrames)
  return tf.tensor2d(m, [1, frames])
}

/**
 * The diffused signal of a clean video x [B, T, H, W, C]: x itself, or with `residual` x − x_first (frame 0
 * of `reference`, default x). Conditioning frames of the signal are then 0 when x is its own reference.
 */
export const toSignal = (x: tf.Tensor, config: FlowObjectiveConfig, reference: tf.Tensor = x): tf.Tensor =>
  config.residual === true ? tf.tidy(() => tf.sub(x, firstFrameRepeated(reference, x.shape))) : tf.clone(x)

/** Inverse of `toSignal`: signal s → video (adds the first frame of `reference` back when `residual`). */
export const fromSignal = (s: tf.Tensor, config: FlowObjectiveConfig, reference: tf.Tensor | undefined): tf.Tensor => {
  if (config.residual !== true) return tf.clone(s)
  if (reference === undefined) throw new Error("objective.residual: needs the clean first frame (cleanCondition)")
  return tf.tidy(() => tf.add(s, firstFrameRepeated(reference, s.shape)))
}

/** Frame 0 of `video` repeated to `shape` [B, T, H, W, C] (a concat of slices: no broadcasting op). */
const firstFrameRepeated = (video: tf.Tensor, shape: ReadonlyArray<number>): tf.Tensor =>
  tf.tidy(() => {
    const first = tf.slice(video, [0, 0], [-1, 1])
    return tf.concat(new Array<tf.Tensor>(shape[1]!).fill(first), 1)
  })

/**
 * D(x_σ, σ): the denoised estimate of the signal for noisy signals `xSigma` at per-sample noise `sigma` [B].
 * Signal = the video, or its change from the first frame with `residual` (see `toSignal`). `cleanCondition`
 * [B, T, H, W, C] supplies the conditioning frames' clean content in data space (only its first
 * `conditionFrames` frames are read); they enter the network as they are and replace its output there.
 */
export const denoise = (
  net: VelocityNet,
  xSigma: tf.Tensor,
  sigma: tf.Tensor,
  cleanCondition: tf.Tensor | undefined,
  config: FlowObjectiveConfig = defaultFlowObjective
): tf.Tensor =>
  tf.tidy(() => {
    assertVideo(xSigma, "denoise(xSigma)")
    if (config.residual === true && cleanCondition === undefined) throw new Error("objective.residual: needs the clean first frame (cleanCondition)")
    const [B, T] = xSigma.shape as [number, number, number, number, number]
    const pre = preconditioners(sigma, config) // each [B]
    const scaled = tf.mul(expandToVideo(pre.cIn, xSigma.shape), xSigma)
    const nConds = cleanCondition === undefined ? 0 : config.conditionFrames
    const maskBT = tf.tile(conditionMaskFor(T, nConds), [B, 1])
    const mask5 = expandToVideo(maskBT, xSigma.shape)
    const keep = tf.sub(1, mask5)
    const input = cleanCondition === undefined ? scaled : tf.add(tf.mul(mask5, cleanCondition), tf.mul(keep, scaled))
    const timeBT = tf.add(tf.mul(maskBT, config.conditionFrameTime), tf.mul(tf.sub(1, maskBT), tf.reshape(pre.time, [B, 1])))
    const velocity = net({ x: input, time: timeBT, conditionMask: maskBT })
    if (velocity.shape.join() !== xSigma.shape.join()) {
      throw new Error(`velocity net output [${velocity.shape.join(", ")}] must match its input [${xSigma.shape.join(", ")}]`)
    }
    const x0 = tf.add(tf.mul(expandToVideo(pre.cSkip, xSigma.shape), xSigma), tf.mul(expandToVideo(pre.cOut, xSigma.shape), velocity))
    if (cleanCondition === undefined) return x0
    return tf.add(tf.mul(mask5, toSignal(cleanCondition, config)), tf.mul(keep, x0))
  })

export interface FlowLossParts {
  /** scalar weighted loss (what is minimised) */
  readonly loss: tf.Scalar
  /** [B] noise levels used */
  readonly sigma: tf.Tensor
  /** scalar un-weighted MSE of x0_pred over the loss-bearing frames (for logging) */
  readonly mse: tf.Scalar
}

/**
 * The training loss on clean videos `x0` [B, T, H, W, C]. `noise` ([B,T,H,W,C]) and `sigmaNormal` ([B])
 * are the standard-normal draws; pass them for exact tests, or a `seed` to draw them.
 * The first `conditionFrames` frames are given clean and carry no loss.
 */
export const rectifiedFlowObjective = (
  net: VelocityNet,
  x0: tf.Tensor,
  options: {
    readonly seed?: number
    readonly noise?: tf.Tensor
    readonly sigmaNormal?: tf.Tensor
    readonly config?: FlowObjectiveConfig
    /** [B, T, H, W, C] per-element weight of the loss (not of the logged mse), e.g. more weight on pixels that
     * move; omitted = 1 everywhere (authors) */
    readonly elementWeight?: tf.Tensor
  }
): FlowLossParts => {
  const config = options.config ?? defaultFlowObjective
  validateFlowObjective(config)
  assertVideo(x0, "rectifiedFlowObjective(x0)")
  const [B, T] = x0.shape as [number, number, number, number, number]
  const seed = options.seed ?? 0
  return tf.tidy(() => {
    const normal = options.sigmaNormal ?? tf.randomNormal([B], 0, 1, "float32", seed)
    const eps = options.noise ?? tf.randomNormal(x0.shape, 0, 1, "float32", seed + 7919)
    const sigma = trainingSigmas(normal, T, config)
    const signal = toSignal(x0, config) // = x0, or x0 − x0_first (residual)
    const xSigma = tf.add(signal, tf.mul(expandToVideo(sigma, x0.shape), eps))
    const pred = denoise(net, xSigma, sigma, config.conditionFrames > 0 ? x0 : undefined, config)
    const lossFrames = expandToVideo(tf.sub(1, conditionMaskFor(T, config.conditionFrames)), x0.shape)
    // x0_pred − x0 = s_pred − s: the error is the same in data and signal space
    const sq = tf.mul(tf.square(tf.sub(pred, signal)), lossFrames)
    const perElementCount = (x0.size / T) * (T - config.conditionFrames)
    const sqWeighted = options.elementWeight === undefined ? sq : tf.mul(sq, options.elementWeight)
    const weighted = tf.mul(sqWeighted, expandToVideo(lossWeight(sigma, config.sigmaData ?? 1), x0.shape))
    const loss = tf.div(tf.sum(weighted), perElementCount) as tf.Scalar
    const mse = tf.div(tf.sum(sq), perElementCount) as tf.Scalar
    return { loss, sigma, mse }
  })
}

export type OdeSolver = "euler" | "heun"

export interface SamplerConfig {
  /** number of noise levels (authors' code: 35) */
  readonly steps: number
  /** classifier-free guidance g in D_cond + g·(D_cond − D_uncond); 0 disables (authors' code: 7) */
  readonly cfg: number
  /** Euler (1 network call per step) or Heun (2nd order, EDM Algorithm 1) */
  readonly solver: OdeSolver
  readonly schedule: KarrasScheduleConfig
}

export const defaultSampler: SamplerConfig = { steps: 35, cfg: 7, solver: "heun", schedule: defaultKarrasSchedule }

/**
 * Integrates the probability-flow ODE from pure noise at σ_max to σ = 0 and returns x0 [B, T, H, W, C].
 * `netCond`/`netUncond` are the conditional and unconditional velocity nets (unconditional is only called
 * when cfg ≠ 0). `cleanCondition` supplies the conditioning frames (first `conditionFrames` frames).
 */
export const sampleVideo = (
  nets: { readonly cond: VelocityNet; readonly uncond?: VelocityNet },
  shape: readonly [number, number, number, number, number],
  options: {
    readonly seed: number
    readonly cleanCondition?: tf.Tensor
    readonly sampler?: Partial<SamplerConfig>
    readonly objective?: FlowObjectiveConfig
    /** called after each step (done, total) */
    readonly onStep?: (done: number, total: number) => void
  }
): tf.Tensor => {
  const objective = options.objective ?? defaultFlowObjective
  const sampler = { ...defaultSampler, schedule: samplingSchedule(objective), ...options.sampler }
  validateFlowObjective(objective)
  if (sampler.cfg !== 0 && nets.uncond === undefined) throw new Error("sampler.cfg ≠ 0 needs an unconditional net")
  const sigmas = karrasSigmas(sampler.steps, sampler.schedule)
  const [B] = shape
  const guided = (x: tf.Tensor, s: number): tf.Tensor =>
    tf.tidy(() => {
      const sigma = tf.fill([B], s)
      const dCond = denoise(nets.cond, x, sigma, options.cleanCondition, objective)
      if (sampler.cfg === 0 || nets.uncond === undefined) return dCond
      const dUncond = denoise(nets.uncond, x, sigma, options.cleanCondition, objective)
      return tf.add(dCond, tf.mul(tf.sub(dCond, dUncond), sampler.cfg))
    })
  let x = tf.tidy(() => tf.mul(tf.randomNormal([...shape], 0, 1, "float32", options.seed), sigmas[0]!))
  for (let i = 0; i < sampler.steps; i++) {
    const s = sigmas[i]!
    const sNext = sigmas[i + 1]!
    const next = tf.tidy(() => {
      const d = tf.div(tf.sub(x, guided(x, s)), s)
      const euler = tf.add(x, tf.mul(d, sNext - s))
      if (sampler.solver === "euler" || sNext === 0) return euler
      const d2 = tf.div(tf.sub(euler, guided(euler, sNext)), sNext)
      return tf.add(x, tf.mul(tf.add(d, d2), (sNext - s) / 2))
    })
    x.dispose()
    x = next
    options.onStep?.(i + 1, sampler.steps)
  }
  if (options.cleanCondition === undefined || objective.conditionFrames === 0) return x
  const T = shape[1]
  const out = tf.tidy(() => {
    const mask = conditionMaskFor(T, objective.conditionFrames).reshape([1, T, 1, 1, 1])
    return tf.add(tf.mul(mask, options.cleanCondition!), tf.mul(tf.sub(1, mask), fromSignal(x, objective, options.cleanCondition)))
  })
  x.dispose()
  return out
}
