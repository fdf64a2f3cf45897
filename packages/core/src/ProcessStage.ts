/**
 * Process stages: any command (a Python module, `torchrun` over k GPUs, a shell tool) as a typed, hashed,
 * cached, tracked stage. `defineProcessStage` returns an ordinary `StageDefinition`, so planning, hashing,
 * the cache, resume, every executor, GPU slots and the MLflow run tree treat it like a TypeScript stage;
 * its `run` spawns the declared command and speaks the protocol below (docs/process-stages.md).
 *
 * The command gets (environment):
 *   VW2_STAGE_SPEC=/abs/spec.json   { protocol: 1, step, stage, config (resolved, encoded JSON), seed,
 *                                     invocationHash, inputs: { name: { dir, kind, hash } },
 *                                     outputs: { name: "/abs/dir to fill" }, resumeDir, pauseAtStep: int | null,
 *                                     gpus: ["0", ...], cpus }
 *   VW2_EVENTS_FD=3                 a named pipe (reachable again as /proc/<pid>/fd/3 from torchrun's ranks):
 *                                     one JSON object per line, the worker protocol's stage events
 *                                     {"vw2":1,"type":"progress","done":3,"total":10,"message"?:"..."}
 *                                     {"vw2":1,"type":"metrics","step":3,"values":{"loss":0.5},"timestamp"?:ms}
 *                                     {"vw2":1,"type":"log","message":"..."}
 *                                     {"vw2":1,"type":"upload","path":"<output>/<file>"}   (relative to the outputs' root)
 *                                     {"vw2":1,"type":"checkpoint","step":100,"total":1000}
 *   CUDA_VISIBLE_DEVICES            set by the executor to the granted GPUs (the command's argv gets their count)
 *   stdin is /dev/null; stdout and stderr lines go to the stage log; exit 0 is success, anything else fails
 *   the stage with the last stderr lines in its error.
 *
 * Interruption (Ctrl-C, a failed dependency, executor shutdown) terminates the command's process group
 * (it is started as a group leader) and every process it started, also those in sessions of their own (torchrun's
 * ranks): SIGTERM, then SIGKILL after `killGraceMs`; the stage completes once they are gone.
 *
 * `version` is combined with a SHA-256 of the declared `sources`, so editing the command's code changes
 * every invocation hash of the stage (and so misses the cache).
 */
import { Effect, Schema } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import type { Experiment } from "./Experiment.ts"
import { descendantsOf, groupMembers, type ProcessInfo, signalProcess, stillRunning } from "./internal/processTree.ts"
import type { Plan } from "./Planner.ts"
import type { ArtifactKind, InputsOf, StageContext, StageDefinition } from "./Stage.ts"
import { defineStage, StageError } from "./Stage.ts"
import { decodeEventLine } from "./RunEvent.ts"

/** What `command`, `cwd`, `env`, `prepare` and `collect` see of one invocation. */
export interface ProcessContext<C, I extends Readonly<Record<string, ArtifactKind>>, O extends Readonly<Record<string, ArtifactKind>>> {
  /** the resolved config (decoded: defaults filled in) */
  readonly config: C
  /** how many GPUs the executor granted (`CUDA_VISIBLE_DEVICES` lists them): e.g. torchrun's --nproc-per-node */
  readonly gpus: number
  readonly cpus: number
  readonly seed: number
  readonly inputs: InputsOf<I>
  /** output name → absolute directory the command fills (published atomically after exit 0) */
  readonly outputs: { readonly [K in keyof O]: string }
  /** discarded after the invocation */
  readonly scratchDir: string
  /** survives a crash or kill -9 of this invocation: where the command keeps resumable checkpoints */
  readonly resumeDir: string
  readonly pauseAtStep: number | undefined
  /** the spec file (also in $VW2_STAGE_SPEC) */
  readonly specFile: string
  /** a line for the stage log */
  readonly log: (message: string) => void
}

export interface ProcessStageOptions<
  Name extends string,
  S extends Schema.Top,
  I extends Readonly<Record<string, ArtifactKind>>,
  O extends Readonly<Record<string, ArtifactKind>>
