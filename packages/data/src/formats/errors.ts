/**
 * The one error type of the format readers: every failure names the file (or stream) and, where it is
 * known, the byte offset at which the bad input starts, so a user can open the file and look.
 */
import { Data } from "effect"

export class DataFormatError extends Data.TaggedError("DataFormatError")<{
  readonly file: string
  readonly offset: number | undefined
  readonly message: string
}> {}

/** Builds the error with a message of the form `file: at byte N: detail`. */
export const formatError = (file: string, offset: number | undefined, detail: string): DataFormatError =>
  new DataFormatError({
    file,
    offset,
    message: offset === undefined ? `${file}: ${detail}` : `${file}: at byte ${offset}: ${detail}`
  })
