/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0; little-endian; C order), byte-compatible with
 * `numpy.save`: the writer reproduces numpy's header (sorted keys, the 21-digit growth space on the first
 * axis, padding to 64 bytes), so files are identical to what numpy writes and readable by numpy/PyTorch.
 *
 * Spec: numpy/lib/format.py ("A Simple File Format for NumPy Arrays", NEP 1).
 * Besides whole-file read/write, `readNpyRows` reads a range of the first axis without loading the rest
 * (what clip sampling needs) and `NpyRowWriter` appends rows and fixes the first axis on close (what
 * generators need), so neither side ever holds a whole episode or dataset in memory.
 */
import * as fs from "node:fs"
import { formatError } from "./errors.ts"

export type NpyDType = "uint8" | "bool" | "int32" | "int64" | "float32" | "float64"

/** The typed array that holds each dtype (`bool` is one byte per element, 0 or 1, like numpy's). */
export interface NpyDataFor {
  readonly uint8: Uint8Array
  readonly bool: Uint8Array
  readonly int32: Int32Array
  readonly int64: BigInt64Array
  readonly float32: Float32Array
  readonly float64: Float64Array
}

export interface NpyArray<D extends NpyDType = NpyDType> {
  readonly dtype: D
  /** C order; `[]` is a 0-d array holding one element */
  readonly shape: ReadonlyArray<number>
  readonly data: NpyDataFor[D]
}

export interface NpyHeader {
  readonly dtype: NpyDType
  readonly shape: ReadonlyArray<number>
  readonly version: 1 | 2 | 3
  /** byte offset of the first element */
  readonly dataOffset: number
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // "\x93NUMPY"
const ARRAY_ALIGN = 64
/** numpy leaves room for this many digits in the first axis so the header can be rewritten in place */
const GROWTH_AXIS_MAX_DIGITS = 21

const DESCR: Record<NpyDType, string> = {
  uint8: "|u1",
  bool: "|b1",
  int32: "<i4",
  int64: "<i8",
  float32: "<f4",
  float64: "<f8"
}

const ITEM_SIZE: Record<NpyDType, number> = { uint8: 1, bool: 1, int32: 4, int64: 8, float32: 4, float64: 8 }

/** Accepted spellings of each dtype in a header ("<" little, "|" not applicable, "=" native). */
const DTYPE_OF_DESCR: Record<string, NpyDType> = {
  "|u1": "uint8", "<u1": "uint8", "u1": "uint8", "=u1": "uint8", ">u1": "uint8",
  "|b1": "bool", "<b1": "bool", "b1": "bool", "=b1": "bool", "?": "bool",
  "<i4": "int32", "=i4": "int32",
  "<i8": "int64", "=i8": "int64",
  "<f4": "float32", "=f4": "float32",
  "<f8": "float64", "=f8": "float64"
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

export const itemSize = (dtype: NpyDType): number => ITEM_SIZE[dtype]

export const elementCount = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1)

const allocate = <D extends NpyDType>(dtype: D, buffer: ArrayBuffer, length: number): NpyDataFor[D] => {
  switch (dtype) {
    case "uint8":
    case "bool":
      return new Uint8Array(buffer, 0, length) as NpyDataFor[D]
    case "int32":
      return new Int32Array(buffer, 0, length) as NpyDataFor[D]
    case "int64":
      return new BigInt64Array(buffer, 0, length) as NpyDataFor[D]
    case "float32":
      return new Float32Array(buffer, 0, length) as NpyDataFor[D]
    default:
      return new Float64Array(buffer, 0, length) as NpyDataFor[D]
  }
}

/** Builds an array after checking that the data length matches the shape. */
export const npyArray = <D extends NpyDType>(dtype: D, shape: ReadonlyArray<number>, data: NpyDataFor[D]): NpyArray<D> => {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`npy: shape ${JSON.stringify(shape)} must hold non-negative integers`)
  }
  const n = elementCount(shape)
  if (data.length !== n) {
    throw new RangeError(`npy: ${dtype} data has ${data.length} elements but shape ${JSON.stringify(shape)} needs ${n}`)
  }
  return { dtype, shape: [...shape], data }
}

