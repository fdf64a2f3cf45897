import { describe, expect, it } from "vitest"
import { canonicalJson, hashValue } from "../src/Canonical.ts"

describe("canonical JSON", () => {
  it("hashes the same config written differently to the same value", () => {
    const a = { fit: { lr: 0.1, layers: [8, 5, 5], name: "x" }, data: { n: 1000, noise: 0 } }
    const b = { data: { noise: -0, n: 1e3 }, fit: { name: "x", layers: [8.0, 5, 5], lr: 1e-1 } }
    expect(canonicalJson(a)).toBe(canonicalJson(b))
    expect(hashValue(a)).toBe(hashValue(b))
    expect(hashValue(a)).toMatch(/^[0-9a-f]{64}$/)
  })

  it("changes the hash for any semantic change", () => {
    const base = { fit: { lr: 0.1, layers: [8, 5, 5], name: "x", flag: true }, data: { n: 1000 } }
    const variants: Array<unknown> = [
      { ...base, fit: { ...base.fit, lr: 0.10000001 } },
      { ...base, fit: { ...base.fit, layers: [8, 5] } },
      { ...base, fit: { ...base.fit, layers: [5, 8, 5] } },
      { ...base, fit: { ...base.fit, name: "y" } },
      { ...base, fit: { ...base.fit, flag: false } },
      { ...base, fit: { ...base.fit, extra: null } },
      { ...base, data: { n: "1000" } },
      { ...base, data: { m: 1000 } }
    ]
    const hashes = new Set([hashValue(base), ...variants.map(hashValue)])
    expect(hashes.size).toBe(variants.length + 1)
  })

  it("rejects values JSON cannot carry, naming the path", () => {
    expect(() => canonicalJson({ a: { b: [1, Number.NaN] } })).toThrow(/a\.b\[1\]: NaN/)
    expect(() => canonicalJson({ a: undefined })).toThrow(/^a: undefined/)
    expect(() => canonicalJson({ a: Infinity })).toThrow(/a: Infinity/)
    expect(() => canonicalJson({ d: new Date(0) })).toThrow(/d: an instance of Date/)
    expect(() => canonicalJson({ f: () => 1 })).toThrow(/f: a function/)
  })
})
