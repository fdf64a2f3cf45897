/**
 * How an episode's latent codes become the AR's code stream and training targets.
 *
 * An episode is K clips, each tokenized by the dLDM into `codesPerClip` FSQ indices (transitions × N).
 * The example for clip k: the frame slot holds clip k's start frame; the stream is
 *   BOS, [codes of clip j, NEXT] for the last `historyClips` clips j < k, codes of clip k, NEXT | EOS
 * and the loss covers only clip k's codes and its terminator (EOS when k is the last clip), so the model
 * learns both what happens next and when the task is done.
 */
import { specialTokens } from "./ArConfig.ts"

export interface CodeEpisode {
  readonly id: string
  readonly task: string
  readonly instruction: string
  /** FSQ indices [clips × codesPerClip] */
  readonly codes: Int32Array
  readonly clips: number
}

export interface StreamExample {
  /** stream tokens, length S (PAD-filled to the requested length) */
  readonly stream: Int32Array
  /** target of each stream position (the next token), −1 where no loss is taken */
  readonly targets: Int32Array
}

/** Code-stream prefix for predicting clip `k`: BOS + history clips (each closed by NEXT). */
export const historyStream = (codes: Int32Array, codesPerClip: number, k: number, historyClips: number, codeVocab: number): Array<number> => {
  const t = specialTokens(codeVocab)
  const stream = [t.BOS]
  for (let j = Math.max(0, k - historyClips); j < k; j++) {
    for (let i = 0; i < codesPerClip; i++) stream.push(codes[j * codesPerClip + i]!)
    stream.push(t.NEXT)
  }
  return stream
}

export const streamExample = (
  episode: CodeEpisode,
  k: number,
  options: { readonly codesPerClip: number; readonly historyClips: number; readonly codeVocab: number; readonly length: number }
): StreamExample => {
  const { codesPerClip, historyClips, codeVocab, length } = options
  if (episode.codes.length !== episode.clips * codesPerClip) {
    throw new Error(`episode ${episode.id}: ${episode.codes.length} codes is not clips × codesPerClip = ${episode.clips} × ${codesPerClip}`)
  }
  if (k < 0 || k >= episode.clips) throw new Error(`episode ${episode.id}: clip ${k} outside 0..${episode.clips - 1}`)
  const t = specialTokens(codeVocab)
  const full = historyStream(episode.codes, codesPerClip, k, historyClips, codeVocab)
  const firstTarget = full.length // index in `full` of clip k's first code
  for (let i = 0; i < codesPerClip; i++) full.push(episode.codes[k * codesPerClip + i]!)
  full.push(k === episode.clips - 1 ? t.EOS : t.NEXT)
  // The stream fed to the model drops the final terminator: it is only ever a target.
  const inputLength = full.length - 1
  if (inputLength > length) throw new Error(`code stream of ${inputLength} tokens exceeds the example length ${length}`)
  const stream = new Int32Array(length).fill(t.PAD)
  const targets = new Int32Array(length).fill(-1)
  for (let i = 0; i < inputLength; i++) {
    stream[i] = full[i]!
    if (i + 1 >= firstTarget) targets[i] = full[i + 1]!
  }
  return { stream, targets }
}