/** Python's repr of a shape tuple: `()`, `(5,)`, `(2, 3)`. */
const shapeRepr = (shape: ReadonlyArray<number>): string =>
  shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`

/** The header bytes numpy writes for this dtype and shape (magic, version, length, dict, padding). */
export const encodeNpyHeader = (dtype: NpyDType, shape: ReadonlyArray<number>): Uint8Array => {
  let dict = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`
  if (shape.length > 0) dict += " ".repeat(GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length)
  const hlen = dict.length + 1
  // version 1.0 has a 2-byte header length; beyond 65535 bytes numpy switches to 2.0 (4-byte length)
  const v1pad = ARRAY_ALIGN - ((MAGIC.length + 2 + 2 + hlen) % ARRAY_ALIGN)
  const version = hlen + v1pad <= 0xffff ? 1 : 2
  const prefixLength = MAGIC.length + 2 + (version === 1 ? 2 : 4)
  const padlen = ARRAY_ALIGN - ((prefixLength + hlen) % ARRAY_ALIGN)
  const total = prefixLength + hlen + padlen
  const out = new Uint8Array(total)
  out.set(MAGIC, 0)
  out[6] = version
  out[7] = 0
  const view = new DataView(out.buffer)
  if (version === 1) view.setUint16(8, hlen + padlen, true)
  else view.setUint32(8, hlen + padlen, true)
  for (let i = 0; i < dict.length; i++) out[prefixLength + i] = dict.charCodeAt(i)
  out.fill(0x20, prefixLength + dict.length, total - 1)
  out[total - 1] = 0x0a
  return out
}

const parseHeaderDict = (text: string, source: string, offset: number): { dtype: NpyDType; shape: number[] } => {
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)
  if (descr === null) throw formatError(source, offset, `npy header has no simple 'descr' (structured dtypes are not supported): ${text.trim()}`)
  const code = descr[1] ?? ""
  const dtype = DTYPE_OF_DESCR[code]
  if (dtype === undefined) {
    const hint = code.startsWith(">") ? " (big-endian: save with arr.astype(arr.dtype.newbyteorder('<')))" : ""
    throw formatError(source, offset, `npy dtype '${code}' is not supported${hint}; supported: uint8, bool, int32, int64, float32, float64`)
  }
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)
  if (fortran === null) throw formatError(source, offset, `npy header has no 'fortran_order': ${text.trim()}`)
  if (fortran[1] === "True") {
    throw formatError(source, offset, "npy array is in Fortran order; only C order is supported (save np.ascontiguousarray(arr))")
  }
  const shapeMatch = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)
  if (shapeMatch === null) throw formatError(source, offset, `npy header has no 'shape': ${text.trim()}`)
  const shape = (shapeMatch[1] ?? "")
    .split(",")
    .map((s) => s.trim().replace(/L$/, ""))
    .filter((s) => s.length > 0)
    .map((s) => {
      const n = Number(s)
      if (!Number.isInteger(n) || n < 0) throw formatError(source, offset, `npy shape entry '${s}' is not a non-negative integer`)
      return n
    })
  return { dtype, shape }
}

/** Parses the header at the start of `bytes` (which need only hold the header). */
export const decodeNpyHeader = (bytes: Uint8Array, source = "<buffer>"): NpyHeader => {
  if (!hostIsLittleEndian) throw formatError(source, undefined, "npy: this reader needs a little-endian host")
  if (bytes.length < 10) throw formatError(source, 0, `npy file too short for a header (${bytes.length} bytes)`)
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw formatError(source, i, "not a .npy file (missing \\x93NUMPY magic)")
  }
  const major = bytes[6]
  if (major !== 1 && major !== 2 && major !== 3) throw formatError(source, 6, `npy format version ${major}.${bytes[7]} is not supported`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const lengthSize = major === 1 ? 2 : 4
  if (bytes.length < 8 + lengthSize) throw formatError(source, 8, "npy header length field is truncated")
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  const start = 8 + lengthSize
  const dataOffset = start + headerLength
  if (bytes.length < dataOffset) {
    throw formatError(source, bytes.length, `npy header is truncated (needs ${dataOffset} bytes, file has ${bytes.length})`)
  }
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(start, dataOffset))
  const { dtype, shape } = parseHeaderDict(text, source, start)
  return { dtype, shape, version: major, dataOffset }
}

