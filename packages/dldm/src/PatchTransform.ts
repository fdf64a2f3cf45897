/**
 * The fixed change of basis of patch vectors before the encoder's embedding and after the decoder's head:
 * identity ("linear" patching) or the orthonormal 3D Haar transform H ("haar", the authors' encoder).
 * Haar is fused into the adjacent linear layers — tokens·H·W = tokens·(H·W) — so its cost is one P×P×D
 * product per step instead of one P×P product per token; the learned weights live in the Haar domain.
 */
import * as tf from "@tensorflow/tfjs"
import { haarPatchMatrix, type Linear } from "@vw2/nn"
import type { DldmConfig } from "./DldmConfig.ts"

export class PatchTransform {
  /** H [P, P]: coefficients = tokens · H */
  private haar: tf.Tensor2D | undefined

  constructor(config: DldmConfig, meta: boolean) {
    this.haar =
      config.patching === "haar" && !meta ? haarPatchMatrix({ t: config.temporalCompression, s: config.spatialCompression }, 3) : undefined
  }

  /** tokens [..., P] → linear(tokens · H) [..., D] */
  projectIn(tokens: tf.Tensor, linear: Linear): tf.Tensor {
    return tf.tidy(() => {
      if (this.haar === undefined) return linear.call(tokens)
      const lead = tokens.shape.slice(0, -1)
      const w = tf.matMul(this.haar, linear.weight.v as tf.Tensor2D) // [P, D]
      let y: tf.Tensor = tf.matMul(tf.reshape(tokens, [-1, linear.inFeatures]), w)
      if (linear.bias !== undefined) y = tf.add(y, linear.bias.v)
      return tf.reshape(y, [...lead, linear.outFeatures])
    })
  }

  /** hidden [..., D] → linear(hidden) · Hᵀ [..., P] (back to pixel patches) */
  projectOut(hidden: tf.Tensor, linear: Linear): tf.Tensor {
    return tf.tidy(() => {
      if (this.haar === undefined) return linear.call(hidden)
      const lead = hidden.shape.slice(0, -1)
      const w = tf.matMul(linear.weight.v as tf.Tensor2D, this.haar, false, true) // [D, P]
      let y: tf.Tensor = tf.matMul(tf.reshape(hidden, [-1, linear.inFeatures]), w)
      if (linear.bias !== undefined) y = tf.add(y, tf.matMul(tf.reshape(linear.bias.v, [1, -1]), this.haar, false, true))
      return tf.reshape(y, [...lead, linear.outFeatures])
    })
  }

  dispose(): void {
    this.haar?.dispose()
    this.haar = undefined
  }
}
