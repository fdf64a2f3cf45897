/** Optimiser settings shared by the dLDM stages (AdamW + linear warm-up, then constant or cosine). */
import { AdamW, warmupConstant, warmupCosine, type CheckpointCadence } from "@vw2/nn"
import { Schema } from "effect"
import { int, nonNegInt, nonNegative, positive, withDefault } from "../internal/schema.ts"

export const OptimConfigSchema = Schema.Struct({
  /** peak learning rate (authors' warm-up: ≈ 4.3e-5 at batch 128; mini default is larger for a 1-minute run) */
  lr: positive(2e-3),
  /** linear warm-up steps (authors: 2000) */
  warmupSteps: nonNegInt(5),
  /** after warm-up: "constant" (authors' warm-up stage) or "cosine" decay to 10 % */
  schedule: withDefault(Schema.Literals(["constant", "cosine"]), "constant"),
  weightDecay: nonNegative(0.1),
  beta1: positive(0.9),
  beta2: positive(0.99),
  eps: positive(1e-8),
  /** global-norm gradient clip (0 = off) */
  clipNorm: nonNegative(1),
  batchSize: int(4)
})
export type OptimConfig = typeof OptimConfigSchema.Type

export function makeOptimizer(o: OptimConfig): AdamW {
  return new AdamW({ lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay })
}

export function makeSchedule(o: OptimConfig, totalSteps: number): (step: number) => number {
  return o.schedule === "cosine"
    ? warmupCosine({ peakLr: o.lr, warmupSteps: o.warmupSteps, totalSteps, minLr: 0.1 * o.lr })
    : warmupConstant(o.lr, o.warmupSteps)
}

export const clipOf = (o: OptimConfig): number | undefined => (o.clipNorm > 0 ? o.clipNorm : undefined)

/** A stage's `checkpointEvery` (> 0: every that many steps; 0: the harness's default) as training-harness options. */
export const resumeCadence = (everySteps: number): { checkpoint?: CheckpointCadence } => (everySteps > 0 ? { checkpoint: { everySteps } } : {})