> extends Omit<StageDefinition<Name, S, I, O>, "run" | "version"> {
  /** bump when what the stage produces changes for reasons its `sources` do not show (e.g. its command line) */
  readonly version: string
  /** argv of the command, e.g. ["torchrun", `--nproc-per-node=${ctx.gpus}`, "-m", "my.train"] */
  readonly command: (ctx: ProcessContext<S["Type"], I, O>) => ReadonlyArray<string>
  /** working directory (default: the scratch directory) */
  readonly cwd?: string | ((ctx: ProcessContext<S["Type"], I, O>) => string)
  /** extra environment, on top of the worker's (which carries CUDA_VISIBLE_DEVICES) */
  readonly env?: Readonly<Record<string, string>> | ((ctx: ProcessContext<S["Type"], I, O>) => Readonly<Record<string, string>>)
  /**
   * Files, directories or globs whose content is the command's code: relative to `sourcesRoot` or absolute.
   * Hashed at definition time (a missing one fails then, naming it) into the stage version.
   * Directories skip `.git`, `node_modules`, `__pycache__`, `*.pyc` and `.venv*`.
   */
  readonly sources?: ReadonlyArray<string>
  /** what relative `sources` are resolved against: a directory path or file: URL (default: the vw2 repository root) */
  readonly sourcesRoot?: string | URL
  /**
   * Checks what the command needs from outside the store (a checkout, weights, a data folder) from the
   * config alone; returns the problem (naming the missing path) or undefined. Runs before the command is
   * spawned; `preflightPlan` runs it for a whole plan before anything starts.
   */
  readonly preflight?: (config: S["Type"]) => string | undefined
  /** runs before the command (e.g. lays out a working directory of links); a throw fails the stage */
  readonly prepare?: (ctx: ProcessContext<S["Type"], I, O>) => void
  /** runs after exit 0 (e.g. moves results into `outputs`); a throw fails the stage */
  readonly collect?: (ctx: ProcessContext<S["Type"], I, O>) => void
  /** SIGTERM → SIGKILL grace on interruption (default 2 s: below the local executor's 3 s for its worker) */
  readonly killGraceMs?: number
}

/** A process stage: an ordinary stage, plus what `preflightPlan` and docs need to see. */
export type ProcessStageDefinition<
  Name extends string,
  S extends Schema.Top,
  I extends Readonly<Record<string, ArtifactKind>>,
  O extends Readonly<Record<string, ArtifactKind>>
> = StageDefinition<Name, S, I, O> & {
  readonly process: {
    /** the version as declared, before the sources hash was added */
    readonly declaredVersion: string
    /** SHA-256 of the declared sources (empty string when none were declared) */
    readonly sourcesHash: string
    readonly preflight?: (config: S["Type"]) => string | undefined
    /** the declared command (what a dry run or a test inspects: config → argv) */
    readonly command: (ctx: ProcessContext<S["Type"], I, O>) => ReadonlyArray<string>
  }
}

/** The vw2 checkout this module belongs to: the default root of relative `sources`. */
export const repositoryRoot = fileURLToPath(new URL("../../../", import.meta.url))

const ignoredNames = new Set([".git", "node_modules", "__pycache__", ".DS_Store", ".pytest_cache", ".mypy_cache"])
const ignored = (name: string) => ignoredNames.has(name) || name.endsWith(".pyc") || name.startsWith(".venv")
const isGlob = (pattern: string) => /[*?[\]{}]/.test(pattern)

const filesUnder = (dir: string): Array<string> => {
  const out: Array<string> = []
  const walk = (relative: string) => {
    for (const entry of fs.readdirSync(path.join(dir, relative), { withFileTypes: true })) {
      if (ignored(entry.name)) continue
      const child = relative === "" ? entry.name : `${relative}/${entry.name}`
      const stat = fs.statSync(path.join(dir, child))
      if (stat.isDirectory()) walk(child)
      else if (stat.isFile()) out.push(child)
    }
  }
  walk("")
  return out
}

/**
 * SHA-256 over every declared source's files: (declared entry, path inside it, content hash), sorted, so the
 * hash follows the code and not where the checkout lives. Throws naming the first missing entry.
 */
