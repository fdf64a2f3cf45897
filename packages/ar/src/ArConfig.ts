/**
 * Config of the autoregressive transformer (paper: Cosmos AR 4B; here a GPT of the same shape at any
 * size). Saved in every checkpoint as `config.json`; evaluation rebuilds the model from it.
 */
import { Schema } from "effect"
import { ConfigField } from "@vw2/core"

const { positiveInt } = ConfigField

export const ArModelConfig = Schema.Struct({
  /** width of every token embedding */
  dim: positiveInt(64),
  /** transformer blocks */
  depth: positiveInt(2),
  heads: positiveInt(4),
  /** MLP hidden width = mlpRatio × dim */
  mlpRatio: positiveInt(4),
  /** image patch side in pixels; the first frame becomes (H/patch)·(W/patch) tokens */
  patchSize: positiveInt(8),
  /** previous clips whose codes stay in the context (the rest are dropped, oldest first) */
  historyClips: positiveInt(2)
})
export type ArModelConfig = typeof ArModelConfig.Type

/**
 * What the architecture is derived from besides ArModelConfig: the code layout of the dLDM that
 * tokenized the data, the instruction vocabulary and the frame size. Fixed by the data, not tunable.
 */
export interface ArDataShape {
  /** FSQ vocabulary (product of the levels: 1000 for [8,5,5,5]) */
  readonly codeVocab: number
  /** codes per clip = transitions per clip × queries N */
  readonly codesPerClip: number
  readonly textVocab: number
  readonly maxTextTokens: number
  readonly height: number
  readonly width: number
}

export interface ArArchitecture extends ArModelConfig, ArDataShape {}

/**
 * Special tokens of the code stream, after the FSQ codes:
 * BOS opens the stream, NEXT closes a clip when another follows, EOS closes the last clip (task done),
 * PAD fills batches (input only; never predicted).
 */
export const specialTokens = (codeVocab: number) => ({
  BOS: codeVocab,
  NEXT: codeVocab + 1,
  EOS: codeVocab + 2,
  PAD: codeVocab + 3
})

/** Tokens the output head predicts: the codes + BOS/NEXT/EOS (PAD never). */
export const outputVocab = (codeVocab: number) => codeVocab + 3

export const patchCount = (a: ArArchitecture): number => {
  if (a.height % a.patchSize !== 0 || a.width % a.patchSize !== 0) {
    throw new Error(`ar.model.patchSize ${a.patchSize} must divide the frame size ${a.height}×${a.width}`)
  }
  return (a.height / a.patchSize) * (a.width / a.patchSize)
}

/** Longest code stream: BOS + (history + current clip) × (codes + terminator). */
export const maxStreamLength = (a: ArArchitecture): number => 1 + (a.historyClips + 1) * (a.codesPerClip + 1)

export const maxSequenceLength = (a: ArArchitecture): number => a.maxTextTokens + patchCount(a) + maxStreamLength(a)
