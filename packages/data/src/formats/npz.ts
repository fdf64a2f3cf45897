/**
 * NumPy `.npz` archives: a zip of `<name>.npy` members, as written by `numpy.savez` (stored) and
 * `numpy.savez_compressed` (deflate). Zip handling (including numpy's forced zip64 extra fields) is fflate's.
 * Members get numpy's fixed timestamp (1980-01-01) so the same arrays always give the same bytes.
 */
import * as fs from "node:fs"
import { unzipSync, zipSync, type Zippable } from "fflate"
import { formatError } from "./errors.ts"
import { decodeNpy, encodeNpy, type NpyArray } from "./npy.ts"

export type NpzArrays = Readonly<Record<string, NpyArray>>

export interface NpzWriteOptions {
  /** deflate the members like `numpy.savez_compressed` (default false, like `numpy.savez`) */
  readonly compress?: boolean
}

const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0)

export const encodeNpz = (arrays: NpzArrays, options: NpzWriteOptions = {}): Uint8Array => {
  const members: Zippable = {}
  for (const [name, array] of Object.entries(arrays)) {
    if (name.length === 0 || name.includes("/")) throw new RangeError(`npz member name '${name}' must be non-empty and contain no '/'`)
    members[`${name}.npy`] = encodeNpy(array)
  }
  return zipSync(members, { level: options.compress === true ? 6 : 0, mtime: FIXED_MTIME })
}

/**
 * Decodes an archive. `only` limits decoding to the named members (others are skipped unread), which
 * matters for CALVIN steps where a reader may want `rel_actions` but not the images.
 */
export const decodeNpz = (bytes: Uint8Array, source = "<buffer>", only?: ReadonlyArray<string>): Record<string, NpyArray> => {
  const wanted = only === undefined ? undefined : new Set(only.map((n) => `${n}.npy`))
  let members: Record<string, Uint8Array>
  try {
    members = unzipSync(bytes, { filter: (file) => wanted === undefined || wanted.has(file.name) })
  } catch (e) {
    throw formatError(source, undefined, `not a readable npz (zip) archive: ${(e as Error).message}`)
  }
  const out: Record<string, NpyArray> = {}
  for (const [file, data] of Object.entries(members)) {
    if (file.endsWith("/")) continue
    const name = file.endsWith(".npy") ? file.slice(0, -4) : file
    out[name] = decodeNpy(data, `${source}:${file}`)
  }
  if (wanted !== undefined) {
    for (const name of only ?? []) {
      if (out[name] === undefined) throw formatError(source, undefined, `npz archive has no member '${name}' (has: ${Object.keys(members).join(", ")})`)
    }
  }
  return out
}

export const readNpz = (path: string, only?: ReadonlyArray<string>): Record<string, NpyArray> => {
  let bytes: Uint8Array
  try {
    bytes = fs.readFileSync(path)
  } catch (e) {
    throw formatError(path, undefined, `cannot read npz file: ${(e as Error).message}`)
  }
  return decodeNpz(bytes, path, only)
}

export const writeNpz = (path: string, arrays: NpzArrays, options: NpzWriteOptions = {}): void => {
  fs.writeFileSync(path, encodeNpz(arrays, options))
}