/** Decodes a whole .npy file held in memory; the result owns a fresh, aligned buffer. */
export const decodeNpy = (bytes: Uint8Array, source = "<buffer>"): NpyArray => {
  const header = decodeNpyHeader(bytes, source)
  const n = elementCount(header.shape)
  const byteLength = n * ITEM_SIZE[header.dtype]
  const end = header.dataOffset + byteLength
  if (bytes.length < end) {
    throw formatError(source, bytes.length, `npy data is truncated: shape ${JSON.stringify(header.shape)} ${header.dtype} needs ${end} bytes, file has ${bytes.length}`)
  }
  // copy into a fresh buffer: aligned for any element size (Buffer.slice would only make a view)
  const copy = new Uint8Array(byteLength)
  copy.set(bytes.subarray(header.dataOffset, end))
  return { dtype: header.dtype, shape: header.shape, data: allocate(header.dtype, copy.buffer, n) }
}

/** The bytes of the array's elements as stored (little-endian). */
const dataBytes = (array: NpyArray): Uint8Array =>
  new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength)

export const encodeNpy = (array: NpyArray): Uint8Array => {
  npyArray(array.dtype, array.shape, array.data) // validates shape against data
  const header = encodeNpyHeader(array.dtype, array.shape)
  const out = new Uint8Array(header.length + array.data.byteLength)
  out.set(header, 0)
  out.set(dataBytes(array), header.length)
  return out
}

export const readNpy = (path: string): NpyArray => {
  let bytes: Uint8Array
  try {
    bytes = fs.readFileSync(path)
  } catch (e) {
    throw formatError(path, undefined, `cannot read npy file: ${(e as Error).message}`)
  }
  return decodeNpy(bytes, path)
}

/** Reads an array and checks its dtype, so callers get a typed array without casts. */
export const readNpyAs = <D extends NpyDType>(path: string, dtype: D): NpyArray<D> => {
  const array = readNpy(path)
  if (array.dtype !== dtype) throw formatError(path, undefined, `expected ${dtype} array, found ${array.dtype}`)
  return array as NpyArray<D>
}

export const writeNpy = (path: string, array: NpyArray): void => {
  fs.writeFileSync(path, encodeNpy(array))
}

/** Reads only the header of a file on disk. */
export const readNpyHeader = (path: string): NpyHeader => {
  const fd = openForRead(path)
  try {
    const size = fs.fstatSync(fd).size
    let want = Math.min(size, 4096)
    for (;;) {
      const head = new Uint8Array(want)
      fs.readSync(fd, head, 0, want, 0)
      try {
        return decodeNpyHeader(head, path)
      } catch (e) {
        // a header longer than the first read: retry with the whole declared length
        if (want < size && (e as { message?: string }).message?.includes("truncated")) {
          want = Math.min(size, want * 16)
          continue
        }
        throw e
      }
    }
  } finally {
    fs.closeSync(fd)
  }
}

const openForRead = (path: string): number => {
  try {
    return fs.openSync(path, "r")
  } catch (e) {
    throw formatError(path, undefined, `cannot open npy file: ${(e as Error).message}`)
  }
}

/**
 * Reads rows `[start, start + count)` of the first axis, touching only their bytes on disk.
 * The result has shape `[count, ...shape.slice(1)]`.
 */
