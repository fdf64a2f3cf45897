/**
 * Canonical JSON and SHA-256: the identity of configs and invocations.
 * Canonical form: object keys sorted (UTF-16 order), no whitespace, numbers in their shortest round-trip
 * form with -0 written as 0, and every value that JSON cannot carry faithfully (NaN, ±Infinity, undefined,
 * functions, bigints, symbols, class instances) rejected with its path, so nothing is silently dropped.
 */
import { createHash } from "node:crypto"
import { formatPath } from "./ConfigPath.ts"

export class CanonicalJsonError extends TypeError {
  readonly path: string
  /** the offending path as segments, so a caller can prefix it with where the value sits ("train" + "lr") */
  readonly segments: ReadonlyArray<PropertyKey>
  /** the message without its path */
  readonly reason: string
  constructor(path: ReadonlyArray<PropertyKey>, what: string) {
    const reason = `${what} cannot be hashed (canonical JSON carries only finite numbers, strings, booleans, null, arrays and plain objects)`
    super(`${formatPath(path)}: ${reason}`)
    this.path = formatPath(path)
    this.segments = [...path]
    this.reason = reason
  }
}

const isPlainObject = (u: object): boolean => {
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

const write = (value: unknown, path: Array<PropertyKey>, out: Array<string>): void => {
  switch (typeof value) {
    case "string":
      out.push(JSON.stringify(value))
      return
    case "boolean":
      out.push(value ? "true" : "false")
      return
    case "number":
      if (!Number.isFinite(value)) throw new CanonicalJsonError(path, String(value))
      out.push(Object.is(value, -0) ? "0" : JSON.stringify(value))
      return
    case "object": {
      if (value === null) {
        out.push("null")
        return
      }
      if (Array.isArray(value)) {
        out.push("[")
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.push(",")
          path.push(i)
          write(value[i], path, out)
          path.pop()
        }
        out.push("]")
        return
      }
      if (!isPlainObject(value)) throw new CanonicalJsonError(path, `an instance of ${value.constructor?.name ?? "a class"}`)
      const keys = Object.keys(value).sort()
      out.push("{")
      keys.forEach((key, i) => {
        if (i > 0) out.push(",")
        out.push(JSON.stringify(key), ":")
        path.push(key)
        write((value as Record<string, unknown>)[key], path, out)
        path.pop()
      })
      out.push("}")
      return
    }
    default:
      throw new CanonicalJsonError(path, typeof value === "undefined" ? "undefined" : `a ${typeof value}`)
  }
}

/** Canonical JSON text of `value`; throws CanonicalJsonError naming the offending path. */
export const canonicalJson = (value: unknown): string => {
  const out: Array<string> = []
  write(value, [], out)
  return out.join("")
}

export const sha256Hex = (text: string | Uint8Array): string => createHash("sha256").update(text).digest("hex")

/** SHA-256 (hex) of the canonical JSON of `value`. */
export const hashValue = (value: unknown): string => sha256Hex(canonicalJson(value))
