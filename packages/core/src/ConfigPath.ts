/**
 * Config paths: "dldm.fsq.levels" at the type level (for sweep keys) and at run time (for --set and
 * error messages, where array elements read `levels[2]`).
 */

type Prev = [never, 0, 1, 2, 3, 4, 5, 6]

/** Every dotted path into a config object (objects are walked, arrays and scalars are leaves). */
export type ConfigPaths<T, Depth extends number = 6> = [Depth] extends [never]
  ? never
  : T extends ReadonlyArray<unknown> ? never
  : T extends object ? {
      [K in keyof T & string]-?: K | `${K}.${ConfigPaths<NonNullable<T[K]>, Prev[Depth]>}`
    }[keyof T & string]
  : never

/** The type found at a dotted path. */
export type PathValue<T, P extends string> = P extends `${infer Head}.${infer Rest}`
  ? Head extends keyof T ? PathValue<NonNullable<T[Head]>, Rest> : never
  : P extends keyof T ? T[P] : never

export type PathSegment = string | number

/** ["dldm", "fsq", "levels", 2] → "dldm.fsq.levels[2]" */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  let out = ""
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`
    else out += out === "" ? String(segment) : `.${String(segment)}`
  }
  return out === "" ? "(root)" : out
}

/** "dldm.fsq.levels[2]" or "dldm.fsq.levels.2" → ["dldm", "fsq", "levels", 2]; undefined when malformed. */
export const parsePath = (text: string): Array<PathSegment> | undefined => {
  const segments: Array<PathSegment> = []
  const pattern = /([A-Za-z_][\w-]*)|\[(\d+)\]|\.(\d+)(?=\.|\[|$)/y
  let index = 0
  while (index < text.length) {
    if (text[index] === "." && index > 0 && /[A-Za-z_]/.test(text[index + 1] ?? "")) index++
    pattern.lastIndex = index
    const match = pattern.exec(text)
    if (match === null) return undefined
    if (match[1] !== undefined) segments.push(match[1])
    else segments.push(Number(match[2] ?? match[3]))
    index = pattern.lastIndex
  }
  return segments.length > 0 ? segments : undefined
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

export const getPath = (root: unknown, path: ReadonlyArray<PathSegment>): unknown => {
  let node = root
  for (const segment of path) {
    if (typeof segment === "number") {
      if (!Array.isArray(node)) return undefined
      node = node[segment]
    } else {
      if (!isRecord(node)) return undefined
      node = node[segment]
    }
  }
  return node
}

/**
 * Returns a copy of `root` with `value` at `path`, creating intermediate objects where missing (so a
 * misspelt key reaches Schema validation and is reported as an unknown key, with its path).
 */
export const setPath = (root: unknown, path: ReadonlyArray<PathSegment>, value: unknown): unknown => {
  if (path.length === 0) return value
  const [head, ...rest] = path as [PathSegment, ...Array<PathSegment>]
  if (typeof head === "number") {
    const array = Array.isArray(root) ? [...root] : []
    if (head > array.length) throw new RangeError(`index ${head} is past the end of an array of length ${array.length}`)
    array[head] = setPath(array[head], rest, value)
    return array
  }
  const record = isRecord(root) ? { ...root } : {}
  record[head] = setPath(record[head], rest, value)
  return record
}