export const hashSources = (sources: ReadonlyArray<string>, root: string): string => {
  const lines: Array<string> = []
  const fileHash = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")
  for (const entry of [...new Set(sources)].sort()) {
    if (isGlob(entry)) {
      const matches = fs.globSync(entry, { cwd: root }).map((m) => (path.isAbsolute(m) ? m : path.join(root, m)))
      const files = matches.flatMap((m) => {
        const stat = fs.statSync(m)
        if (stat.isFile()) return [m]
        return stat.isDirectory() ? filesUnder(m).map((f) => path.join(m, f)) : []
      }).filter((f) => !f.split(path.sep).some(ignored))
      if (files.length === 0) throw new TypeError(`source ${entry} matches no file (relative to ${root})`)
      for (const file of files) lines.push(`${entry}\0${path.relative(root, file).split(path.sep).join("/")}\0${fileHash(file)}`)
      continue
    }
    const absolute = path.isAbsolute(entry) ? entry : path.join(root, entry)
    if (!fs.existsSync(absolute)) throw new TypeError(`source ${entry} does not exist${absolute === entry ? "" : ` (looked for ${absolute})`}`)
    if (fs.statSync(absolute).isDirectory()) {
      for (const file of filesUnder(absolute)) lines.push(`${entry}\0${file}\0${fileHash(path.join(absolute, file))}`)
    } else {
      lines.push(`${entry}\0\0${fileHash(absolute)}`)
    }
  }
  return lines.length === 0 ? "" : createHash("sha256").update(lines.sort().join("\n")).digest("hex")
}

const eventsFd = 3
const stderrTailLines = 20

/**
 * The events channel: a named pipe (FIFO) in the scratch directory when `mkfifo` is there, else Node's stdio pipe.
 * Node's "pipe" is a socketpair, and a socket cannot be opened again through /proc/<pid>/fd/3, which is how
 * python/vw2_stage reaches the channel from torchrun's ranks (torchrun closes every fd above 2 in them).
 */
const openEventsChannel = (dir: string): {
  readonly childEnd: number | "pipe"
  readonly parentEnd: NodeJS.ReadableStream | undefined
  readonly afterSpawn: () => void
  readonly close: () => void
} => {
  const fifo = path.join(dir, "vw2-events.fifo")
  fs.rmSync(fifo, { force: true })
  if (spawnSync("mkfifo", ["-m", "600", fifo]).status !== 0) return { childEnd: "pipe", parentEnd: undefined, afterSpawn: () => {}, close: () => {} }
  // reader first (non-blocking, so it opens without a writer), then the child's end, which needs a reader
  const readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  let writeFd: number | undefined = fs.openSync(fifo, fs.constants.O_WRONLY)
  const parentEnd = new net.Socket({ fd: readFd, readable: true, writable: false })
  const closeWriteEnd = () => {
    if (writeFd !== undefined) fs.closeSync(writeFd)
    writeFd = undefined
  }
  // only the command's processes hold the write end once it runs: their exit is the channel's end
  return { childEnd: writeFd, parentEnd, afterSpawn: closeWriteEnd, close: () => (closeWriteEnd(), parentEnd.destroy()) }
}

interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/**
 * Declares a stage that runs a command. See the module comment for the protocol and docs/process-stages.md
 * for a walk-through. The result is a `StageDefinition`: put it in a pipeline like any other stage.
 */
export const defineProcessStage = <
  const Name extends string,
  S extends Schema.Top,
  const I extends Readonly<Record<string, ArtifactKind>>,
  const O extends Readonly<Record<string, ArtifactKind>>
