import { Effect, Exit, Fiber } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { makeArtifactStore } from "../src/ArtifactStore.ts"
import type { ManifestFields } from "../src/ArtifactStore.ts"
import { hashValue } from "../src/Canonical.ts"
import { tempDir } from "./helpers.ts"

const fields = (hash: string): ManifestFields => ({
  hash, step: "s", stage: "st", stageVersion: "1", seed: 0, config: {}, inputs: {}, outputs: { out: "k" }, uploads: [], tracking: { runId: "run-1" }, durationMs: 1
})

/** a pid that certainly belonged to a process that has exited */
const deadPid = (): number => Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout)

describe("artifact store", () => {
  it("publishes atomically with a manifest of sizes and sha256, and verifies on read", async () => {
    const store = makeArtifactStore(tempDir("store"))
    const hash = hashValue({ t: "publish" })
    const staging = await Effect.runPromise(store.stage(hash))
    fs.mkdirSync(path.join(staging.outputRoot, "out", "sub"), { recursive: true })
    fs.writeFileSync(path.join(staging.outputRoot, "out", "sub", "a.txt"), "hello")
    expect(store.isPublished(hash)).toBe(false)
    const manifest = await Effect.runPromise(store.publish(hash, staging, fields(hash)))
    expect(manifest.files).toMatchObject([{ path: "out/sub/a.txt", size: 5, sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" }])
    expect(fs.existsSync(staging.outputRoot)).toBe(false)
    expect(store.isPublished(hash)).toBe(true)
    expect((await Effect.runPromise(store.verify(hash)))._tag).toBe("valid")
    // an extra file that is not in the manifest also makes the entry untrustworthy
    fs.writeFileSync(path.join(store.entryDir(hash), "out", "stray.txt"), "x")
    const verdict = await Effect.runPromise(store.verify(hash))
    expect(verdict).toMatchObject({ _tag: "corrupt", reason: "out/stray.txt is not in the manifest" })
    expect(fs.existsSync(store.entryDir(hash))).toBe(false)
  })

  it("trusts files untouched since publish without re-hashing, and still catches a rewrite that restores the mtime", async () => {
    const store = makeArtifactStore(tempDir("trust"))
    const publish = async (tag: string) => {
      const hash = hashValue({ t: tag })
      const staging = await Effect.runPromise(store.stage(hash))
      fs.mkdirSync(path.join(staging.outputRoot, "out"), { recursive: true })
      fs.writeFileSync(path.join(staging.outputRoot, "out", "w.bin"), Buffer.alloc(1 << 20, 7))
      fs.writeFileSync(path.join(staging.outputRoot, "out", "meta.json"), "{}")
      // whole seconds, so the test below can restore the mtime exactly
      fs.utimesSync(path.join(staging.outputRoot, "out", "w.bin"), 1_700_000_000, 1_700_000_000)
      await Effect.runPromise(store.publish(hash, staging, fields(hash)))
      return { hash, file: path.join(store.entryDir(hash), "out", "w.bin") }
    }
    const a = await publish("trusted")
    // a cache hit of an untouched entry reads no file content
    expect(await Effect.runPromise(store.verify(a.hash))).toMatchObject({ _tag: "valid", rehashed: 0 })
    // touched but identical: re-hashed once, still valid
    const later = new Date(Date.now() + 5_000)
    fs.utimesSync(a.file, later, later)
    expect(await Effect.runPromise(store.verify(a.hash))).toMatchObject({ _tag: "valid", rehashed: 1 })
    // same size, different bytes, mtime set back to the recorded one: ctime still moved, so it is re-hashed
    const b = await publish("rewritten")
    const bytes = fs.readFileSync(b.file)
    bytes[12345] = 8
    await new Promise((r) => setTimeout(r, 20)) // let the clock move so ctime differs
    fs.writeFileSync(b.file, bytes)
    fs.utimesSync(b.file, 1_700_000_000, 1_700_000_000)
    expect(fs.statSync(b.file).mtimeMs).toBe(1_700_000_000_000)
    expect(await Effect.runPromise(store.verify(b.hash))).toMatchObject({ _tag: "corrupt", reason: "out/w.bin does not match its sha256" })
  })

  it("keeps the first publication when two processes publish the same hash", async () => {
    const store = makeArtifactStore(tempDir("race"))
    const hash = hashValue({ t: "race" })
    const [one, two] = await Effect.runPromise(Effect.all([store.stage(hash), store.stage(hash)]))
    for (const s of [one!, two!]) {
      fs.mkdirSync(path.join(s.outputRoot, "out"))
      fs.writeFileSync(path.join(s.outputRoot, "out", "v"), "same")
    }
    await Effect.runPromise(store.publish(hash, one!, fields(hash)))
    const second = await Effect.runPromise(store.publish(hash, two!, { ...fields(hash), tracking: { runId: "run-2" } }))
    expect(second.tracking.runId).toBe("run-1")
    expect(fs.existsSync(two!.outputRoot)).toBe(false)
    expect((await Effect.runPromise(store.verify(hash)))._tag).toBe("valid")
  })

  it("removes staging dirs of dead processes on this host only", async () => {
    const home = tempDir("stale")
    const store = makeArtifactStore(home)
    const hash = hashValue({ t: "stale" })
    const host = os.hostname().replace(/[^A-Za-z0-9.]/g, "_")
    const dead = path.join(home, "tmp", `${hash}-${host}-${deadPid()}-1`)
    const otherHost = path.join(home, "tmp", `${hash}-elsewhere-${deadPid()}-1`)
    const live = await Effect.runPromise(store.stage(hash))
    fs.mkdirSync(dead)
    fs.mkdirSync(otherHost)
    expect(await Effect.runPromise(store.cleanStaleStaging)).toBe(1)
    expect(fs.existsSync(dead)).toBe(false)
    expect(fs.existsSync(otherHost)).toBe(true)
    expect(fs.existsSync(live.outputRoot)).toBe(true)
  })

  it("locks an invocation across holders and takes over a dead holder's lock at once", async () => {
    const home = tempDir("lock")
    const store = makeArtifactStore(home)
    const hash = hashValue({ t: "lock" })
    const lockFile = path.join(home, "locks", `${hash}.lock`)
    fs.writeFileSync(lockFile, JSON.stringify({ host: os.hostname(), pid: deadPid(), since: 0 }))
    const started = Date.now()
    await Effect.runPromise(Effect.scoped(store.lock(hash)))
    expect(Date.now() - started).toBeLessThan(1000)
    expect(fs.existsSync(lockFile)).toBe(false) // released with the scope

    // a live holder (this process, via a first scope) makes the second acquisition wait
    let waited = false
    const holder = Effect.runFork(Effect.scoped(Effect.andThen(store.lock(hash), Effect.never)))
    while (!fs.existsSync(lockFile)) await new Promise((r) => setTimeout(r, 10))
    const contender = Effect.runFork(Effect.scoped(store.lock(hash, () => (waited = true))))
    await new Promise((r) => setTimeout(r, 400))
    expect(waited).toBe(true)
    expect(contender.pollUnsafe()).toBeUndefined()
    await Effect.runPromise(Fiber.interrupt(holder))
    const exit = await Effect.runPromise(Fiber.await(contender))
    expect(Exit.isSuccess(exit)).toBe(true)
  })
})
