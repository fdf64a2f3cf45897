/**
 * safetensors (huggingface/safetensors) reader/writer: 8-byte little-endian header length, a JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { str: str } }` padded with spaces
 * to a multiple of 8, then the contiguous little-endian tensor bytes. Files we write load with
 * `safetensors.torch.load_file`. Reading accepts F32/F64/F16/BF16 (→ float32) and I32/I64/U8/BOOL (→ int32).
 */
import { readFile, rename, writeFile } from "node:fs/promises"
import { endianness } from "node:os"

export type TensorData = Float32Array | Int32Array

export interface NamedTensor {
  readonly shape: ReadonlyArray<number>
  readonly data: TensorData
}

export type TensorDict = ReadonlyMap<string, NamedTensor>

interface HeaderEntry {
  readonly dtype: string
  readonly shape: number[]
  readonly data_offsets: [number, number]
}

if (endianness() !== "LE") throw new Error("safetensors: this implementation assumes a little-endian host")

const BYTES: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1, BOOL: 1, I8: 1, I16: 2 }

/** Serialise tensors (and optional string metadata) to safetensors bytes. */
export function encodeSafetensors(tensors: TensorDict, metadata?: Readonly<Record<string, string>>): Uint8Array {
  const header: Record<string, unknown> = {}
  if (metadata !== undefined) header["__metadata__"] = { ...metadata }
  let offset = 0
  const names = [...tensors.keys()].sort()
  for (const name of names) {
    const t = tensors.get(name)!
    const n = t.shape.reduce((a, b) => a * b, 1)
    if (n !== t.data.length) throw new Error(`safetensors: tensor "${name}" has shape [${t.shape.join(", ")}] but ${t.data.length} values`)
    const dtype = t.data instanceof Float32Array ? "F32" : "I32"
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + 4 * n] }
    offset += 4 * n
  }
  let json = JSON.stringify(header)
  const headerBytes = Buffer.byteLength(json, "utf8")
  json += " ".repeat((8 - ((8 + headerBytes) % 8)) % 8) // data section starts 8-byte aligned
  const jsonBuf = Buffer.from(json, "utf8")
  const out = new Uint8Array(8 + jsonBuf.length + offset)
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBuf.length), true)
  out.set(jsonBuf, 8)
  let pos = 8 + jsonBuf.length
  for (const name of names) {
    const t = tensors.get(name)!
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos)
    pos += t.data.byteLength
  }
  return out
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const f = h & 0x3ff
  if (e === 0) return s * Math.pow(2, -14) * (f / 1024)
  if (e === 31) return f === 0 ? s * Infinity : NaN
  return s * Math.pow(2, e - 15) * (1 + f / 1024)
}

/** Parse safetensors bytes. `source` names the file in error messages. */
export function decodeSafetensors(bytes: Uint8Array, source = "<buffer>"): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error(`${source}: not a safetensors file (shorter than 8 bytes)`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerLen = Number(view.getBigUint64(0, true))
  if (headerLen > bytes.length - 8) throw new Error(`${source}: header length ${headerLen} exceeds file size ${bytes.length}`)
  let header: Record<string, unknown>
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLen)).toString("utf8")) as Record<string, unknown>
  } catch (e) {
    throw new Error(`${source}: invalid safetensors JSON header (${String(e)})`)
  }
  const dataStart = 8 + headerLen
  const metadata = (header["__metadata__"] ?? {}) as Record<string, string>
  const tensors = new Map<string, NamedTensor>()
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") continue
    const entry = raw as HeaderEntry
    const width = BYTES[entry.dtype]
    if (width === undefined) throw new Error(`${source}: tensor "${name}" has unsupported dtype ${entry.dtype}`)
    const [begin, end] = entry.data_offsets
    const n = entry.shape.reduce((a, b) => a * b, 1)
    if (end - begin !== n * width || dataStart + end > bytes.length) {
      throw new Error(`${source}: tensor "${name}" offsets [${begin}, ${end}] do not match shape [${entry.shape.join(", ")}] × ${entry.dtype}`)
    }
    // Copy: the region may be unaligned for typed-array views.
    const region = bytes.slice(dataStart + begin, dataStart + end)
    const dv = new DataView(region.buffer)
    let data: TensorData
    switch (entry.dtype) {
      case "F32":
        data = new Float32Array(region.buffer)
        break
      case "F64":
        data = Float32Array.from(new Float64Array(region.buffer))
        break
      case "F16":
        data = new Float32Array(n)
        for (let i = 0; i < n; i++) data[i] = f16ToF32(dv.getUint16(2 * i, true))
        break
      case "BF16": {
        // bfloat16 is the upper half of a float32
        const bits = new Uint32Array(n)
        for (let i = 0; i < n; i++) bits[i] = (dv.getUint16(2 * i, true) << 16) >>> 0
        data = new Float32Array(bits.buffer)
        break
      }
      case "I32":
        data = new Int32Array(region.buffer)
        break
      case "I64":
        data = Int32Array.from(new BigInt64Array(region.buffer), (v) => Number(v))
        break
      case "I16":
        data = Int32Array.from(new Int16Array(region.buffer))
        break
      case "I8":
        data = Int32Array.from(new Int8Array(region.buffer))
        break
      default: // U8, BOOL
        data = Int32Array.from(region)
    }
    tensors.set(name, { shape: entry.shape, data })
  }
  return { tensors, metadata }
}

/** Write atomically (temp file + rename): a reader never sees half a checkpoint. */
export async function writeSafetensors(path: string, tensors: TensorDict, metadata?: Readonly<Record<string, string>>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  await writeFile(tmp, encodeSafetensors(tensors, metadata))
  await rename(tmp, path)
}

export async function readSafetensors(path: string): Promise<{ tensors: Map<string, NamedTensor>; metadata: Record<string, string> }> {
  return decodeSafetensors(new Uint8Array(await readFile(path)), path)
}
