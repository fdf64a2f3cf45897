/**
 * The robot action head (paper §4.3, CALVIN): a small MLP from the latent codes of one transition
 * (N FSQ indices, embedded) — plus, optionally, the robot's proprioceptive state at the transition's start,
 * which CALVIN policies also see — to the 7-d relative actions of the frames that transition spans.
 * Trained with an l2 loss on demonstrations tokenized by the dLDM.
 */
import * as tf from "@tensorflow/tfjs"
import { embedTokens } from "@vw2/ar"
import { Schema } from "effect"
import { Initializers, Linear, Module, type InitContext, type Param } from "@vw2/nn"
import { ConfigField } from "@vw2/core"

const { positiveInt, withDefault } = ConfigField

export const ACTION_DIM = 7
export const PROPRIO_DIM = 15

export const CalvinHeadModelConfig = Schema.Struct({
  /** width of each code's embedding */
  codeEmbedDim: positiveInt(32),
  hidden: positiveInt(256),
  /** hidden layers of the MLP */
  layers: positiveInt(2),
  /** feed robot_obs (15-d) alongside the codes */
  useProprio: withDefault(Schema.Boolean, true)
})
export type CalvinHeadModelConfig = typeof CalvinHeadModelConfig.Type

export interface CalvinHeadArchitecture extends CalvinHeadModelConfig {
  readonly codeVocab: number
  /** codes per transition (the dLDM's queries N) */
  readonly codesPerTransition: number
  /** env steps (frames) one transition spans; the head emits that many 7-d actions */
  readonly actionsPerTransition: number
}

export class CalvinHead extends Module {
  readonly arch: CalvinHeadArchitecture
  readonly codeEmbed: Param
  readonly hiddenLayers: ReadonlyArray<Linear>
  readonly out: Linear

  constructor(init: InitContext, arch: CalvinHeadArchitecture) {
    super(init)
    this.arch = arch
    this.codeEmbed = this.param("code_embed", [arch.codeVocab, arch.codeEmbedDim], Initializers.normal(0.02))
    const inputDim = arch.codesPerTransition * arch.codeEmbedDim + (arch.useProprio ? PROPRIO_DIM : 0)
    this.hiddenLayers = this.moduleList(
      "mlp",
      Array.from({ length: arch.layers }, (_, i) => new Linear(init, i === 0 ? inputDim : arch.hidden, arch.hidden))
    )
    this.out = this.module("out", new Linear(init, arch.hidden, arch.actionsPerTransition * ACTION_DIM))
  }

  /** codes [B, N] int, proprio [B, 15] → actions [B, actionsPerTransition, 7] */
  call(codes: tf.Tensor2D, proprio?: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, n] = codes.shape
      if (n !== this.arch.codesPerTransition) throw new Error(`calvin head: expected ${this.arch.codesPerTransition} codes per transition, got ${n}`)
      let x: tf.Tensor = tf.reshape(embedTokens(this.codeEmbed.v as tf.Tensor2D, tf.tidy(() => tf.cast(codes, "int32")).dataSync() as Int32Array, b), [b, n * this.arch.codeEmbedDim])
      if (this.arch.useProprio) {
        if (proprio === undefined || proprio.shape[1] !== PROPRIO_DIM) throw new Error(`calvin head: useProprio needs robot_obs [B, ${PROPRIO_DIM}]`)
        x = tf.concat([x, proprio], 1)
      }
      for (const layer of this.hiddenLayers) x = tf.relu(layer.call(x))
      return tf.reshape(this.out.call(x), [b, this.arch.actionsPerTransition, ACTION_DIM]) as tf.Tensor3D
    })
  }
}

/** Mean squared error between predicted and demonstrated actions (the paper's l2 loss). */
export const actionLoss = (head: CalvinHead, codes: tf.Tensor2D, proprio: tf.Tensor2D | undefined, actions: tf.Tensor3D): tf.Scalar =>
  tf.tidy(() => tf.mean(tf.square(tf.sub(head.call(codes, proprio), actions))) as tf.Scalar)