export const readNpyRows = (path: string, start: number, count: number, header: NpyHeader = readNpyHeader(path)): NpyArray => {
  if (header.shape.length === 0) throw formatError(path, undefined, "cannot read rows of a 0-d array")
  const rows = header.shape[0] ?? 0
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > rows) {
    throw new RangeError(`${path}: rows [${start}, ${start + count}) out of range for first axis of length ${rows}`)
  }
  const rowElements = elementCount(header.shape.slice(1))
  const rowBytes = rowElements * ITEM_SIZE[header.dtype]
  const buffer = new ArrayBuffer(count * rowBytes)
  const fd = openForRead(path)
  try {
    const position = header.dataOffset + start * rowBytes
    const read = fs.readSync(fd, new Uint8Array(buffer), 0, buffer.byteLength, position)
    if (read !== buffer.byteLength) {
      throw formatError(path, position + read, `npy data is truncated: wanted ${buffer.byteLength} bytes of rows ${start}..${start + count - 1}, got ${read}`)
    }
  } finally {
    fs.closeSync(fd)
  }
  return { dtype: header.dtype, shape: [count, ...header.shape.slice(1)], data: allocate(header.dtype, buffer, count * rowElements) }
}

/** Writes every byte (write(2) may write less than asked); `position` undefined appends. */
export const writeFully = (fd: number, bytes: Uint8Array, position?: number): void => {
  let done = 0
  while (done < bytes.length) {
    done += fs.writeSync(fd, bytes, done, bytes.length - done, position === undefined ? null : position + done)
  }
}

/**
 * Streams rows into a .npy file whose first-axis length is unknown up front. The header is written with
 * length 0 and rewritten on `close`; numpy's growth space keeps its size constant, so the final file is
 * byte-identical to `numpy.save` of the whole array.
 */
export class NpyRowWriter<D extends NpyDType> {
  readonly path: string
  readonly dtype: D
  readonly rowShape: ReadonlyArray<number>
  private fd: number | undefined
  private rows = 0
  private readonly headerLength: number

  constructor(path: string, dtype: D, rowShape: ReadonlyArray<number>) {
    this.path = path
    this.dtype = dtype
    this.rowShape = [...rowShape]
    const header = encodeNpyHeader(dtype, [0, ...rowShape])
    this.headerLength = header.length
    this.fd = fs.openSync(path, "w")
    writeFully(this.fd, header)
  }

  get length(): number {
    return this.rows
  }

  /** Appends one or more rows; `data.length` must be a multiple of the row size. */
  append(data: NpyDataFor[D]): void {
    if (this.fd === undefined) throw new Error(`${this.path}: NpyRowWriter is closed`)
    const rowElements = elementCount(this.rowShape)
    if (rowElements === 0 ? data.length !== 0 : data.length % rowElements !== 0) {
      throw new RangeError(`${this.path}: appended ${data.length} elements, not a multiple of row shape ${JSON.stringify(this.rowShape)}`)
    }
    writeFully(this.fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    this.rows += rowElements === 0 ? 0 : data.length / rowElements
  }

  close(): void {
    if (this.fd === undefined) return
    const header = encodeNpyHeader(this.dtype, [this.rows, ...this.rowShape])
    if (header.length !== this.headerLength) throw new Error(`${this.path}: npy header size changed on close`)
    writeFully(this.fd, header, 0)
    fs.closeSync(this.fd)
    this.fd = undefined
  }
}

/** Converts any numeric array to float32 (int64 via Number, exact below 2^53). */
export const toFloat32 = (array: NpyArray): Float32Array => {
  if (array.dtype === "float32") return array.data as Float32Array
  const out = new Float32Array(array.data.length)
  if (array.dtype === "int64") {
    const src = array.data as BigInt64Array
    for (let i = 0; i < src.length; i++) out[i] = Number(src[i])
  } else {
    out.set(array.data as Exclude<NpyDataFor[NpyDType], BigInt64Array>)
  }
  return out
}

/** Converts any numeric array to plain numbers (int64 must fit in a safe integer). */
export const toNumbers = (array: NpyArray, source = "<array>"): number[] => {
  if (array.dtype === "int64") {
    return Array.from(array.data as BigInt64Array, (v) => {
      const n = Number(v)
      if (!Number.isSafeInteger(n)) throw formatError(source, undefined, `int64 value ${v} does not fit a JS number`)
      return n
    })
  }
  return Array.from(array.data as Exclude<NpyDataFor[NpyDType], BigInt64Array>)
}
