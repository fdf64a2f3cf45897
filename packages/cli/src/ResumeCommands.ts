/**
 * Mid-stage checkpoints at the command line (docs/engine.md, "Mid-stage checkpoints"): the resumable invocations
 * `vw2 status` lists, and `vw2 gc`, which removes resume directories nothing will resume from.
 *
 *   vw2 gc [--older-than 7d] [--dry-run]
 *     removes resume/<hash> when <hash> is published (its outputs superseded the checkpoints; normally the
 *     scheduler dropped it already, a crash between publish and drop leaves it), and when it is unpublished but
 *     untouched for longer than --older-than (an abandoned config); never while a live process holds its lock.
 */
import { ArtifactStore, parseDuration } from "@vw2/core"
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import * as fs from "node:fs"

const formatBytes = (bytes: number): string =>
  bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(1)} GiB` : bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`

const formatAge = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 120) return `${s}s`
  if (s < 7200) return `${Math.round(s / 60)}m`
  if (s < 172_800) return `${Math.round(s / 3600)}h`
  return `${Math.round(s / 86_400)}d`
}

const describeEntry = (e: ArtifactStore.ResumeEntry): string => {
  const what = e.progress === undefined ? "no checkpoint reported" : `${e.progress.step} (${e.progress.stage}) at step ${e.progress.at}/${e.progress.total}`
  return `${e.hash.slice(0, 12)}  ${what}, ${formatBytes(e.bytes)}, last written ${formatAge(Date.now() - e.modifiedMs)} ago`
}

/** `vw2 status`'s lines for unpublished invocations a rerun resumes: "resumable at step k/K". */
export const resumableLines = (store: ArtifactStore.ArtifactStoreShape): Array<string> => {
  const entries = store.listResume().filter((e) => !e.published && e.progress !== undefined)
  if (entries.length === 0) return []
  return [
    `resumable invocations (rerun the command that planned them; vw2 gc removes abandoned ones):`,
    ...entries.map((e) => `  ${e.hash.slice(0, 12)}  ${e.progress!.step} (${e.progress!.stage})  resumable at step ${e.progress!.at}/${e.progress!.total}${e.inUse ? "  [running now]" : ""}`)
  ]
}

/** What gc does with one resume directory, and why. */
export const gcVerdict = (e: ArtifactStore.ResumeEntry, olderThanMs: number, now = Date.now()): { readonly remove: boolean; readonly why: string } => {
  if (e.inUse) return { remove: false, why: "in use: a live process holds its lock" }
  if (e.published) return { remove: true, why: "published (its outputs supersede the checkpoints)" }
  if (now - e.modifiedMs > olderThanMs) return { remove: true, why: `unpublished and untouched for ${formatAge(now - e.modifiedMs)}` }
  return { remove: false, why: "unpublished and recent: a rerun resumes from it" }
}

export const gcCommand = Command.make("gc", {
  olderThan: Flag.String("older-than").pipe(
    Flag.withDescription("also remove unpublished invocations' checkpoints untouched for longer than this (e.g. 12h, 7d); default 7d"),
    Flag.withDefault("7d")
  ),
  dryRun: Flag.Boolean("dry-run").pipe(Flag.withDescription("only print what would be removed"), Flag.withDefault(false))
}, (flags) =>
  Effect.gen(function*() {
    const olderThanMs = parseDuration(flags.olderThan)
    if (olderThanMs === undefined) {
      yield* Console.error(`vw2: --older-than ${flags.olderThan}: expected a duration such as 90m, 12h, 7d`)
      process.exitCode = 2
      return
    }
    const store = ArtifactStore.makeArtifactStore()
    const entries = store.listResume()
    let removed = 0
    let freed = 0
    for (const entry of entries) {
      const verdict = gcVerdict(entry, olderThanMs)
      if (!verdict.remove) {
        yield* Console.log(`kept     ${describeEntry(entry)}: ${verdict.why}`)
        continue
      }
      if (!flags.dryRun) fs.rmSync(entry.dir, { recursive: true, force: true })
      removed++
      freed += entry.bytes
      yield* Console.log(`${flags.dryRun ? "would rm" : "removed "} ${describeEntry(entry)}: ${verdict.why}`)
    }
    yield* Console.log(
      entries.length === 0
        ? `no resume directories in ${store.root}/resume`
        : `${flags.dryRun ? "would remove" : "removed"} ${removed} of ${entries.length} resume director${entries.length === 1 ? "y" : "ies"} (${formatBytes(freed)})`
    )
  })).pipe(Command.withDescription("remove mid-stage checkpoints nothing will resume from (published, or unpublished and older than --older-than)"))
