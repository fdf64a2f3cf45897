/**
 * Locks of dead processes: a real process takes an invocation lock and is killed with SIGKILL (what a
 * driver killed with -9 leaves behind); the next run's start-up sweep removes it, and never a live holder's.
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { describe, expect, it } from "vitest"
import { makeArtifactStore } from "../src/ArtifactStore.ts"
import { hashValue } from "../src/Canonical.ts"
import { lockHolder, removeIfStale, tryLock, unlock } from "../src/internal/fileLock.ts"
import { tempDir } from "./helpers.ts"

const fileLockModule = pathToFileURL(fileURLToPath(new URL("../src/internal/fileLock.ts", import.meta.url))).href

/** A separate process that takes `lockFile` and holds it until killed. */
const holdLockInChild = async (lockFile: string) => {
  const script = `import { tryLock } from ${JSON.stringify(fileLockModule)}
if (!tryLock(${JSON.stringify(lockFile)})) { console.log("busy"); process.exit(3) }
console.log("locked")
setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)))
  await new Promise<void>((resolve, reject) => {
    let out = ""
    child.stdout.on("data", (d) => {
      out += String(d)
      if (out.includes("locked")) resolve()
      if (out.includes("busy")) reject(new Error("the child could not take the lock"))
    })
    child.on("exit", () => reject(new Error(`child exited before locking: ${out}`)))
  })
  return { child, exited }
}

describe("locks of dead processes", () => {
  it("the next run's sweep removes the lock of a process killed with SIGKILL, never a live holder's", async () => {
    const home = tempDir("stale-locks")
    const store = makeArtifactStore(home)
    const deadHash = hashValue({ t: "killed" })
    const liveHash = hashValue({ t: "alive" })
    const deadLock = path.join(home, "locks", `${deadHash}.lock`)
    const liveLock = path.join(home, "locks", `${liveHash}.lock`)

    const doomed = await holdLockInChild(deadLock)
    const living = await holdLockInChild(liveLock)
    try {
      expect(lockHolder(deadLock)?.pid).toBe(doomed.child.pid)
      // while both holders live, nothing is stale
      expect(await Effect.runPromise(store.cleanStaleStaging)).toBe(0)
      expect(removeIfStale(liveLock)).toBe(false)
      expect(tryLock(liveLock)).toBe(false)
      expect(fs.existsSync(deadLock) && fs.existsSync(liveLock)).toBe(true)

      doomed.child.kill("SIGKILL")
      expect(await doomed.exited).toBe("SIGKILL")
      expect(await Effect.runPromise(store.cleanStaleStaging)).toBe(1)
      expect(fs.existsSync(deadLock)).toBe(false)
      expect(lockHolder(liveLock)?.pid).toBe(living.child.pid)
      // the live holder's lock survives repeated sweeps and still excludes others
      expect(await Effect.runPromise(store.cleanStaleStaging)).toBe(0)
      expect(tryLock(liveLock)).toBe(false)
    } finally {
      living.child.kill("SIGKILL")
      doomed.child.kill("SIGKILL")
    }
    await living.exited
    // once its holder is dead too, the lock can be taken at once
    expect(tryLock(liveLock)).toBe(true)
    unlock(liveLock)
    expect(fs.existsSync(liveLock)).toBe(false)
  })

  it("keeps a fresh lock of another host and removes the aside file of a process that died mid-takeover", async () => {
    const home = tempDir("stale-locks-host")
    const store = makeArtifactStore(home)
    const otherHost = path.join(home, "locks", `${hashValue({ t: "remote" })}.lock`)
    fs.writeFileSync(otherHost, JSON.stringify({ host: "some-other-host", pid: 1, since: Date.now() }))
    const { child, exited } = await holdLockInChild(path.join(home, "locks", "probe.lock"))
    const deadPid = child.pid!
    child.kill("SIGKILL")
    await exited
    const aside = path.join(home, "locks", `${hashValue({ t: "x" })}.lock.stale-${deadPid}-${Date.now()}`)
    fs.writeFileSync(aside, "{}")
    // probe.lock (dead child) and the aside file go; the other host's fresh lock stays
    expect(await Effect.runPromise(store.cleanStaleStaging)).toBe(2)
    expect(fs.readdirSync(path.join(home, "locks"))).toEqual([path.basename(otherHost)])
  })
})
