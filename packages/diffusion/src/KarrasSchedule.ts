/**
 * Karras et al. 2022 ("Elucidating the Design Space of Diffusion-Based Generative Models", eq. 5) noise
 * levels, as the VideoWorld 2 release samples with: σ from 80 down to 0.002 with ρ = 7, then a final 0.
 */

export interface KarrasScheduleConfig {
  /** smallest non-zero noise level (authors' code: 0.002) */
  readonly sigmaMin: number
  /** largest noise level, where sampling starts (authors' code: 80) */
  readonly sigmaMax: number
  /** curvature: larger ρ spends more steps at low noise (authors' code: 7) */
  readonly rho: number
}

export const defaultKarrasSchedule: KarrasScheduleConfig = { sigmaMin: 0.002, sigmaMax: 80, rho: 7 }

/**
 * `steps` noise levels σ_0 = σ_max > … > σ_{steps−1} = σ_min, followed by σ_steps = 0 (length steps + 1).
 * σ_i = (σ_max^{1/ρ} + i/(steps−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ
 */
export const karrasSigmas = (steps: number, config: KarrasScheduleConfig = defaultKarrasSchedule): Float64Array => {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`sampler.steps: expected an integer ≥ 1, got ${steps}`)
  const { sigmaMin, sigmaMax, rho } = config
  if (!(sigmaMin > 0 && sigmaMax > sigmaMin)) {
    throw new Error(`sampler schedule: expected 0 < sigmaMin < sigmaMax, got sigmaMin=${sigmaMin} sigmaMax=${sigmaMax}`)
  }
  if (!(rho > 0)) throw new Error(`sampler schedule: rho must be > 0, got ${rho}`)
  const out = new Float64Array(steps + 1)
  const hi = sigmaMax ** (1 / rho)
  const lo = sigmaMin ** (1 / rho)
  for (let i = 0; i < steps; i++) {
    const frac = steps === 1 ? 0 : i / (steps - 1)
    out[i] = (hi + frac * (lo - hi)) ** rho
  }
  out[steps] = 0
  return out
}
