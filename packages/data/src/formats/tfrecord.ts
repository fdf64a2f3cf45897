/**
 * TFRecord framing (tensorflow/core/lib/io/record_writer.cc): each record is
 *   uint64 length (LE) · uint32 masked_crc32c(length bytes) · data · uint32 masked_crc32c(data)
 * with masked_crc = ((crc >>> 15) | (crc << 17)) + 0xa282ead8. CRC32C comes from @aws-crypto/crc32c
 * (maintained, pure JS). Reading is streaming (one record in memory at a time) and every CRC is checked:
 * a corrupt or truncated shard fails with the file name and the byte offset of the bad record.
 */
import * as fs from "node:fs"
import { crc32c } from "@aws-crypto/crc32c"
import { formatError } from "./errors.ts"
import { writeFully } from "./npy.ts"

const MASK_DELTA = 0xa282ead8
const HEADER_BYTES = 12
const FOOTER_BYTES = 4
/** refuse absurd lengths from a corrupt header before allocating (2 GiB: larger than any real record) */
const MAX_RECORD_BYTES = 2 ** 31

export const maskedCrc32c = (data: Uint8Array): number => {
  const crc = crc32c(data) >>> 0
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0
}

/** One record framed as TFRecord bytes. */
export const encodeTfRecord = (data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(HEADER_BYTES + data.length + FOOTER_BYTES)
  const view = new DataView(out.buffer)
  view.setBigUint64(0, BigInt(data.length), true)
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true)
  out.set(data, HEADER_BYTES)
  view.setUint32(HEADER_BYTES + data.length, maskedCrc32c(data), true)
  return out
}

export class TfRecordWriter {
  readonly path: string
  private fd: number | undefined
  private count = 0

  constructor(path: string) {
    this.path = path
    this.fd = fs.openSync(path, "w")
  }

  get records(): number {
    return this.count
  }

  write(data: Uint8Array): void {
    if (this.fd === undefined) throw new Error(`${this.path}: TfRecordWriter is closed`)
    writeFully(this.fd, encodeTfRecord(data))
    this.count++
  }

  close(): void {
    if (this.fd === undefined) return
    fs.closeSync(this.fd)
    this.fd = undefined
  }
}

export interface TfRecord {
  readonly data: Uint8Array
  /** byte offset of the record's header in the file */
  readonly offset: number
}

const readExactly = (fd: number, length: number, position: number): Uint8Array => {
  const out = new Uint8Array(length)
  let done = 0
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, position + done)
    if (n === 0) break
    done += n
  }
  return done === length ? out : out.subarray(0, done)
}

/** Streams the records of one TFRecord file, verifying both CRCs of each. */
export function* readTfRecords(path: string): Generator<TfRecord> {
  let fd: number
  try {
    fd = fs.openSync(path, "r")
  } catch (e) {
    throw formatError(path, undefined, `cannot open TFRecord file: ${(e as Error).message}`)
  }
  try {
    const size = fs.fstatSync(fd).size
    let offset = 0
    while (offset < size) {
      const header = readExactly(fd, HEADER_BYTES, offset)
      if (header.length < HEADER_BYTES) {
        throw formatError(path, offset, `truncated TFRecord header (${header.length} of ${HEADER_BYTES} bytes before end of file)`)
      }
      const view = new DataView(header.buffer)
      const lengthCrc = view.getUint32(8, true)
      if (maskedCrc32c(header.subarray(0, 8)) !== lengthCrc) {
        throw formatError(path, offset, "TFRecord length CRC mismatch (corrupt record header)")
      }
      const length = view.getBigUint64(0, true)
      if (length > BigInt(MAX_RECORD_BYTES)) throw formatError(path, offset, `TFRecord length ${length} is implausibly large`)
      const n = Number(length)
      const body = readExactly(fd, n + FOOTER_BYTES, offset + HEADER_BYTES)
      if (body.length < n + FOOTER_BYTES) {
        throw formatError(path, offset, `truncated TFRecord: record of ${n} bytes needs ${HEADER_BYTES + n + FOOTER_BYTES} bytes, file has ${size - offset} left`)
      }
      const data = body.subarray(0, n)
      const dataCrc = new DataView(body.buffer, body.byteOffset + n, 4).getUint32(0, true)
      if (maskedCrc32c(data) !== dataCrc) throw formatError(path, offset, `TFRecord data CRC mismatch (record of ${n} bytes is corrupt)`)
      yield { data, offset }
      offset += HEADER_BYTES + n + FOOTER_BYTES
    }
  } finally {
    fs.closeSync(fd)
  }
}
