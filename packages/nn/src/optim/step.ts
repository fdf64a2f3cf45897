/** Gradients by hierarchical parameter name, and one optimizer step (grad → clip → AdamW). */
import * as tf from "@tensorflow/tfjs"
import type { AdamW } from "./AdamW.ts"
import { clipScale, globalNorm } from "./clip.ts"

/**
 * Loss value and d loss / d variable for every variable the loss depends on, keyed by our names.
 * Variables without a path to the loss are absent from `grads`. Extra scalars returned under `aux`
 * (e.g. loss components) are read out as numbers.
 */
export function computeGradients(
  variables: ReadonlyMap<string, tf.Variable>,
  lossFn: () => { loss: tf.Scalar; aux?: Record<string, tf.Scalar> } | tf.Scalar
): { loss: number; aux: Record<string, number>; grads: Map<string, tf.Tensor> } {
  const byTfName = new Map<string, string>()
  for (const [name, v] of variables) byTfName.set(v.name, name)
  const aux: Record<string, number> = {}
  const { value, grads } = tf.variableGrads(() => {
    const out = lossFn()
    if (out instanceof tf.Tensor) return out
    for (const [k, t] of Object.entries(out.aux ?? {})) aux[k] = t.dataSync()[0]!
    return out.loss
  }, [...variables.values()])
  const loss = value.dataSync()[0]!
  value.dispose()
  const named = new Map<string, tf.Tensor>()
  for (const [tfName, g] of Object.entries(grads)) {
    const name = byTfName.get(tfName)
    if (name === undefined) g.dispose()
    else named.set(name, g)
  }
  return { loss, aux, grads: named }
}

export interface TrainStepOptions {
  readonly variables: ReadonlyMap<string, tf.Variable>
  readonly optimizer: AdamW
  readonly lossFn: () => { loss: tf.Scalar; aux?: Record<string, tf.Scalar> } | tf.Scalar
  /** learning rate for this step (from a schedule); default: the optimizer's */
  readonly lr?: number
  /** global-norm clip; default none */
  readonly clipNorm?: number
}

/** Forward, backward, clip, AdamW update. Returns the loss, aux scalars and the pre-clip gradient norm. */
export function trainStep(o: TrainStepOptions): { loss: number; aux: Record<string, number>; gradNorm: number } {
  const { loss, aux, grads } = computeGradients(o.variables, o.lossFn)
  if (!Number.isFinite(loss)) {
    for (const g of grads.values()) g.dispose()
    throw new Error(`trainStep: loss is ${loss}`)
  }
  // clipping is the optimizer's gradScale (clip_grad_norm_'s factor), not a scaled copy of every gradient
  const gradNorm = globalNorm(grads)
  try {
    o.optimizer.apply(o.variables, grads, o.lr ?? o.optimizer.lr, clipScale(gradNorm, o.clipNorm ?? Infinity))
  } finally {
    for (const g of grads.values()) g.dispose()
  }
  return { loss, aux, gradNorm }
}
