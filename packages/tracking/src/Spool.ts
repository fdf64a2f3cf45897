/**
 * The on-disk spool: an ordered log of tracking records that could not be delivered. Each process
 * appends to its own segment (`<time>-<pid>-<nonce>.jsonl`); a delivered prefix is remembered in
 * `<segment>.cursor` so a replay that is cut short resumes where it stopped. Segments of processes that
 * died are claimed (renamed to the claimer's pid, keeping their time prefix, hence their order) and
 * replayed by the next vw2 process.
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

export const isProcessAlive = (pid: number): boolean => {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const segmentName = /^(\d{15})-(\d+)-([0-9a-f]+)\.jsonl$/

export interface SpoolLine<R> {
  readonly record: R
  /** byte offset just after this line: the cursor once it is delivered */
  readonly end: number
}

export class Spool<R> {
  readonly dir: string
  /** segments this process replays, oldest first (claimed ones, then its own) */
  readonly #segments: Array<string> = []
  #own: string | undefined

  constructor(dir: string) {
    this.dir = dir
    fs.mkdirSync(dir, { recursive: true })
  }

  /** Takes over the segments of dead processes (atomic rename: two live claimers never share one). */
  claimOrphans(): number {
    let claimed = 0
    for (const name of fs.readdirSync(this.dir).sort()) {
      const m = segmentName.exec(name)
      if (m === null || Number(m[2]) === process.pid || isProcessAlive(Number(m[2]))) continue
      const target = path.join(this.dir, `${m[1]}-${process.pid}-${m[3]}.jsonl`)
      try {
        fs.renameSync(path.join(this.dir, name), target)
      } catch {
        continue // someone else claimed it first
      }
      try {
        fs.renameSync(path.join(this.dir, `${name}.cursor`), `${target}.cursor`)
      } catch {
        // no cursor: nothing of it was delivered yet
      }
      this.#segments.push(target)
      claimed++
    }
    this.#segments.sort()
    return claimed
  }

  get isEmpty(): boolean {
    return this.#segments.length === 0
  }

  /** Appends records durably (synchronously, so callers keep their order even across a crash). */
  append(records: ReadonlyArray<R>): void {
    if (records.length === 0) return
    if (this.#own === undefined) {
      const stamp = String(Date.now()).padStart(15, "0")
      this.#own = path.join(this.dir, `${stamp}-${process.pid}-${randomBytes(4).toString("hex")}.jsonl`)
      this.#segments.push(this.#own)
    }
    fs.appendFileSync(this.#own, records.map((r) => JSON.stringify(r)).join("\n") + "\n")
  }

  /** The oldest segment's undelivered lines (at most `max`), or undefined when the spool is empty. */
  peek(max: number): { readonly segment: string; readonly lines: Array<SpoolLine<R>> } | undefined {
    const segment = this.#segments[0]
    if (segment === undefined) return undefined
    const start = this.#cursor(segment)
    let text: Buffer
    try {
      const fd = fs.openSync(segment, "r")
      try {
        const size = fs.fstatSync(fd).size
        text = Buffer.alloc(Math.max(0, size - start))
        fs.readSync(fd, text, 0, text.length, start)
      } finally {
        fs.closeSync(fd)
      }
    } catch {
      text = Buffer.alloc(0)
    }
    const lines: Array<SpoolLine<R>> = []
    let offset = 0
    while (lines.length < max) {
      const newline = text.indexOf(10, offset)
      if (newline < 0) break // a torn last line (crash mid-append) is never delivered
      const raw = text.subarray(offset, newline).toString("utf8")
      offset = newline + 1
      if (raw.trim() === "") continue
      try {
        lines.push({ record: JSON.parse(raw) as R, end: start + offset })
      } catch {
        // corrupt line: skip it rather than block the spool forever
      }
    }
    if (lines.length === 0) {
      if (offset > 0) this.commit(segment, start + offset) // only blank or corrupt lines: step over them
      else this.#remove(segment) // fully delivered (our own segment is re-created on the next append)
      return this.peek(max)
    }
    return { segment, lines }
  }

  /** Marks everything up to `end` in `segment` delivered. */
  commit(segment: string, end: number): void {
    const temp = `${segment}.cursor.tmp`
    fs.writeFileSync(temp, String(end))
    fs.renameSync(temp, `${segment}.cursor`)
  }

  #cursor(segment: string): number {
    try {
      return Number(fs.readFileSync(`${segment}.cursor`, "utf8")) || 0
    } catch {
      return 0
    }
  }

  #remove(segment: string): void {
    this.#segments.shift()
    if (segment === this.#own) this.#own = undefined
    fs.rmSync(segment, { force: true })
    fs.rmSync(`${segment}.cursor`, { force: true })
  }
}
