/**
 * Σ x² over many tensors in one native op call (Vw2SumSquares, packages/native/ops/sum_squares.cc): the
 * global gradient norm² of clip_grad_norm_, which in tfjs ops costs 2N+1 eager ops for N parameter tensors.
 */
import * as tf from "@tensorflow/tfjs"
import { executeNativeOp, nativeAttr, nativeOpAvailable } from "./NativeOps.ts"

export const SUM_SQUARES_OP = "Vw2SumSquares"

/** The native backend is active and the op library has Vw2SumSquares. */
export const sumSquaresAvailable = (): boolean => nativeOpAvailable(SUM_SQUARES_OP)

/** A float32 scalar tensor: the sum of the squares of every element of `tensors` (at least one). */
export const sumSquares = (tensors: ReadonlyArray<tf.Tensor>): tf.Scalar => {
  if (tensors.length === 0) throw new Error("sumSquares: no tensors")
  return executeNativeOp(SUM_SQUARES_OP, tensors, [nativeAttr.int("N", tensors.length)], 1)[0] as tf.Scalar
}
