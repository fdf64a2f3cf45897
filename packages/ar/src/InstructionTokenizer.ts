/**
 * Instruction tokenizer for mini scale: a word-level vocabulary built from the training split's
 * instructions (lower-cased, split on anything that is not a letter or digit). Id 0 is padding, id 1
 * stands for words never seen in training. The vocabulary is saved in the AR checkpoint (`vocab.json`),
 * so evaluation encodes test instructions exactly as training did.
 *
 * Paper scale does not use this: its preset names a pretrained text encoder (see `TextEncoderConfig`).
 */
export const PAD_TOKEN = 0
export const UNKNOWN_TOKEN = 1

export interface InstructionVocabulary {
  readonly format: "vw2-instruction-vocab/1"
  /** words by id; ids 0 and 1 are "<pad>" and "<unk>" */
  readonly words: ReadonlyArray<string>
  /** instructions are cut or padded to this many tokens */
  readonly maxTokens: number
}

export const splitWords = (instruction: string): ReadonlyArray<string> =>
  instruction.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 0)

/** Vocabulary of every word in `instructions`, sorted so the same data gives the same ids. */
export const buildVocabulary = (instructions: Iterable<string>, maxTokens: number): InstructionVocabulary => {
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Error(`instruction maxTokens must be a positive integer, got ${maxTokens}`)
  const words = new Set<string>()
  for (const instruction of instructions) for (const w of splitWords(instruction)) words.add(w)
  return { format: "vw2-instruction-vocab/1", words: ["<pad>", "<unk>", ...[...words].sort()], maxTokens }
}

/** Token ids, padded with 0 (or cut) to `maxTokens`. */
export const encodeInstruction = (vocab: InstructionVocabulary, instruction: string): Int32Array => {
  const index = new Map(vocab.words.map((w, i) => [w, i] as const))
  const ids = new Int32Array(vocab.maxTokens).fill(PAD_TOKEN)
  splitWords(instruction).slice(0, vocab.maxTokens).forEach((w, i) => {
    ids[i] = index.get(w) ?? UNKNOWN_TOKEN
  })
  return ids
}

export const parseVocabulary = (json: unknown, file: string): InstructionVocabulary => {
  const v = json as Partial<InstructionVocabulary>
  if (v?.format !== "vw2-instruction-vocab/1" || !Array.isArray(v.words) || typeof v.maxTokens !== "number") {
    throw new Error(`${file}: not an instruction vocabulary (expected format "vw2-instruction-vocab/1")`)
  }
  return v as InstructionVocabulary
}
