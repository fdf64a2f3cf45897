/**
 * Teacher-forced evaluation of the AR on held-out clips: top-1 accuracy and cross-entropy of the next code
 * given the true history, against the unigram baseline (always predicting the most frequent training target).
 * A model that only learned the code frequencies scores the unigram; one that reads the frame, the
 * instruction and the history beats it (issue "Learning that works": target ≥ 2× the unigram).
 */
import * as tf from "@tensorflow/tfjs"
import type { ArTransformer } from "./ArTransformer.ts"
import { outputVocab } from "./ArConfig.ts"
import { type ClipExample, makeBatch } from "./Batches.ts"
import type { CodeDataset } from "./CodeDataset.ts"
import type { InstructionVocabulary } from "./InstructionTokenizer.ts"
import { batchInputs, targetPositions } from "./Train.ts"

export interface TeacherForcedReport {
  /** positions scored (codes and clip terminators of the held-out clips) */
  readonly positions: number
  readonly top1: number
  /** mean next-token cross-entropy (nats) */
  readonly nll: number
  /** top-1 of always predicting the most frequent training target */
  readonly unigramTop1: number
  /** cross-entropy of the training targets' add-one-smoothed frequencies */
  readonly unigramNll: number
  /** distinct codes among the held-out targets */
  readonly distinctTargets: number
}

/** Target tokens (≥ 0) of a list of examples, in order. */
const targetsOf = (examples: ReadonlyArray<ClipExample>, data: CodeDataset, model: ArTransformer, vocab: InstructionVocabulary): Array<number> => {
  const out: Array<number> = []
  for (const ex of examples) for (const t of makeBatch([ex], data, model.arch, vocab).targets) if (t >= 0) out.push(t)
  return out
}

export const teacherForcedReport = (
  model: ArTransformer,
  vocab: InstructionVocabulary,
  train: { readonly data: CodeDataset; readonly examples: ReadonlyArray<ClipExample> },
  heldOut: { readonly data: CodeDataset; readonly examples: ReadonlyArray<ClipExample> },
  batchSize = 16
): TeacherForcedReport => {
  const v = outputVocab(model.arch.codeVocab)
  const counts = new Float64Array(v)
  for (const t of targetsOf(train.examples, train.data, model, vocab)) counts[t]!++
  let mode = 0
  for (let i = 1; i < v; i++) if (counts[i]! > counts[mode]!) mode = i
  const total = counts.reduce((a, c) => a + c, 0)
  let positions = 0
  let hits = 0
  let nll = 0
  let unigramHits = 0
  let unigramNll = 0
  const distinct = new Set<number>()
  for (let start = 0; start < heldOut.examples.length; start += batchSize) {
    const batch = makeBatch(heldOut.examples.slice(start, start + batchSize), heldOut.data, model.arch, vocab)
    const { rows, targets } = targetPositions(batch)
    const { predicted, logProbs } = tf.tidy(() => {
      const logits = model.logitsAt(batchInputs(model, batch), Int32Array.from(rows))
      const lp = tf.logSoftmax(logits)
      return { predicted: tf.argMax(lp, -1).dataSync() as Int32Array, logProbs: tf.sum(tf.mul(lp, tf.oneHot(tf.tensor1d(targets, "int32"), v)), -1).dataSync() as Float32Array }
    })
    targets.forEach((t, i) => {
      positions++
      distinct.add(t)
      if (predicted[i] === t) hits++
      nll -= logProbs[i]!
      if (t === mode) unigramHits++
      unigramNll -= Math.log((counts[t]! + 1) / (total + v))
    })
  }
  if (positions === 0) throw new Error("teacher-forced evaluation: the held-out clips have no target positions")
  return { positions, top1: hits / positions, nll: nll / positions, unigramTop1: unigramHits / positions, unigramNll: unigramNll / positions, distinctTargets: distinct.size }
}
