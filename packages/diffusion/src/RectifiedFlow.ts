/**
 * The diffusion objective and sampler of the VideoWorld 2 release (Cosmos-Predict2 "rectified-flow
 * scaling" inside EDM's σ-parametrisation, σ_data = 1):
 *
 *   training:  σ = exp(N(p_mean, p_std)) · √(latent frames),  t = σ / (1 + σ)
 *              x_σ = x0 + σ·ε,  network input (1 − t)·x_σ = (1 − t)·x0 + t·ε,  network time t
 *              x0_pred = (1 − t)·x_σ − t·F      (F: the network's velocity output)
 *              loss = mean over un-conditioned frames of (σ² + 1)/σ² · (x0_pred − x0)²
 *   sampling:  Karras schedule (σ 80 → 0.002, ρ 7), probability-flow ODE dx/dσ = (x − D(x, σ)) / σ,
 *              classifier-free guidance D = D_cond + g · (D_cond − D_uncond) (Cosmos convention, g = 7).
 *
 * Conditioning frames (the first frame, as in video2world): their network input is the clean frame, their
 * network time is `conditionFrameTime`, their x0_pred is replaced by the ground truth and their loss is
 * masked. Tensors are channels-last videos `[B, T, H, W, C]` (B batch, T frames, H×W pixels/latents, C channels).
 */
import * as tf from "@tensorflow/tfjs"
import { karrasSigmas, type KarrasScheduleConfig, defaultKarrasSchedule } from "./KarrasSchedule.ts"

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
}

export const defaultFlowObjective: FlowObjectiveConfig = {
  pMean: 0,
  pStd: 1,
  scaleSigmaByFrames: true,
  conditionFrames: 1,
  conditionFrameTime: 0
}

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

/** EDM loss weight with σ_data = 1: (σ² + 1) / σ². */
export const lossWeight = (sigma: tf.Tensor): tf.Tensor =>
  tf.tidy(() => {
    const s2 = tf.square(sigma)
    return tf.div(tf.add(s2, 1), s2)
  })

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
 * D(x_σ, σ): the denoised estimate x0_pred for noisy videos `xSigma` at per-sample noise `sigma` [B].
 * `cleanCondition` [B, T, H, W, C] supplies the conditioning frames' clean content (only its first
 * `conditionFrames` frames are read).
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
    const [B, T] = xSigma.shape as [number, number, number, number, number]
    const tB = sigmaToTime(sigma) // [B]
    const t = expandToVideo(tB, xSigma.shape)
    const scaled = tf.mul(tf.sub(1, t), xSigma)
    const nConds = cleanCondition === undefined ? 0 : config.conditionFrames
    const maskBT = tf.tile(conditionMaskFor(T, nConds), [B, 1])
    const mask5 = expandToVideo(maskBT, xSigma.shape)
    const keep = tf.sub(1, mask5)
    const input = cleanCondition === undefined ? scaled : tf.add(tf.mul(mask5, cleanCondition), tf.mul(keep, scaled))
    const timeBT = tf.add(tf.mul(maskBT, config.conditionFrameTime), tf.mul(tf.sub(1, maskBT), tf.reshape(tB, [B, 1])))
    const velocity = net({ x: input, time: timeBT, conditionMask: maskBT })
    if (velocity.shape.join() !== xSigma.shape.join()) {
      throw new Error(`velocity net output [${velocity.shape.join(", ")}] must match its input [${xSigma.shape.join(", ")}]`)
    }
    const x0 = tf.sub(scaled, tf.mul(t, velocity))
    return cleanCondition === undefined ? x0 : tf.add(tf.mul(mask5, cleanCondition), tf.mul(keep, x0))
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
  }
): FlowLossParts => {
  const config = options.config ?? defaultFlowObjective
  assertVideo(x0, "rectifiedFlowObjective(x0)")
  const [B, T] = x0.shape as [number, number, number, number, number]
  const seed = options.seed ?? 0
  return tf.tidy(() => {
    const normal = options.sigmaNormal ?? tf.randomNormal([B], 0, 1, "float32", seed)
    const eps = options.noise ?? tf.randomNormal(x0.shape, 0, 1, "float32", seed + 7919)
    const sigma = trainingSigmas(normal, T, config)
    const xSigma = tf.add(x0, tf.mul(expandToVideo(sigma, x0.shape), eps))
    const x0Pred = denoise(net, xSigma, sigma, config.conditionFrames > 0 ? x0 : undefined, config)
    const lossFrames = expandToVideo(tf.sub(1, conditionMaskFor(T, config.conditionFrames)), x0.shape)
    const sq = tf.mul(tf.square(tf.sub(x0Pred, x0)), lossFrames)
    const perElementCount = (x0.size / T) * (T - config.conditionFrames)
    const weighted = tf.mul(sq, expandToVideo(lossWeight(sigma), x0.shape))
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
  const sampler = { ...defaultSampler, ...options.sampler }
  const objective = options.objective ?? defaultFlowObjective
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
    return tf.add(tf.mul(mask, options.cleanCondition!), tf.mul(tf.sub(1, mask), x))
  })
  x.dispose()
  return out
}
