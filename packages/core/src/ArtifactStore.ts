/**
 * Content-addressed artifact store under VW2_HOME (default ./.vw2):
 *
 *   store/<hash>/manifest.json        committed invocation: its outputs + manifest (files, sizes, sha256)
 *   store/<hash>/<output>/...         one directory per output (and any extra dir the stage wrote)
 *   tmp/<hash>-<host>-<pid>-<n>/      staging: a worker writes here; never read as a result
 *   locks/<hash>.lock                 held while one process computes <hash> (see internal/fileLock.ts)
 *   trash/                            corrupted entries moved out of the way (kept for inspection)
 *   runs/<id>.json                    one record per `vw2 run` (vw2 status)
 *   resume/<hash>/                    an unpublished invocation's mid-stage checkpoints (the stage's), and
 *   resume/<hash>/.vw2-progress.json  the engine's note of its last one ("resumable at step k/K")
 *   sweeps/<configHash>/              early-stopping reports and decisions of a sweep (SweepScheduler.ts)
 * Nothing but this module, `vw2 gc` and the sweep scheduler reads resume/ or sweeps/: they are never entries.
 *
 * Publishing writes manifest.json into the staging dir and renames the dir to store/<hash> in one atomic
 * step, so a half-written invocation never looks complete. Readers verify sizes against the manifest and
 * re-hash (sha256) the files whose mtime or ctime changed since publish; a mismatch moves the entry to trash/
 * and the invocation is recomputed.
 */
import { Context, Data, Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { asideOwnerPid, isProcessAlive, lockHeartbeatMs, lockHolder, refreshLock, removeIfStale, tryLock, unlock } from "./internal/fileLock.ts"
import { redactConfig } from "./Redaction.ts"
import type { ArtifactKind } from "./Stage.ts"

export interface ManifestFile {
  /** posix path relative to the invocation root, e.g. "model/weights.bin" */
  readonly path: string
  readonly size: number
  readonly sha256: string
  /** stat times at publish: while size, mtime and ctime are unchanged the file is trusted without re-hashing
   * (ctime cannot be set back by a user, so a rewrite with a restored mtime is still caught) */
  readonly mtimeMs?: number
  readonly ctimeMs?: number
}

export interface Manifest {
  readonly format: 1
  readonly hash: string
  readonly step: string
  readonly stage: string
  readonly stageVersion: string
  readonly seed: number
  /** the invocation's config with its secrets as `***` (Redaction.ts); the hash took the real values */
  readonly config: unknown
  /** input name → "<hash>/<output>" */
  readonly inputs: Readonly<Record<string, string>>
  readonly outputs: Readonly<Record<string, ArtifactKind>>
  readonly files: ReadonlyArray<ManifestFile>
  /** files the stage marked with ctx.upload */
  readonly uploads: ReadonlyArray<string>
  /** the tracker run that produced this entry, so cache hits can point at it */
  readonly tracking: { readonly runId: string | undefined }
  /** the stage's final value of each metric, so a cache hit in any later run can show them; finite values
   * only (JSON has no NaN); absent in manifests written before it was recorded */
  readonly metrics?: Readonly<Record<string, number>>
  readonly createdAt: string
  readonly durationMs: number
}

export type ManifestFields = Omit<Manifest, "format" | "files" | "createdAt">

export class StoreError extends Data.TaggedError("StoreError")<{ readonly message: string; readonly path: string }> {}

export type Verification =
  | { readonly _tag: "absent" }
  | {
    readonly _tag: "valid"
    readonly manifest: Manifest
    /** files whose sha256 was recomputed (the others were unchanged since publish: same size, mtime, ctime) */
    readonly rehashed: number
  }
  | { readonly _tag: "corrupt"; readonly reason: string; readonly movedTo: string }

export interface Staging {
  readonly outputRoot: string
  readonly scratchDir: string
}

export interface ArtifactStoreShape {
  readonly root: string
  readonly entryDir: (hash: string) => string
  /** cheap check used by `vw2 plan`: a committed manifest exists and the file sizes match */
  readonly isPublished: (hash: string) => boolean
  /** full check: sizes, and sha256 of every file whose mtime/ctime changed since publish; a corrupt entry is moved to trash/ */
  readonly verify: (hash: string) => Effect.Effect<Verification, StoreError>
  readonly readManifest: (hash: string) => Manifest | undefined
  readonly stage: (hash: string) => Effect.Effect<Staging, StoreError>
  readonly discard: (staging: Staging) => Effect.Effect<void>
  /** hashes the staged files, writes the manifest and renames the staging dir into place */
  readonly publish: (hash: string, staging: Staging, fields: ManifestFields) => Effect.Effect<Manifest, StoreError>
  /** holds the invocation's lock for the scope; waits (polling) while another live process holds it */
  readonly lock: (hash: string, onWait?: () => void) => Effect.Effect<void, never, import("effect").Scope.Scope>
  /** removes staging dirs and lock files left by dead processes on this host (a driver killed with -9), and
   * locks another host stopped refreshing; returns how many it removed */
  readonly cleanStaleStaging: Effect.Effect<number>
  readonly runsDir: string
  /** where an invocation keeps its mid-stage checkpoints until it publishes (`<home>/resume/<hash>`) */
  readonly resumeDirOf: (hash: string) => string
  /** drops an invocation's mid-stage checkpoints (after it published) */
  readonly dropResume: (hash: string) => Effect.Effect<void>
  /** notes the invocation's last durable checkpoint (atomic write; called for each `checkpoint` event) */
  readonly recordCheckpoint: (progress: Omit<ResumeProgress, "format" | "updatedAt">) => void
  /** the last checkpoint noted for an invocation that has not published; undefined otherwise */
  readonly resumeProgress: (hash: string) => ResumeProgress | undefined
  /** every resume directory in the store */
  readonly listResume: () => ReadonlyArray<ResumeEntry>
}

/** The engine's note of an invocation's last durable mid-stage checkpoint (the stage's `checkpoint` event). */
export interface ResumeProgress {
  readonly format: 1
  readonly hash: string
  readonly step: string
  readonly stage: string
  /** the checkpoint's step and the stage's total steps */
  readonly at: number
  readonly total: number
  readonly updatedAt: string
}

/** One resume directory, for `vw2 status` and `vw2 gc`. */
export interface ResumeEntry {
  readonly hash: string
  readonly dir: string
  /** absent: no checkpoint was reported (yet) */
  readonly progress?: ResumeProgress
  readonly published: boolean
  /** newest mtime of anything in it (ms since the epoch) */
  readonly modifiedMs: number
  readonly bytes: number
  /** a live process holds the invocation's lock (it is computing it now) */
  readonly inUse: boolean
}

/** the engine's file inside a resume dir; stages keep their own names clear of `.vw2-` */
export const resumeProgressFile = ".vw2-progress.json"

export class ArtifactStore extends Context.Service<ArtifactStore, ArtifactStoreShape>()("@vw2/core/ArtifactStore") {}

export const defaultHome = (): string => path.resolve(process.env.VW2_HOME ?? ".vw2")

const hashPattern = /^[0-9a-f]{64}$/

const sha256File = (file: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const hash = createHash("sha256")
    fs.createReadStream(file).on("data", (chunk) => hash.update(chunk)).on("error", reject).on("end", () => resolve(hash.digest("hex")))
  })

