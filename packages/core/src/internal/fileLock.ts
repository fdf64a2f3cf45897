/**
 * Inter-process lock files for the artifact store: `open(O_CREAT|O_EXCL)` creates the lock atomically and
 * its content names the holder (host + pid). A lock whose holder is a dead process on this host (kill -9 of
 * a driver) is stale and taken over at once; a holder on another host (a shared store) must refresh the
 * file's mtime, and a lock not refreshed for `staleAfterMs` is taken over. `removeIfStale` lets the next run
 * sweep every stale lock at start, also those of invocations it will never lock (already published).
 */
import * as fs from "node:fs"
import * as os from "node:os"

export interface LockOwner {
  readonly host: string
  readonly pid: number
  readonly since: number
}

const staleAfterMs = 120_000
export const lockHeartbeatMs = 30_000

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const readOwner = (file: string): LockOwner | undefined => {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, "utf8")) as LockOwner
    return typeof parsed.pid === "number" && typeof parsed.host === "string" ? parsed : undefined
  } catch {
    return undefined
  }
}

const isStale = (file: string): boolean => {
  const owner = readOwner(file)
  let mtime: number
  try {
    mtime = fs.statSync(file).mtimeMs
  } catch {
    return false // gone already: the next attempt will create it
  }
  if (owner === undefined) return Date.now() - mtime > 10_000 // half-written by a crashed process
  if (owner.host === os.hostname()) return !isAlive(owner.pid)
  return Date.now() - mtime > staleAfterMs
}

/** Tries once to take the lock; returns true when this process now holds it. */
export const tryLock = (file: string): boolean => {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, "wx")
      fs.writeSync(fd, JSON.stringify({ host: os.hostname(), pid: process.pid, since: Date.now() } satisfies LockOwner))
      fs.closeSync(fd)
      return true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
      let staleContent: string
      try {
        staleContent = fs.readFileSync(file, "utf8")
      } catch {
        continue // released meanwhile: try again
      }
      if (!isStale(file) || !removeJudged(file, staleContent)) return false
    }
  }
  return false
}

/**
 * Removes `file` if it still holds `judged` (the content found stale): moves it aside, then checks that
 * what was moved is that content; if another process replaced it in between, its fresh lock is put back.
 */
const removeJudged = (file: string, judged: string): boolean => {
  const aside = `${file}.stale-${process.pid}-${Date.now()}`
  try {
    fs.renameSync(file, aside)
  } catch {
    return false
  }
  let moved: string | undefined
  try {
    moved = fs.readFileSync(aside, "utf8")
  } catch {
    moved = undefined
  }
  if (moved !== judged) {
    try {
      fs.linkSync(aside, file)
    } catch {
      // a third process created a lock meanwhile; it holds it now
    }
    fs.rmSync(aside, { force: true })
    return false
  }
  fs.rmSync(aside, { force: true })
  return true
}

/** Removes the lock if it is stale (its holder is dead on this host, or silent for too long); never a live holder's. */
export const removeIfStale = (file: string): boolean => {
  let content: string
  try {
    content = fs.readFileSync(file, "utf8")
  } catch {
    return false
  }
  return isStale(file) && removeJudged(file, content)
}

/** `<lock>.stale-<pid>-<time>`: a lock moved aside by a process that died before removing it. */
export const asideOwnerPid = (name: string): number | undefined => {
  const match = /\.lock\.stale-(\d+)-\d+$/.exec(name)
  return match === null ? undefined : Number(match[1])
}

export const isProcessAlive = (pid: number): boolean => isAlive(pid)

export const refreshLock = (file: string): void => {
  const now = new Date()
  try {
    fs.utimesSync(file, now, now)
  } catch {
    // lost the file: nothing to refresh
  }
}

/** Releases the lock if this process still holds it. */
export const unlock = (file: string): void => {
  const owner = readOwner(file)
  if (owner !== undefined && owner.pid === process.pid && owner.host === os.hostname()) fs.rmSync(file, { force: true })
}

export const lockHolder = (file: string): LockOwner | undefined => readOwner(file)
