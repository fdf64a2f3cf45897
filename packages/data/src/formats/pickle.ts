/**
 * A restricted Python pickle reader and writer, for the one pickled file CALVIN ships:
 * `lang_annotations/auto_lang_ann.npy`, an `np.save`d dict
 *   { "info": { "episodes": [], "indx": [(start, end), ...] },
 *     "language": { "ann": [str], "task": [str], "emb": float32 ndarray [N, 1, 384] } }
 * (a 0-d object array whose payload is a pickle, protocol 2–4 depending on the numpy that wrote it).
 *
 * Why not require a converted JSON: users point vw2 at an unmodified CALVIN download, and no npm package
 * reads pickles. Why this is safe: unlike Python's unpickler, this one never calls arbitrary code — it
 * understands only containers, scalars, strings/bytes and the handful of numpy/codecs globals used to
 * rebuild arrays (`_reconstruct`, `ndarray`, `dtype`, `scalar`, `_codecs.encode`); anything else is refused
 * with an error that names the global.
 */
import { formatError } from "./errors.ts"
import { elementCount, type NpyArray, type NpyDType } from "./npy.ts"

/** Python values as this reader returns them. dicts → Map, lists → arrays, tuples → PyTuple. */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | Map<PyValue, PyValue>
  | NpyArray
  | PyObjectArray

export class PyTuple {
  readonly items: ReadonlyArray<PyValue>
  constructor(items: ReadonlyArray<PyValue>) {
    this.items = items
  }
}

/** A numpy array of dtype object (its elements are Python values). */
export interface PyObjectArray {
  readonly dtype: "object"
  readonly shape: ReadonlyArray<number>
  readonly items: ReadonlyArray<PyValue>
}

// ---- internal placeholders for numpy reconstruction ---------------------------------------------------

class NumpyGlobal {
  readonly name: string
  constructor(name: string) {
    this.name = name
  }
}

class PendingDtype {
  readonly code: string
  order = "|"
  constructor(code: string) {
    this.code = code
  }
  /** the dtype in npy descr form, e.g. "<f4" */
  get descr(): string {
    return `${this.order === "=" ? "<" : this.order}${this.code}`
  }
}

class PendingArray {
  result: NpyArray | PyObjectArray | undefined
}

const MARK = Symbol("mark")
type StackItem = PyValue | NumpyGlobal | PendingDtype | PendingArray | typeof MARK

const NUMPY_DTYPES: Record<string, NpyDType> = {
  "|u1": "uint8", "<u1": "uint8", "|b1": "bool", "<b1": "bool", "<i4": "int32", "<i8": "int64", "<f4": "float32", "<f8": "float64"
}
const ITEM: Record<NpyDType, number> = { uint8: 1, bool: 1, int32: 4, int64: 8, float32: 4, float64: 8 }

const ALLOWED_GLOBALS = new Set([
  "numpy.core.multiarray._reconstruct",
  "numpy._core.multiarray._reconstruct",
  "numpy.ndarray",
  "numpy.dtype",
  "numpy.core.multiarray.scalar",
  "numpy._core.multiarray.scalar",
  "_codecs.encode"
])

const typedFromBytes = (dtype: NpyDType, bytes: Uint8Array, count: number): NpyArray["data"] => {
  const copy = new Uint8Array(count * ITEM[dtype])
  copy.set(bytes.subarray(0, copy.length))
  switch (dtype) {
    case "uint8":
    case "bool":
      return copy
    case "int32":
      return new Int32Array(copy.buffer)
    case "int64":
      return new BigInt64Array(copy.buffer)
    case "float32":
      return new Float32Array(copy.buffer)
    default:
      return new Float64Array(copy.buffer)
  }
}