const listFiles = async (root: string, rel = ""): Promise<Array<string>> => {
  const entries = await fsp.readdir(path.join(root, rel), { withFileTypes: true })
  const out: Array<string> = []
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const child = rel === "" ? entry.name : `${rel}/${entry.name}`
    if (entry.isDirectory()) out.push(...(await listFiles(root, child)))
    else if (entry.isFile()) out.push(child)
    else throw new Error(`${path.join(root, child)}: only regular files and directories can be published`)
  }
  return out
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

export const makeArtifactStore = (home: string = defaultHome()): ArtifactStoreShape => {
  const root = path.resolve(home)
  const dirs = {
    store: path.join(root, "store"),
    tmp: path.join(root, "tmp"),
    locks: path.join(root, "locks"),
    trash: path.join(root, "trash"),
    runs: path.join(root, "runs"),
    resume: path.join(root, "resume")
  }
  for (const dir of Object.values(dirs)) fs.mkdirSync(dir, { recursive: true })
  let stagingCounter = 0
  const hostTag = os.hostname().replace(/[^A-Za-z0-9.]/g, "_")

  const entryDir = (hash: string) => {
    if (!hashPattern.test(hash)) throw new TypeError(`not an invocation hash: ${hash}`)
    return path.join(dirs.store, hash)
  }

  const readManifest = (hash: string): Manifest | undefined => {
    try {
      const manifest = JSON.parse(fs.readFileSync(path.join(entryDir(hash), "manifest.json"), "utf8")) as Manifest
      return manifest.format === 1 && manifest.hash === hash && Array.isArray(manifest.files) ? manifest : undefined
    } catch {
      return undefined
    }
  }

  const isPublished = (hash: string): boolean => {
    const manifest = readManifest(hash)
    if (manifest === undefined) return false
    const dir = entryDir(hash)
    return manifest.files.every((f) => {
      try {
        return fs.statSync(path.join(dir, f.path)).size === f.size
      } catch {
        return false
      }
    })
  }

  const moveToTrash = (hash: string): string => {
    const target = path.join(dirs.trash, `${hash}-${Date.now()}-${process.pid}`)
    try {
      fs.renameSync(entryDir(hash), target)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
    }
    return target
  }

  const verify = (hash: string): Effect.Effect<Verification, StoreError> =>
    Effect.tryPromise({
      try: async (): Promise<Verification> => {
        const dir = entryDir(hash)
        if (!fs.existsSync(dir)) return { _tag: "absent" }
        const manifest = readManifest(hash)
        let reason: string | undefined = manifest === undefined ? "manifest.json missing or unreadable" : undefined
        let rehashed = 0
        if (manifest !== undefined) {
          const listed = new Set(manifest.files.map((f) => f.path))
          for (const file of manifest.files) {
            const full = path.join(dir, file.path)
            let stat: fs.Stats
            try {
              stat = await fsp.stat(full)
            } catch {
              reason = `${file.path} is missing`
              break
            }
            if (stat.size !== file.size) {
              reason = `${file.path} has ${stat.size} bytes, manifest says ${file.size}`
              break
            }
            // Untouched since publish: trust the recorded sha256 (a cache hit must not re-read every checkpoint).
            if (file.mtimeMs === stat.mtimeMs && file.ctimeMs === stat.ctimeMs) continue
            rehashed++
            if ((await sha256File(full)) !== file.sha256) {
              reason = `${file.path} does not match its sha256`
              break
            }
          }
          if (reason === undefined) {
            const extra = (await listFiles(dir)).find((f) => f !== "manifest.json" && !listed.has(f))
            if (extra !== undefined) reason = `${extra} is not in the manifest`
          }
        }
        if (reason === undefined) return { _tag: "valid", manifest: manifest!, rehashed }
        return { _tag: "corrupt", reason, movedTo: moveToTrash(hash) }
      },
      catch: (cause) => new StoreError({ message: `verifying ${hash}: ${String(cause)}`, path: entryDir(hash) })
    })

  const stage = (hash: string): Effect.Effect<Staging, StoreError> =>
    Effect.try({
      try: () => {
        const base = path.join(dirs.tmp, `${hash}-${hostTag}-${process.pid}-${++stagingCounter}`)
        fs.rmSync(base, { recursive: true, force: true })
        fs.mkdirSync(base, { recursive: true })
        fs.mkdirSync(`${base}.scratch`, { recursive: true })
        return { outputRoot: base, scratchDir: `${base}.scratch` }
      },
      catch: (cause) => new StoreError({ message: `creating staging dir: ${String(cause)}`, path: dirs.tmp })
    })

  const discard = (staging: Staging): Effect.Effect<void> =>
    Effect.promise(async () => {
      await fsp.rm(staging.outputRoot, { recursive: true, force: true })
      await fsp.rm(staging.scratchDir, { recursive: true, force: true })
    })

  const publish = (hash: string, staging: Staging, fields: ManifestFields): Effect.Effect<Manifest, StoreError> =>
    Effect.tryPromise({
      try: async () => {
        await fsp.rm(staging.scratchDir, { recursive: true, force: true })
        const files: Array<ManifestFile> = []
        for (const rel of await listFiles(staging.outputRoot)) {
          if (rel === "manifest.json") throw new Error("a stage may not write manifest.json at its output root")
          const full = path.join(staging.outputRoot, rel)
          const sha256 = await sha256File(full)
          const stat = await fsp.stat(full) // after hashing: the times the hash vouches for
          files.push({ path: rel, size: stat.size, sha256, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs })
        }
        // the manifest is readable by anyone with the store: no secrets in it
        const manifest: Manifest = { format: 1, ...fields, config: redactConfig(fields.config), files, createdAt: new Date().toISOString() }
        const manifestPath = path.join(staging.outputRoot, "manifest.json")
        await fsp.writeFile(manifestPath, JSON.stringify(manifest, null, 2))
        // make the manifest durable before the rename commits the entry
        const handle = await fsp.open(manifestPath, "r")
        await handle.sync()
        await handle.close()
        try {
          await fsp.rename(staging.outputRoot, entryDir(hash))
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code
          if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error
          // Another process published the same hash first: same inputs, same content; keep theirs.
          await fsp.rm(staging.outputRoot, { recursive: true, force: true })
          return readManifest(hash) ?? manifest
        }
        return manifest
      },
      catch: (cause) => new StoreError({ message: `publishing ${hash}: ${cause instanceof Error ? cause.message : String(cause)}`, path: staging.outputRoot })
    })

  const lock = (hash: string, onWait?: () => void) => {
    const file = path.join(dirs.locks, `${entryDir(hash).slice(dirs.store.length + 1)}.lock`)
    const acquire = Effect.gen(function*() {
      let announced = false
      while (!tryLock(file)) {
        if (!announced) {
          announced = true
          onWait?.()
        }
        yield* Effect.sleep(150)
      }
    })
    const heartbeat = Effect.forever(Effect.andThen(Effect.sleep(lockHeartbeatMs), Effect.sync(() => refreshLock(file))))
    return Effect.acquireRelease(acquire, () => Effect.sync(() => unlock(file))).pipe(
      Effect.andThen(Effect.forkScoped(heartbeat)),
      Effect.asVoid
    )
  }

  const cleanStaleStaging = Effect.sync(() => {
    let removed = 0
    for (const name of fs.readdirSync(dirs.tmp)) {
      // only this host's dead processes: a shared store may hold other machines' live staging dirs
      const match = /^[0-9a-f]{64}-(.+)-(\d+)-\d+(\.scratch)?$/.exec(name)
      if (match === null || match[1] !== hostTag || isAlive(Number(match[2]))) continue
      fs.rmSync(path.join(dirs.tmp, name), { recursive: true, force: true })
      removed++
    }
    // A driver killed while holding a lock leaves it behind; the next run may never lock that hash (it was
    // published already), so stale locks are swept here rather than only taken over on contention.
    for (const name of fs.readdirSync(dirs.locks)) {
      const file = path.join(dirs.locks, name)
      if (name.endsWith(".lock")) {
        if (removeIfStale(file)) removed++
        continue
      }
      const asideBy = asideOwnerPid(name)
      if (asideBy !== undefined && !isAlive(asideBy)) {
        fs.rmSync(file, { force: true })
        removed++
      }
    }
    return removed
  })

  const resumeDirOf = (hash: string) => {
    if (!hashPattern.test(hash)) throw new TypeError(`not an invocation hash: ${hash}`)
    return path.join(dirs.resume, hash)
  }
  const dropResume = (hash: string) => Effect.promise(() => fsp.rm(resumeDirOf(hash), { recursive: true, force: true }))

  const readProgress = (hash: string): ResumeProgress | undefined => {
    try {
      const progress = JSON.parse(fs.readFileSync(path.join(resumeDirOf(hash), resumeProgressFile), "utf8")) as ResumeProgress
      return progress.format === 1 && progress.hash === hash && Number.isFinite(progress.at) && Number.isFinite(progress.total) ? progress : undefined
    } catch {
      return undefined
    }
  }
  const recordCheckpoint = (progress: Omit<ResumeProgress, "format" | "updatedAt">) => {
    const dir = resumeDirOf(progress.hash)
    const file = path.join(dir, resumeProgressFile)
    const tmp = `${file}.${process.pid}.tmp`
    try {
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(tmp, JSON.stringify({ format: 1, ...progress, updatedAt: new Date().toISOString() } satisfies ResumeProgress))
      fs.renameSync(tmp, file)
    } catch {
      // a note for humans (plan, status): losing it never changes what runs
      fs.rmSync(tmp, { force: true })
    }
  }
  const resumeProgress = (hash: string) => (isPublished(hash) ? undefined : readProgress(hash))
  const sizeAndMtime = (dir: string): { bytes: number; modifiedMs: number } => {
    let bytes = 0
    let modifiedMs = 0
    const walk = (d: string) => {
      for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
        const full = path.join(d, entry.name)
        const stat = fs.lstatSync(full)
        modifiedMs = Math.max(modifiedMs, stat.mtimeMs)
        if (entry.isDirectory()) walk(full)
        else bytes += stat.size
      }
    }
    try {
      modifiedMs = fs.statSync(dir).mtimeMs
      walk(dir)
    } catch {
      // removed while we looked
    }
    return { bytes, modifiedMs }
  }
  const listResume = (): ReadonlyArray<ResumeEntry> =>
    fs.readdirSync(dirs.resume).filter((name) => hashPattern.test(name)).sort().map((hash) => {
      const progress = readProgress(hash)
      const holder = lockHolder(path.join(dirs.locks, `${hash}.lock`))
      const inUse = holder !== undefined && (holder.host !== os.hostname() || isProcessAlive(holder.pid))
      return { hash, dir: resumeDirOf(hash), ...(progress === undefined ? {} : { progress }), published: isPublished(hash), ...sizeAndMtime(resumeDirOf(hash)), inUse }
    })

  return {
    root,
    entryDir,
    isPublished,
    verify,
    readManifest,
    stage,
    discard,
    publish,
    lock,
    cleanStaleStaging,
    runsDir: dirs.runs,
    resumeDirOf,
    dropResume,
    recordCheckpoint,
    resumeProgress,
    listResume
  }
}

export const layer = (home?: string): Layer.Layer<ArtifactStore> => Layer.sync(ArtifactStore, () => makeArtifactStore(home))
