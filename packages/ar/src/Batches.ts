/**
 * Training/evaluation examples of the AR: one (episode, clip) pair becomes instruction tokens, the clip's
 * start frame and the code stream with its targets (CodeStream.ts), packed into a batch.
 */
import { maxStreamLength, type ArArchitecture } from "./ArConfig.ts"
import { type CodeDataset, type CodedEpisode, startFrame } from "./CodeDataset.ts"
import { streamExample } from "./CodeStream.ts"
import { encodeInstruction, type InstructionVocabulary } from "./InstructionTokenizer.ts"
import type { ArBatch } from "./Train.ts"

export interface ClipExample {
  readonly episode: CodedEpisode
  readonly clip: number
}

/** Every (episode, clip) pair of a code dataset. */
export const clipExamples = (data: CodeDataset): Array<ClipExample> =>
  data.episodes.flatMap((episode) => Array.from({ length: episode.clips }, (_, clip) => ({ episode, clip })))

export const makeBatch = (examples: ReadonlyArray<ClipExample>, data: CodeDataset, arch: ArArchitecture, vocab: InstructionVocabulary): ArBatch => {
  const length = maxStreamLength(arch) - 1
  const frameSize = arch.height * arch.width * 3
  const text = new Int32Array(examples.length * arch.maxTextTokens)
  const frames = new Float32Array(examples.length * frameSize)
  const stream = new Int32Array(examples.length * length)
  const targets = new Int32Array(examples.length * length)
  examples.forEach(({ episode, clip }, b) => {
    text.set(encodeInstruction(vocab, episode.instruction), b * arch.maxTextTokens)
    frames.set(startFrame(episode, clip, data.info), b * frameSize)
    const ex = streamExample(episode, clip, { codesPerClip: arch.codesPerClip, historyClips: arch.historyClips, codeVocab: arch.codeVocab, length })
    stream.set(ex.stream, b * length)
    targets.set(ex.targets, b * length)
  })
  return { text, frames, stream, targets, batch: examples.length, streamLength: length }
}