/** Unpickles `bytes`. `source` names the file in errors. */
export const unpickle = (bytes: Uint8Array, source = "<pickle>", baseOffset = 0): PyValue => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const stack: StackItem[] = []
  const memo = new Map<number, StackItem>()
  const latin1 = new TextDecoder("latin1")
  const utf8 = new TextDecoder("utf-8")
  let pos = 0
  let opPos = 0
  const fail = (detail: string): never => {
    throw formatError(source, baseOffset + opPos, `pickle: ${detail}`)
  }
  const need = (n: number): void => {
    if (pos + n > bytes.length) fail(`truncated (needs ${n} more bytes)`)
  }
  const u8 = (): number => {
    need(1)
    return bytes[pos++]!
  }
  const u16 = (): number => {
    need(2)
    pos += 2
    return view.getUint16(pos - 2, true)
  }
  const u32 = (): number => {
    need(4)
    pos += 4
    return view.getUint32(pos - 4, true)
  }
  const i32 = (): number => {
    need(4)
    pos += 4
    return view.getInt32(pos - 4, true)
  }
  const u64 = (): number => {
    need(8)
    pos += 8
    const n = view.getBigUint64(pos - 8, true)
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) fail("8-byte length too large")
    return Number(n)
  }
  const take = (n: number): Uint8Array => {
    need(n)
    pos += n
    return bytes.subarray(pos - n, pos)
  }
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos)
    if (end < 0) fail("unterminated text line")
    const text = latin1.decode(bytes.subarray(pos, end))
    pos = end + 1
    return text
  }
  const pop = (): StackItem => {
    if (stack.length === 0) fail("stack underflow")
    return stack.pop() as StackItem
  }
  const popMark = (): StackItem[] => {
    const at = stack.lastIndexOf(MARK)
    if (at < 0) fail("MARK expected")
    const items = stack.splice(at)
    items.shift()
    return items
  }
  const top = (): StackItem => {
    if (stack.length === 0) fail("stack underflow")
    return stack[stack.length - 1] as StackItem
  }
  /** Containers may hold numpy helpers (dtype args, array state); arrays resolve to their result once built. */
  const resolve = (item: StackItem): PyValue => {
    if (item === MARK) return fail("MARK used as a value")
    if (item instanceof PendingArray && item.result !== undefined) return item.result
    return item as unknown as PyValue
  }
  const asValue = (item: StackItem): PyValue => {
    if (item instanceof NumpyGlobal || item instanceof PendingDtype || item === MARK) return fail("numpy helper object used as a value")
    if (item instanceof PendingArray) return item.result ?? fail("numpy array used before its state was set")
    return item
  }
  const global = (module: string, name: string): NumpyGlobal => {
    const full = `${module}.${name}`
    if (!ALLOWED_GLOBALS.has(full)) fail(`refusing global ${full} (only numpy array reconstruction is supported)`)
    return new NumpyGlobal(full.replace("numpy._core", "numpy.core"))
  }
  const reduce = (fn: StackItem, args: StackItem): StackItem => {
    if (!(fn instanceof NumpyGlobal) || !(args instanceof PyTuple)) return fail("REDUCE on something other than a supported numpy global")
    const a = args.items
    switch (fn.name) {
      case "numpy.core.multiarray._reconstruct":
        return new PendingArray()
      case "numpy.dtype": {
        const code = a[0]
        if (typeof code !== "string") return fail("numpy.dtype without a type code")
        return new PendingDtype(code) as unknown as StackItem
      }
      case "numpy.core.multiarray.scalar": {
        const dtype = a[0] as unknown
        const raw = a[1]
        if (!(dtype instanceof PendingDtype) || !(raw instanceof Uint8Array)) return fail("numpy scalar with unexpected arguments")
        const npy = NUMPY_DTYPES[dtype.descr] ?? fail(`numpy scalar dtype ${dtype.descr} is not supported`)
        const data = typedFromBytes(npy, raw, 1)
        const v = data[0]!
        return typeof v === "bigint" ? (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v) : npy === "bool" ? v !== 0 : v
      }
      case "_codecs.encode": {
        const text = a[0]
        if (typeof text !== "string") return fail("_codecs.encode of a non-string")
        return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff)
      }
      default:
        return fail(`cannot call ${fn.name}`)
    }
  }
  const build = (target: StackItem, state: StackItem): void => {
    if (target instanceof PendingDtype) {
      if (state instanceof PyTuple && typeof state.items[1] === "string") target.order = state.items[1]
      return
    }
    if (target instanceof PendingArray) {
      if (!(state instanceof PyTuple) || state.items.length < 5) return fail("ndarray state is not a 5-tuple")
      const [, shapeTuple, dtype, fortran, raw] = state.items as unknown as [unknown, PyTuple, PendingDtype, boolean, unknown]
      const shape = shapeTuple.items.map((d) => Number(d))
      if (fortran === true && shape.length > 1) return fail("Fortran-ordered arrays are not supported")
      if (!(dtype instanceof PendingDtype)) return fail("ndarray state without a dtype")
      if (dtype.code === "O8" || dtype.code === "O4" || dtype.code === "O") {
        if (!Array.isArray(raw)) return fail("object array state without an item list")
        target.result = { dtype: "object", shape, items: raw }
        return
      }
      const npy = NUMPY_DTYPES[dtype.descr] ?? fail(`ndarray dtype ${dtype.descr} is not supported`)
      if (!(raw instanceof Uint8Array)) return fail("ndarray state without raw bytes")
      const count = elementCount(shape)
      if (raw.length < count * ITEM[npy]) return fail(`ndarray data has ${raw.length} bytes, needs ${count * ITEM[npy]}`)
      target.result = { dtype: npy, shape, data: typedFromBytes(npy, raw, count) } as NpyArray
      return
    }
    fail("BUILD on an object this reader cannot set state on")
  }

  for (;;) {
    opPos = pos
    const op = u8()
    switch (op) {
      case 0x80: u8(); break // PROTO
      case 0x95: u64(); break // FRAME: framing is transparent here
      case 0x2e: { // STOP
        const result = pop()
        return asValue(result)
      }
      case 0x28: stack.push(MARK); break
      case 0x7d: stack.push(new Map()); break // EMPTY_DICT
      case 0x5d: stack.push([]); break // EMPTY_LIST
      case 0x29: stack.push(new PyTuple([])); break // EMPTY_TUPLE
      case 0x74: stack.push(new PyTuple(popMark().map(resolve))); break // TUPLE
      case 0x85: stack.push(new PyTuple([resolve(pop())])); break
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([resolve(a), resolve(b)])); break }
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([resolve(a), resolve(b), resolve(c)])); break }
      case 0x73: { // SETITEM
        const v = pop(); const k = pop(); const d = top()
        if (!(d instanceof Map)) fail("SETITEM on a non-dict")
        ;(d as Map<PyValue, PyValue>).set(resolve(k), resolve(v))
        break
      }
      case 0x75: { // SETITEMS
        const items = popMark(); const d = top()
        if (!(d instanceof Map)) fail("SETITEMS on a non-dict")
        for (let i = 0; i + 1 < items.length; i += 2) (d as Map<PyValue, PyValue>).set(resolve(items[i]!), resolve(items[i + 1]!))
        break
      }
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail("APPEND on a non-list"); (l as PyValue[]).push(resolve(v)); break }
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail("APPENDS on a non-list"); (l as PyValue[]).push(...items.map(resolve)); break }
      case 0x8f: stack.push([]); break // EMPTY_SET (as a list)
      case 0x90: { const items = popMark(); const s = top(); if (!Array.isArray(s)) fail("ADDITEMS on a non-set"); (s as PyValue[]).push(...items.map(resolve)); break }
      case 0x91: stack.push(popMark().map(resolve)); break // FROZENSET
      case 0x4a: stack.push(i32()); break // BININT
      case 0x4b: stack.push(u8()); break // BININT1
      case 0x4d: stack.push(u16()); break // BININT2
      case 0x8a: { // LONG1: little-endian two's complement
        const n = u8(); const b = take(n)
        let v = 0n
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!)
        if (n > 0 && (b[n - 1]! & 0x80) !== 0) v -= 1n << BigInt(8 * n)
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v)
        break
      }
      case 0x47: { need(8); pos += 8; stack.push(view.getFloat64(pos - 8, false)); break } // BINFLOAT (big-endian)
      case 0x4e: stack.push(null); break
      case 0x88: stack.push(true); break
      case 0x89: stack.push(false); break
      case 0x8c: stack.push(utf8.decode(take(u8()))); break // SHORT_BINUNICODE
      case 0x58: stack.push(utf8.decode(take(u32()))); break // BINUNICODE
      case 0x8d: stack.push(utf8.decode(take(u64()))); break // BINUNICODE8
      case 0x55: stack.push(latin1.decode(take(u8()))); break // SHORT_BINSTRING (py2 str)
      case 0x54: stack.push(latin1.decode(take(i32()))); break // BINSTRING
      case 0x43: stack.push(take(u8()).slice()); break // SHORT_BINBYTES
      case 0x42: stack.push(take(u32()).slice()); break // BINBYTES
      case 0x8e: stack.push(take(u64()).slice()); break // BINBYTES8
      case 0x71: memo.set(u8(), top()); break // BINPUT
      case 0x72: memo.set(u32(), top()); break // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break // MEMOIZE
      case 0x68: { const k = u8(); stack.push(memo.has(k) ? memo.get(k)! : fail(`memo ${k} missing`)); break } // BINGET
      case 0x6a: { const k = u32(); stack.push(memo.has(k) ? memo.get(k)! : fail(`memo ${k} missing`)); break } // LONG_BINGET
      case 0x63: { const module = line(); const name = line(); stack.push(global(module, name)); break } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop(); const module = pop()
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings")
        stack.push(global(module as string, name as string))
        break
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(reduce(fn, args)); break } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(reduce(cls, args)); break } // NEWOBJ
      case 0x62: { const state = pop(); build(top(), state); break } // BUILD
      case 0x30: pop(); break // POP
      case 0x31: popMark(); break // POP_MARK
      case 0x32: stack.push(top()); break // DUP
      default:
        fail(`unsupported opcode 0x${op.toString(16).padStart(2, "0")} (${JSON.stringify(String.fromCharCode(op))})`)
    }
  }
}

