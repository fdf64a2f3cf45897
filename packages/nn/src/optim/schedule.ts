/** Learning-rate schedules as pure functions of the step (0-based). */

export interface WarmupCosineOptions {
  readonly peakLr: number
  readonly warmupSteps: number
  readonly totalSteps: number
  /** floor reached at the end of the cosine; default 0 */
  readonly minLr?: number
}

/** Linear warm-up from ~0 to peak over `warmupSteps`, then cosine decay to `minLr` at `totalSteps`. */
export function warmupCosine(o: WarmupCosineOptions): (step: number) => number {
  const minLr = o.minLr ?? 0
  return (step) => {
    if (o.warmupSteps > 0 && step < o.warmupSteps) return (o.peakLr * (step + 1)) / o.warmupSteps
    const span = Math.max(1, o.totalSteps - o.warmupSteps)
    const progress = Math.min(1, Math.max(0, (step - o.warmupSteps) / span))
    return minLr + 0.5 * (o.peakLr - minLr) * (1 + Math.cos(Math.PI * progress))
  }
}

/** Linear warm-up, then constant (the authors' dLDM warm-up schedule). */
export function warmupConstant(peakLr: number, warmupSteps: number): (step: number) => number {
  return (step) => (warmupSteps > 0 && step < warmupSteps ? (peakLr * (step + 1)) / warmupSteps : peakLr)
}
