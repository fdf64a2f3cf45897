/** The spool on real files: order, resume after a partial replay, torn lines, claiming dead segments. */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { Spool, splitLogBatch } from "../src/index.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-spool-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const drain = (spool: Spool<{ n: number }>) => {
  const seen: Array<number> = []
  for (let batch = spool.peek(3); batch !== undefined; batch = spool.peek(3)) {
    for (const line of batch.lines) seen.push(line.record.n)
    spool.commit(batch.segment, batch.lines[batch.lines.length - 1]!.end)
  }
  return seen
}

describe("Spool", () => {
  it("keeps order, resumes from its cursor, skips a torn last line, and removes delivered segments", () => {
    const d = path.join(dir, "a")
    const spool = new Spool<{ n: number }>(d)
    spool.append([1, 2, 3, 4].map((n) => ({ n })))
    const first = spool.peek(2)!
    expect(first.lines.map((l) => l.record.n)).toEqual([1, 2])
    spool.commit(first.segment, first.lines[1]!.end)
    spool.append([{ n: 5 }])
    fs.appendFileSync(first.segment, '{"n":6') // a crash mid-append
    expect(drain(spool)).toEqual([3, 4, 5])
    expect(spool.isEmpty).toBe(true)
    expect(fs.readdirSync(d)).toEqual([])
  })

  it("a later process claims the segments of a dead one, oldest first, but never a live one's", () => {
    const d = path.join(dir, "b")
    const script = `import { Spool } from ${JSON.stringify(path.resolve(import.meta.dirname, "../src/Spool.ts"))}
const s = new Spool(${JSON.stringify(d)}); s.append([{ n: Number(process.argv[2]) }, { n: Number(process.argv[2]) + 1 }])`
    const file = path.join(dir, "writer.ts")
    fs.writeFileSync(file, script)
    for (const n of [10, 20]) expect(spawnSync(process.execPath, [file, String(n)]).status).toBe(0)
    const live = new Spool<{ n: number }>(d)
    live.append([{ n: 99 }]) // ours: not an orphan
    const other = new Spool<{ n: number }>(d)
    expect(other.claimOrphans()).toBe(2)
    expect(drain(other)).toEqual([10, 11, 20, 21])
    expect(drain(live)).toEqual([99])
  })
})

describe("splitLogBatch", () => {
  it("never exceeds MLflow's per-request limits, and loses nothing", () => {
    const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: `m${i % 7}`, value: i % 11 === 0 ? Number.NaN : i, step: i, timestamp: i }))
    const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: "é".repeat(i % 5 === 0 ? 6000 : 10) }))
    const tags = Array.from({ length: 120 }, (_, i) => ({ key: `t${i}`, value: "x".repeat(7000) }))
    const bodies = splitLogBatch("r".repeat(32), { metrics, params, tags }).map((b) => ({ bytes: Buffer.byteLength(b), json: JSON.parse(b) as { metrics: Array<unknown>; params: Array<unknown>; tags: Array<unknown> } }))
    for (const { bytes, json } of bodies) {
      expect(bytes).toBeLessThan(1_000_000)
      expect(json.metrics.length).toBeLessThanOrEqual(1000)
      expect(json.params.length).toBeLessThanOrEqual(100)
      expect(json.tags.length).toBeLessThanOrEqual(100)
      expect(json.metrics.length + json.params.length + json.tags.length).toBeLessThanOrEqual(1000)
    }
    expect(bodies.reduce((n, b) => n + b.json.metrics.length, 0)).toBe(2500)
    expect(bodies.reduce((n, b) => n + b.json.params.length, 0)).toBe(250)
    expect(bodies.reduce((n, b) => n + b.json.tags.length, 0)).toBe(120)
    expect(bodies.flatMap((b) => b.json.metrics as Array<{ value: unknown }>)[0]!.value).toBe("NaN")
  })
})