// ---- writer (protocol 2, the subset above) --------------------------------------------------------------

/** Values the writer accepts: dicts as Map or plain objects, tuples as PyTuple, float32/int64/... arrays as NpyArray. */
export type PicklableValue =
  | null
  | boolean
  | number
  | string
  | PicklableValue[]
  | PyTuple
  | Map<string, PicklableValue>
  | { readonly [key: string]: PicklableValue }
  | NpyArray

class ByteSink {
  private chunks: Uint8Array[] = []
  private length = 0
  push(...bytes: number[]): void {
    this.bytes(Uint8Array.from(bytes))
  }
  bytes(b: Uint8Array): void {
    this.chunks.push(b)
    this.length += b.length
  }
  u32(n: number): void {
    const b = new Uint8Array(4)
    new DataView(b.buffer).setUint32(0, n, true)
    this.bytes(b)
  }
  text(s: string): void {
    this.bytes(new TextEncoder().encode(s))
  }
  result(): Uint8Array {
    const out = new Uint8Array(this.length)
    let o = 0
    for (const c of this.chunks) {
      out.set(c, o)
      o += c.length
    }
    return out
  }
}

const DESCR_OF: Record<NpyDType, [string, string]> = {
  uint8: ["u1", "|"], bool: ["b1", "|"], int32: ["i4", "<"], int64: ["i8", "<"], float32: ["f4", "<"], float64: ["f8", "<"]
}

