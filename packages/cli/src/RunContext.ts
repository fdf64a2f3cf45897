/**
 * What an experiment run records about where it ran, so a result can be traced and compared later
 * (docs/engine.md, "Observers and tracking"): the git commit and whether the tree was dirty (with
 * the diff), the host (name, CPU model, cores, memory, GPU models), the Node version, and, as files, the
 * resolved config and the experiment file. The CLI hands the tags and files to the scheduler, which puts
 * them on the experiment (parent) run.
 *
 * Gathering facts never fails a run: a missing `git` or `nvidia-smi`, or a directory outside a repository,
 * becomes a tag value that says so.
 */
import { redactConfig, redactText } from "@vw2/core"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export interface RunContext {
  readonly tags: Readonly<Record<string, string>>
  /** files for the experiment run's artifact root (`localPath` under the record directory) */
  readonly artifacts: ReadonlyArray<{ readonly localPath: string; readonly artifactPath: string }>
}

export interface RunContextOptions {
  /** absolute path of the experiment file: uploaded, and its directory is where git is asked */
  readonly experimentFile: string
  /** the resolved config the plan hashes; written with its secrets masked (`redactConfig`) */
  readonly config: unknown
  /** where the files to upload are written (they stay there as the run's local record) */
  readonly recordDir: string
}

interface CommandResult {
  readonly ok: boolean
  readonly stdout: string
  readonly why: string
}

/** Runs a command and collects its stdout (up to 64 MiB: a large diff), never failing. */
const run = (command: string, args: ReadonlyArray<string>, cwd?: string): Effect.Effect<CommandResult> =>
  Effect.callback<CommandResult>((resume) => {
    execFile(command, args, { cwd, encoding: "utf8", timeout: 10_000, maxBuffer: 64 * 1024 ** 2 }, (error, stdout, stderr) => {
      if (error === null) return resume(Effect.succeed({ ok: true, stdout, why: "" }))
      const code = (error as NodeJS.ErrnoException).code
      const why = code === "ENOENT" ? `${command} not installed` : (stderr.trim().split("\n")[0] || error.message).slice(0, 200)
      resume(Effect.succeed({ ok: false, stdout: "", why }))
    })
  })

const gibibytes = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`

/** `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader` → `NVIDIA H100 80GB HBM3 (81559 MiB); …`, or `none`. */
export const formatGpuList = (csv: string): string => {
  const gpus = csv.split("\n").map((l) => l.trim()).filter((l) => l !== "")
  return gpus.length === 0 ? "none" : gpus.map((l) => l.replace(/^(.*),\s*([^,]+)$/, "$1 ($2)")).join("; ")
}

/** GPU models with their memory, one per device, or `none` (no `nvidia-smi`, or it sees no GPU). */
export const gpuModels: Effect.Effect<string> = Effect.map(
  run("nvidia-smi", ["--query-gpu=name,memory.total", "--format=csv,noheader"]),
  (r) => (r.ok ? formatGpuList(r.stdout) : "none")
)

/** Host facts as tags: `vw2.host.*` and `vw2.node`. */
export const hostTags: Effect.Effect<Record<string, string>> = Effect.map(gpuModels, (gpus) => {
  const cpus = os.cpus()
  return {
    "vw2.host.name": os.hostname(),
    "vw2.host.cpu": cpus[0]?.model.trim() || os.arch(),
    "vw2.host.cores": String(cpus.length),
    "vw2.host.memory": gibibytes(os.totalmem()),
    "vw2.host.gpus": gpus,
    "vw2.node": process.version
  }
})

/** `vw2.git.commit` and `vw2.git.dirty` for the repository holding `dir`, and the diff when dirty. */
export const gitState = (dir: string): Effect.Effect<{ readonly tags: Record<string, string>; readonly diff: string | undefined }> =>
  Effect.gen(function*() {
    const head = yield* run("git", ["rev-parse", "HEAD"], dir)
    if (!head.ok) {
      const why = `none (${head.why})`
      return { tags: { "vw2.git.commit": why, "vw2.git.dirty": "unknown" }, diff: undefined }
    }
    // tracked changes against HEAD, staged or not; untracked files are not part of the diff
    const diff = yield* run("git", ["diff", "HEAD", "--no-color", "--no-ext-diff"], dir)
    const dirty = !diff.ok ? "unknown" : diff.stdout === "" ? "false" : "true"
    return {
      tags: { "vw2.git.commit": head.stdout.trim(), "vw2.git.dirty": dirty },
      diff: dirty === "true" ? diff.stdout : undefined
    }
  })

/** Gathers the run's tags and writes its files (`config.json`, `experiment/<file>`, `git.diff` when dirty). */
export const collectRunContext = (options: RunContextOptions): Effect.Effect<RunContext> =>
  Effect.gen(function*() {
    const [host, git] = yield* Effect.all([hostTags, gitState(path.dirname(options.experimentFile))], { concurrency: "unbounded" })
    const artifacts: Array<{ localPath: string; artifactPath: string }> = []
    const write = (name: string, artifactPath: string, text: string) => {
      const file = path.join(options.recordDir, name)
      fs.writeFileSync(file, text)
      artifacts.push({ localPath: file, artifactPath })
    }
    try {
      fs.mkdirSync(options.recordDir, { recursive: true })
      write("config.json", "config.json", JSON.stringify(redactConfig(options.config), null, 2) + "\n")
      const basename = path.basename(options.experimentFile)
      // the file as written may hold literal secrets: copied with every value validation saw as secret masked
      write(basename, `experiment/${basename}`, redactText(fs.readFileSync(options.experimentFile, "utf8")))
      if (git.diff !== undefined) write("git.diff", "git.diff", redactText(git.diff))
    } catch (error) {
      // a full disk loses these files, never the run
      process.stderr.write(`vw2: run context files not written: ${(error as Error).message}\n`)
    }
    return { tags: { ...host, ...git.tags }, artifacts }
  })
