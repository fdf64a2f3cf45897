/**
 * One AdamW step over many parameter tensors in one native op call (Vw2AdamW, packages/native/ops/adamw.cc).
 *
 * The tfjs formulation costs ~14 eager ops per parameter tensor; this is one op per step. @vw2/nn's AdamW
 * uses it when `fusedAdamWAvailable()`, and its own tfjs path (the reference the tests compare with) otherwise.
 */
import * as tf from "@tensorflow/tfjs"
import { executeNativeOp, nativeAttr, nativeOpAvailable } from "./NativeOps.ts"

export const FUSED_ADAMW_OP = "Vw2AdamW"

export interface FusedAdamWInput {
  readonly params: ReadonlyArray<tf.Tensor>
  readonly grads: ReadonlyArray<tf.Tensor>
  readonly m: ReadonlyArray<tf.Tensor>
  readonly v: ReadonlyArray<tf.Tensor>
  /** per tensor: apply weight decay */
  readonly decay: ReadonlyArray<boolean>
  readonly lr: number
  readonly beta1: number
  readonly beta2: number
  readonly eps: number
  readonly weightDecay: number
  /** 1-based step count (for the bias corrections) */
  readonly step: number
  /** every gradient is multiplied by this first (global-norm clipping); default 1 */
  readonly gradScale?: number
}

export interface FusedAdamWOutput {
  readonly params: Array<tf.Tensor>
  readonly m: Array<tf.Tensor>
  readonly v: Array<tf.Tensor>
}

/** The native backend is active and the op library has Vw2AdamW. */
export const fusedAdamWAvailable = (): boolean => nativeOpAvailable(FUSED_ADAMW_OP)

/**
 * New params, m and v (new tensors; the inputs are untouched). Scalars are derived in float64 here and
 * rounded to float32 once, as tfjs does for the scalar operands of the reference path.
 */
export const fusedAdamW = (input: FusedAdamWInput): FusedAdamWOutput => {
  const n = input.params.length
  for (const [label, list] of [["grads", input.grads], ["m", input.m], ["v", input.v], ["decay", input.decay]] as const) {
    if (list.length !== n) throw new Error(`fusedAdamW: ${n} params but ${list.length} ${label}`)
  }
  if (n === 0) return { params: [], m: [], v: [] }
  const { beta1, beta2, lr } = input
  // order: packages/native/ops/adamw.cc `enum Hyper`
  const hyper = tf.tensor1d([
    beta1, 1 - beta1, beta2, 1 - beta2,
    1 - Math.pow(beta1, input.step), 1 - Math.pow(beta2, input.step),
    input.eps, 1 - lr * input.weightDecay, lr, input.gradScale ?? 1
  ], "float32")
  try {
    const out = executeNativeOp(
      FUSED_ADAMW_OP,
      [...input.params, ...input.grads, ...input.m, ...input.v, hyper],
      [nativeAttr.int("N", n), nativeAttr.bool("decay", input.decay)],
      3 * n
    )
    return { params: out.slice(0, n), m: out.slice(n, 2 * n), v: out.slice(2 * n) }
  } finally {
    hyper.dispose()
  }
}