const isNpyArray = (v: unknown): v is NpyArray =>
  typeof v === "object" && v !== null && "dtype" in v && "shape" in v && "data" in v && ArrayBuffer.isView((v as NpyArray).data)

/**
 * Pickles `value` (protocol 2) the way numpy 1.x pickles arrays, so `np.load(..., allow_pickle=True)` and
 * CALVIN's loaders read it. Arrays' bytes go through `_codecs.encode(str, "latin1")` as in protocol 2.
 */
export const pickle = (value: PicklableValue): Uint8Array => {
  const out = new ByteSink()
  out.push(0x80, 2)
  const str = (s: string): void => {
    const b = new TextEncoder().encode(s)
    out.push(0x58)
    out.u32(b.length)
    out.bytes(b)
  }
  const int = (n: number): void => {
    if (!Number.isInteger(n)) {
      const b = new Uint8Array(9)
      b[0] = 0x47
      new DataView(b.buffer).setFloat64(1, n, false)
      out.bytes(b)
    } else if (n >= 0 && n < 256) out.push(0x4b, n)
    else if (n >= -(2 ** 31) && n < 2 ** 31) {
      out.push(0x4a)
      const b = new Uint8Array(4)
      new DataView(b.buffer).setInt32(0, n, true)
      out.bytes(b)
    } else {
      // LONG1 with 8 bytes two's complement
      const b = new Uint8Array(8)
      new DataView(b.buffer).setBigInt64(0, BigInt(n), true)
      out.push(0x8a, 8)
      out.bytes(b)
    }
  }
  const globalRef = (module: string, name: string): void => {
    out.push(0x63)
    out.text(`${module}\n${name}\n`)
  }
  const dtype = (code: string, order: string): void => {
    globalRef("numpy", "dtype")
    str(code)
    out.push(0x89, 0x88, 0x87, 0x52) // False, True, TUPLE3, REDUCE
    out.push(0x28, 0x4b, 3) // MARK, 3
    str(order)
    out.push(0x4e, 0x4e, 0x4e) // None None None
    int(-1)
    int(-1)
    int(0)
    out.push(0x74, 0x62) // TUPLE, BUILD
  }
  const write = (v: PicklableValue): void => {
    if (v === null) out.push(0x4e)
    else if (v === true) out.push(0x88)
    else if (v === false) out.push(0x89)
    else if (typeof v === "number") int(v)
    else if (typeof v === "string") str(v)
    else if (Array.isArray(v)) {
      out.push(0x5d, 0x28)
      for (const item of v) write(item)
      out.push(0x65)
    } else if (v instanceof PyTuple) {
      out.push(0x28)
      for (const item of v.items) write(item as PicklableValue)
      out.push(0x74)
    } else if (isNpyArray(v)) {
      globalRef("numpy.core.multiarray", "_reconstruct")
      globalRef("numpy", "ndarray")
      out.push(0x4b, 0, 0x85) // (0,)
      globalRef("_codecs", "encode")
      str("b")
      str("latin1")
      out.push(0x86, 0x52) // TUPLE2, REDUCE → b'b'
      out.push(0x87, 0x52) // TUPLE3, REDUCE → empty array
      out.push(0x28, 0x4b, 1) // MARK, version 1
      out.push(0x28)
      for (const d of v.shape) int(d)
      out.push(0x74)
      const [code, order] = DESCR_OF[v.dtype]
      dtype(code, order)
      out.push(0x89) // not Fortran
      globalRef("_codecs", "encode")
      const raw = new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength)
      let s = ""
      for (let i = 0; i < raw.length; i++) s += String.fromCharCode(raw[i]!)
      str(s)
      str("latin1")
      out.push(0x86, 0x52) // → bytes
      out.push(0x74, 0x62) // TUPLE (state), BUILD
    } else {
      const entries = v instanceof Map ? [...v.entries()] : Object.entries(v)
      out.push(0x7d, 0x28)
      for (const [k, item] of entries) {
        str(k)
        write(item)
      }
      out.push(0x75)
    }
  }
  write(value)
  out.push(0x2e)
  return out.result()
}