>(options: ProcessStageOptions<Name, S, I, O>): ProcessStageDefinition<Name, S, I, O> => {
  const where = `defineProcessStage(${JSON.stringify(options?.name)})`
  if (typeof options.command !== "function") throw new TypeError(`${where}: command must be a function of the invocation returning argv`)
  if (typeof options.version !== "string" || options.version === "") throw new TypeError(`${where}: version must be a non-empty string`)
  const root = options.sourcesRoot === undefined
    ? repositoryRoot
    : options.sourcesRoot instanceof URL ? fileURLToPath(options.sourcesRoot) : path.resolve(options.sourcesRoot)
  let sourcesHash: string
  try {
    sourcesHash = hashSources(options.sources ?? [], root)
  } catch (error) {
    throw new TypeError(`${where}: ${(error as Error).message}`)
  }
  const version = sourcesHash === "" ? options.version : `${options.version}+src.${sourcesHash.slice(0, 16)}`
  const killGraceMs = options.killGraceMs ?? 2_000
  const encodeConfig = Schema.encodeUnknownSync(options.config as unknown as Schema.Codec<unknown, unknown>)

  const run = (ctx: StageContext, config: S["Type"], inputs: InputsOf<I>): Effect.Effect<void, StageError> =>
    Effect.suspend(() => {
      const fail = (message: string, cause?: unknown) => new StageError({ stage: options.name, message, ...(cause === undefined ? {} : { cause }) })
      const problem = options.preflight?.(config)
      if (problem !== undefined) return Effect.fail(fail(`preflight: ${problem}`))
      const specFile = path.join(ctx.scratchDir, "vw2-stage-spec.json")
      const outputs = Object.fromEntries(Object.keys(options.outputs).map((name) => [name, ctx.outputDir(name)])) as { readonly [K in keyof O]: string }
      const pctx: ProcessContext<S["Type"], I, O> = {
        config,
        gpus: ctx.devices.gpus.length,
        cpus: ctx.devices.cpus,
        seed: ctx.seed,
        inputs,
        outputs,
        scratchDir: ctx.scratchDir,
        resumeDir: ctx.resumeDir,
        pauseAtStep: ctx.pauseAtStep,
        specFile,
        log: ctx.log
      }
      let argv: ReadonlyArray<string>
      let cwd: string
      let env: NodeJS.ProcessEnv
      try {
        fs.writeFileSync(specFile, JSON.stringify({
          protocol: 1,
          step: ctx.step,
          stage: options.name,
          config: encodeConfig(config),
          seed: ctx.seed,
          invocationHash: ctx.invocationHash,
          inputs,
          outputs,
          resumeDir: ctx.resumeDir,
          pauseAtStep: ctx.pauseAtStep ?? null,
          gpus: ctx.devices.gpus,
          cpus: ctx.devices.cpus
        }, null, 2))
        options.prepare?.(pctx)
        argv = options.command(pctx)
        cwd = typeof options.cwd === "function" ? options.cwd(pctx) : options.cwd ?? ctx.scratchDir
        const extra = typeof options.env === "function" ? options.env(pctx) : options.env ?? {}
        // unbuffered Python, so log lines and events arrive as they happen
        env = { ...process.env, PYTHONUNBUFFERED: "1", ...extra, VW2_STAGE_SPEC: specFile, VW2_EVENTS_FD: String(eventsFd) }
      } catch (error) {
        return Effect.fail(fail(`could not prepare the command: ${error instanceof Error ? error.message : String(error)}`, error))
      }
      if (argv.length === 0 || argv.some((a) => typeof a !== "string")) return Effect.fail(fail(`command must return a non-empty argv of strings`))
      const shown = argv.join(" ")
      ctx.log(`$ ${shown}  (cwd ${cwd})`)

      const stderrTail: Array<string> = []
      return Effect.callback<Exited, StageError>((resume) => {
        const events = openEventsChannel(ctx.scratchDir)
        const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ["ignore", "pipe", "pipe", events.childEnd], detached: true })
        events.afterSpawn()
        const eventsIn = events.parentEnd ?? (child.stdio[eventsFd] as NodeJS.ReadableStream)
        let eventsEnded = false
        const known = new Map<number, ProcessInfo>()
        let exited: Exited | undefined
        let stdioClosed = false

        readline.createInterface({ input: child.stdout! }).on("line", (line) => ctx.log(line))
        readline.createInterface({ input: child.stderr! }).on("line", (line) => {
          stderrTail.push(line)
          if (stderrTail.length > stderrTailLines) stderrTail.shift()
          ctx.log(line)
        })
        readline.createInterface({ input: eventsIn }).on("line", (line) => {
          if (line.trim() === "") return
          // the one event shape of the engine (RunEvent.ts): foreign code writes these lines, so the Schema checks each field
          const e = decodeEventLine(line)
          if (e === undefined) return ctx.log(`[unreadable event on fd ${eventsFd}] ${line}`)
          try {
            switch (e.type) {
              case "progress":
                return e.message === undefined ? ctx.progress(e.done, e.total) : ctx.progress(e.done, e.total, e.message)
              case "metrics":
                return ctx.metrics(e.values, e.step)
              case "log":
                return ctx.log(e.message)
              case "upload":
                return ctx.upload(e.path)
              case "checkpoint":
                return ctx.checkpointed(e.step, e.total)
              default:
                return // started / done / failed: the process's exit status says how it ended
            }
          } catch (error) {
            ctx.log(`[rejected event on fd ${eventsFd}] ${error instanceof Error ? error.message : String(error)}: ${line}`)
          }
        })
        // remember what the command starts, so ranks in sessions of their own are found even after their launcher died
        const remember = () => {
          if (child.pid === undefined) return
          for (const p of descendantsOf(child.pid)) known.set(p.pid, p)
        }
        const watch = setInterval(remember, 1_000)
        const sweepLeftovers = (signal: NodeJS.Signals) => {
          if (child.pid === undefined) return
          if (exited === undefined) {
            remember()
            signalProcess(-child.pid, signal)
          } else {
            // its pid may be reused now: only the group (which cannot be, while it has members) and processes seen before
            const group = groupMembers(child.pid)
            for (const p of group) known.set(p.pid, p)
            if (group.length > 0) signalProcess(-child.pid, signal)
          }
          for (const p of known.values()) if (stillRunning(p)) signalProcess(p.pid, signal)
        }
        const anyLeft = () => (exited === undefined) || [...known.values()].some(stillRunning)

        let settled = false
        let drainTimer: NodeJS.Timeout | undefined
        const settle = (result: Effect.Effect<Exited, StageError>) => {
          if (settled) return
          settled = true
          clearTimeout(drainTimer)
          ctx.signal.removeEventListener("abort", onAbort)
          resume(result)
        }
        // the result waits for stdout, stderr and the events channel to drain: the last lines and events come first
        const settleIfDrained = () => {
          if (exited !== undefined && stdioClosed && eventsEnded) settle(Effect.succeed(exited))
        }
        eventsIn.on("end", () => {
          eventsEnded = true
          settleIfDrained()
        })
        eventsIn.on("error", (error: Error) => {
          ctx.log(`[events channel] ${error.message}`)
          eventsEnded = true
          settleIfDrained()
        })
        child.on("error", (error) => {
          clearInterval(watch)
          exited = { code: null, signal: null }
          events.close()
          settle(Effect.fail(fail(`cannot start ${argv[0]}: ${error.message}`, error)))
        })
        child.on("exit", (code, signal) => {
          clearInterval(watch)
          // nothing the command started may outlive it (its group, signalled before its pid can be reused)
          if (child.pid !== undefined) signalProcess(-child.pid, "SIGTERM")
          exited = { code, signal }
          sweepLeftovers("SIGTERM")
          // a leftover that ignores SIGTERM and holds stdout open would hold back 'close': kill it, then stop waiting
          drainTimer = setTimeout(() => {
            sweepLeftovers("SIGKILL")
            drainTimer = setTimeout(() => {
              for (const stream of child.stdio) stream?.destroy()
              events.close()
              settle(Effect.succeed({ code, signal }))
            }, 1_000)
          }, killGraceMs)
        })
        child.on("close", () => {
          stdioClosed = true
          settleIfDrained()
        })

        const terminate = () =>
          new Promise<void>((done) => {
            sweepLeftovers("SIGTERM")
            const started = Date.now()
            let killed = false
            const poll = setInterval(() => {
              if (!killed && Date.now() - started >= killGraceMs) {
                killed = true
                sweepLeftovers("SIGKILL")
              }
              if (!anyLeft() || Date.now() - started >= killGraceMs + 5_000) {
                clearInterval(poll)
                done()
              }
            }, 50)
          })
        const onAbort = () => void terminate()
        ctx.signal.addEventListener("abort", onAbort, { once: true })
        return Effect.promise(async () => {
          ctx.signal.removeEventListener("abort", onAbort)
          clearInterval(watch)
          await terminate()
        })
      }).pipe(
        Effect.flatMap((exit) => {
          if (ctx.signal.aborted) return Effect.fail(fail(`interrupted: ${shown}`))
          if (exit.code !== 0) {
            const why = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`
            const tail = stderrTail.length === 0 ? " (nothing on stderr)" : `; last stderr lines:\n${stderrTail.join("\n")}`
            return Effect.fail(fail(`command ${why}: ${shown}${tail}`))
          }
          return Effect.try({
            try: () => options.collect?.(pctx),
            catch: (error) => fail(`collecting the outputs failed: ${error instanceof Error ? error.message : String(error)}`, error)
          })
        })
      )
    })

  const stage = defineStage<Name, S, I, O>({
    name: options.name,
    version,
    config: options.config,
    inputs: options.inputs,
    outputs: options.outputs,
    ...(options.seeded === undefined ? {} : { seeded: options.seeded }),
    ...(options.resources === undefined ? {} : { resources: options.resources }),
    ...(options.headline === undefined ? {} : { headline: options.headline }),
    run
  })
  return Object.assign(stage, {
    process: { declaredVersion: options.version, sourcesHash, command: options.command, ...(options.preflight === undefined ? {} : { preflight: options.preflight }) }
  })
}

/** A step of `plan` whose process stage's preflight found a problem. */
export interface PreflightProblem {
  readonly step: string
  readonly problem: string
}

/**
 * Runs every process stage's `preflight` over the plan's invocations that are not cached yet (`isPublished`),
 * before anything starts: what the run needs from outside the store (a checkout, weights) is named up front.
 * Each (step, problem) once. Cached invocations never run, so what they needed no longer matters.
 */
export const preflightPlan = (
  experiment: Pick<Experiment, "pipeline">,
  plan: Pick<Plan, "invocations">,
  isPublished: (hash: string) => boolean = () => false
): ReadonlyArray<PreflightProblem> => {
  const problems = new Map<string, PreflightProblem>()
  for (const inv of plan.invocations) {
    if (isPublished(inv.hash)) continue
    const stage = experiment.pipeline.steps.find((s) => s.name === inv.step)?.stage as { readonly process?: { readonly preflight?: (c: unknown) => string | undefined }; readonly config: Schema.Top } | undefined
    const preflight = stage?.process?.preflight
    if (stage === undefined || preflight === undefined) continue
    const decoded = Schema.decodeUnknownOption(stage.config as unknown as Schema.Codec<unknown, unknown>)(inv.config)
    if (decoded._tag === "None") continue // the planner already validated it; nothing to add
    const problem = preflight(decoded.value)
    if (problem !== undefined) problems.set(`${inv.step}\0${problem}`, { step: inv.step, problem })
  }
  return [...problems.values()]
}

/**
 * argv for a PyTorch entry point on `nproc` processes: `python -m torch.distributed.run --standalone
 * --nproc-per-node=k -m module args` (torchrun, through the interpreter that has torch, on a free port so
 * parallel stages do not collide), or plain `python -m module args` for one process unless `launcher` says
 * "torchrun" (scripts that call `torch.distributed.init_process_group` unconditionally need it).
 */
export const torchrunArgv = (options: {
  readonly nproc: number
  readonly module: string
  readonly args?: ReadonlyArray<string>
  readonly python?: string
  readonly launcher?: "auto" | "torchrun"
}): ReadonlyArray<string> => {
  const python = options.python ?? "python3"
  const args = options.args ?? []
  const nproc = Math.max(1, Math.floor(options.nproc))
  if (nproc === 1 && options.launcher !== "torchrun") return [python, "-m", options.module, ...args]
  return [python, "-m", "torch.distributed.run", "--standalone", `--nproc-per-node=${nproc}`, "-m", options.module, ...args]
}