/** `np.save` of a Python object (0-d object array): the .npy bytes CALVIN's auto_lang_ann.npy has. */
export const encodePickledNpy = (value: PicklableValue): Uint8Array => {
  const sink = new ByteSink()
  // the object array itself: _reconstruct(ndarray, (0,), b'b') with state (1, (), dtype('O8'), False, [value])
  sink.push(0x80, 2)
  const body = pickle(value)
  const inner = body.subarray(2, body.length - 1) // strip PROTO and STOP: splice the value into the wrapper
  const wrap = (s: string): Uint8Array => new TextEncoder().encode(s)
  const strOp = (s: string): Uint8Array => {
    const b = wrap(s)
    const out = new Uint8Array(5 + b.length)
    out[0] = 0x58
    new DataView(out.buffer).setUint32(1, b.length, true)
    out.set(b, 5)
    return out
  }
  sink.bytes(wrap("cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"))
  sink.push(0x4b, 0, 0x85)
  sink.bytes(wrap("c_codecs\nencode\n"))
  sink.bytes(strOp("b"))
  sink.bytes(strOp("latin1"))
  sink.push(0x86, 0x52, 0x87, 0x52)
  sink.push(0x28, 0x4b, 1, 0x29) // MARK, 1, ()
  sink.bytes(wrap("cnumpy\ndtype\n"))
  sink.bytes(strOp("O8"))
  sink.push(0x89, 0x88, 0x87, 0x52)
  sink.push(0x28, 0x4b, 3)
  sink.bytes(strOp("|"))
  sink.push(0x4e, 0x4e, 0x4e)
  sink.push(0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4b, 63, 0x74, 0x62)
  sink.push(0x89, 0x5d) // not Fortran, [ value ]
  sink.bytes(inner)
  sink.push(0x61, 0x74, 0x62, 0x2e) // APPEND, TUPLE, BUILD, STOP
  const payload = sink.result()
  let header = "{'descr': '|O', 'fortran_order': False, 'shape': (), }"
  const hlen = header.length + 1
  const pad = 64 - ((10 + hlen) % 64)
  header += " ".repeat(pad) + "\n"
  const out = new Uint8Array(10 + header.length + payload.length)
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0)
  new DataView(out.buffer).setUint16(8, header.length, true)
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i)
  out.set(payload, 10 + header.length)
  return out
}

/** Reads a pickled-object .npy (descr '|O'): returns the unpickled value (the item of a 0-d array). */
export const decodePickledNpy = (bytes: Uint8Array, source = "<buffer>"): PyValue => {
  if (bytes.length < 10 || bytes[0] !== 0x93 || bytes[1] !== 0x4e) throw formatError(source, 0, "not a .npy file")
  const major = bytes[6]
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  const start = major === 1 ? 10 : 12
  const header = new TextDecoder("latin1").decode(bytes.subarray(start, start + headerLength))
  if (!/['"]descr['"]\s*:\s*['"]\|O['"]/.test(header)) throw formatError(source, start, `expected a pickled object array (descr '|O'), header is ${header.trim()}`)
  const value = unpickle(bytes.subarray(start + headerLength), source, start + headerLength)
  if (typeof value === "object" && value !== null && "dtype" in value && value.dtype === "object") {
    const arr = value as PyObjectArray
    return arr.shape.length === 0 ? (arr.items[0] ?? null) : arr.items as PyValue[]
  }
  return value
}
