/**
 * The `vw2` command tree. Handlers are thin: parse flags, call core (planner, scheduler, store), render.
 * Adding a subcommand = write `Command.make(...)` (here or in its own module) and append it to
 * `subcommands` at the bottom.
 */
import {
  ArtifactStore,
  ConfigError,
  Executor,
  type Experiment,
  ExperimentLoadError,
  InlineExecutor,
  isCheckpointKind,
  loadExperiment,
  LocalExecutor,
  parseOverride,
  type Plan,
  planExperiment,
  preflightPlan,
  PlanRejected,
  redactCommandLine,
  makeRunTree,
  type RunObserver,
  readSweepDecisions,
  runSweepWithEarlyStopping,
  Tracker
} from "@vw2/core"
import { ArtifactTransport, RayExecutor, rayCommand } from "@vw2/cluster"
import { Console, Data, Effect, Layer, Option, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { planDocument, renderPlan } from "./PlanView.ts"
import { combineObservers, lineProgress, ttyProgress } from "./Progress.ts"
import { logFileObserver } from "./LogFiles.ts"
import { listRunRecords, newRunId, type RunRecord, writeRunRecord } from "./RunRecords.ts"
import { selectTracker } from "./selectTracker.ts"
import { collectRunContext } from "./RunContext.ts"
import { renderSummary } from "./Summary.ts"
import { gcCommand, resumableLines } from "./ResumeCommands.ts"
import { configureTensorflowLogs, probeTfBackend } from "./TfBackend.ts"
import { trackingCommands } from "./TrackingCommands.ts"

/** Exit codes: 0 ok, 1 a stage failed, 2 bad input (config, --set, flags, file), 130 interrupted. */
export const exitCodes = { ok: 0, stageFailed: 1, badInput: 2, interrupted: 130 } as const

/** A user mistake reported before anything ran. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

const reportBadInput = (error: { readonly message: string }) =>
  Effect.gen(function*() {
    yield* Console.error(`vw2: ${error.message}`)
    process.exitCode = exitCodes.badInput
  })

const fileArg = Argument.String("file").pipe(Argument.withDescription("experiment file (.ts) exporting defineExperiment(...)"))
const setFlag = Flag.String("set").pipe(
  Flag.withDescription("override a config value: --set step.key=value (JSON value, or plain text for a string); repeatable"),
  Flag.atLeast(0)
)

const verboseFlag = Flag.Boolean("verbose").pipe(
  Flag.withDescription("show TensorFlow's native load notices (absl, oneDNN, CPU features); by default only the stage log files keep them"),
  Flag.withDefault(false)
)

const presetFlag = Flag.String("preset").pipe(
  Flag.withDescription("preset the experiment file declares (defineExperiment({ presets }), e.g. mini | paper; default: its defaultPreset)"),
  Flag.optional
)

/** Loads the experiment (at the chosen preset), applies and validates --set overrides, and plans: every config
 * error surfaces here. The preset is chosen here once; workers get resolved configs, never the preset name. */
const loadAndPlan = (file: string, sets: ReadonlyArray<string>, preset: Option.Option<string>) =>
  Effect.gen(function*() {
    const absolute = path.resolve(file)
    if (!fs.existsSync(absolute)) return yield* new UsageError({ message: `${file}: no such experiment file` })
    if (fs.statSync(absolute).isDirectory()) return yield* new UsageError({ message: `${file}: is a directory, expected an experiment file (.ts)` })
    const overrides = yield* Effect.try({ try: () => sets.map(parseOverride), catch: (e) => e as ConfigError })
    const experiment = yield* loadExperiment(absolute, Option.getOrUndefined(preset))
    const plan = yield* Effect.try({
      try: () => planExperiment(experiment, overrides),
      catch: (e) => (e instanceof ConfigError ? e : new UsageError({ message: e instanceof Error ? e.message : String(e) }))
    })
    return { absolute, experiment, plan }
  }).pipe(
    // the config lives in the experiment file: name it, so "invalid config" says where to look
    Effect.mapError((e) => (e instanceof ConfigError ? new UsageError({ message: `${file}: ${e.message}` }) : e))
  )

/** The chosen preset as plan-document field and experiment-run tag (absent for a file with one size). */
const presetField = (experiment: Experiment) => (experiment.preset === undefined ? {} : { preset: experiment.preset })
const presetTag = (experiment: Experiment): Record<string, string> => (experiment.preset === undefined ? {} : { "vw2.preset": experiment.preset })

const plan = Command.make("plan", {
  file: fileArg,
  set: setFlag,
  preset: presetFlag,
  json: Flag.Boolean("json").pipe(Flag.withDescription("print the plan as JSON (format: docs/plan-json.md)"), Flag.withDefault(false)),
  verbose: verboseFlag
}, (flags) =>
  Effect.gen(function*() {
    configureTensorflowLogs(flags.verbose)
    const { absolute, experiment, plan } = yield* loadAndPlan(flags.file, flags.set, flags.preset)
    const store = ArtifactStore.makeArtifactStore()
    const backend = yield* Effect.promise(() => probeTfBackend({ verbose: flags.verbose }))
    // issue 15: "resumable at step k/K" and the early-stopping rungs with their recorded decisions
    const decisions = readSweepDecisions(store.root, plan)
    const view = { resumeProgress: store.resumeProgress, ...(decisions === undefined ? {} : { decisions }) }
    const doc = { ...planDocument(plan, absolute, store.root, store.isPublished, view), ...presetField(experiment), tfBackend: backend.line }
    yield* Console.log(flags.json ? JSON.stringify(doc, null, 2) : renderPlan(doc))
  }).pipe(
    Effect.catchTags({ UsageError: reportBadInput, ExperimentLoadError: reportBadInput })
  )).pipe(Command.withDescription("show trials × stages with invocation hashes and predicted status (cached / to run)"))

const parseGpus = (text: string): Effect.Effect<ReadonlyArray<string>, UsageError> => {
  const ids = text.split(",").map((s) => s.trim()).filter((s) => s !== "")
  if (ids.length === 0 || ids.some((id) => !/^[\w-]+$/.test(id)) || new Set(ids).size !== ids.length) {
    return Effect.fail(new UsageError({ message: `--gpus ${text}: expected distinct device ids, e.g. --gpus 0,1` }))
  }
  return Effect.succeed(ids)
}

export interface ExecutorSettings {
  readonly gpus: ReadonlyArray<string>
  readonly cpus: number
  /** memory budget (MB) of the local executor */
  readonly memoryMb: number
  /** a fresh worker process per invocation instead of warm, reused workers */
  readonly freshWorkers: boolean
  /** ray executor: cluster address ("auto", "host:port"); default $RAY_ADDRESS, else the `vw2 ray up` head */
  readonly rayAddress?: string
  /** ray executor: how artifacts reach the nodes (docs/ray.md, "Nodes without a shared filesystem") */
  readonly rayTransport?: ArtifactTransport.ArtifactTransport
}

/** Executor kinds `vw2 run --executor` accepts; a new backend (packages/cluster: "ray") adds one entry. */
export const executorKinds: Readonly<Record<string, (settings: ExecutorSettings) => Layer.Layer<Executor>>> = {
  inline: () => InlineExecutor.layer,
  local: (settings) => LocalExecutor.layer({ cpus: settings.cpus, gpus: settings.gpus, memoryMb: settings.memoryMb, reuseWorkers: !settings.freshWorkers }),
  ray: (settings) =>
    RayExecutor.layer({
      ...(settings.rayAddress !== undefined ? { address: settings.rayAddress } : {}),
      ...(settings.rayTransport !== undefined ? { artifacts: settings.rayTransport } : {})
    })
}

const chooseExecutor = (
  experiment: Experiment,
  flags: {
    readonly executor: string | undefined
    readonly gpus: string | undefined
    readonly cpus: number | undefined
    readonly memory: number | undefined
    readonly freshWorkers: boolean
    readonly rayAddress: string | undefined
    readonly rayTransport: string | undefined
  }
) =>
  Effect.gen(function*() {
    const kind = flags.executor ?? experiment.executor?.kind ?? "local"
    const gpus = flags.gpus !== undefined ? yield* parseGpus(flags.gpus) : experiment.executor?.gpus ?? []
    const cpus = flags.cpus ?? experiment.executor?.cpus ?? os.availableParallelism()
    if (!Number.isInteger(cpus) || cpus < 1) return yield* new UsageError({ message: `--cpus ${cpus}: expected an integer ≥ 1` })
    const memoryMb = flags.memory ?? experiment.executor?.memoryMb ?? LocalExecutor.machineMemoryMb()
    if (!Number.isInteger(memoryMb) || memoryMb < 1) return yield* new UsageError({ message: `--memory ${memoryMb}: expected megabytes, an integer ≥ 1` })
    const make = executorKinds[kind]
    if (make === undefined) return yield* new UsageError({ message: `executor ${kind}: expected one of ${Object.keys(executorKinds).join(", ")}` })
    const rayTransport = flags.rayTransport
    if (rayTransport !== undefined && !Schema.is(ArtifactTransport.ArtifactTransport)(rayTransport)) {
      return yield* new UsageError({ message: `--ray-transport ${rayTransport}: expected shared-path | object-store (docs/ray.md)` })
    }
    return make({
      gpus,
      cpus,
      memoryMb,
      freshWorkers: flags.freshWorkers,
      ...(flags.rayAddress !== undefined ? { rayAddress: flags.rayAddress } : {}),
      ...(rayTransport !== undefined ? { rayTransport } : {})
    })
  })

/** An executor that could not start (the Ray executor without a reachable cluster): nothing ran. */
const isExecutorStartFailure = (defect: unknown): defect is Error => defect instanceof Error && /^ray executor: /.test(defect.message)

/** The first line and the final exception line of a start failure, instead of a whole Python traceback. */
const condenseStartFailure = (message: string): string => {
  const lines = message.split("\n").map((l) => l.trimEnd()).filter((l) => l !== "")
  const cause = lines.slice(1).reverse().find((l) => /^[A-Za-z_.]*(Error|Exception)\b/.test(l))
  const hint = "start a local head with `vw2 ray up`, or pass --ray-address / set RAY_ADDRESS (docs/ray.md)"
  return [lines[0] ?? message, ...(cause === undefined ? [] : [`  ${cause}`]), `  ${hint}`].join("\n")
}

const progressObserver = (verbose: boolean): RunObserver & {
  readonly stop?: () => void
  readonly print?: (line: string) => void
  readonly watchTracker?: (state: () => string | undefined) => void
} =>
  process.stdout.isTTY ? ttyProgress(process.stdout) : lineProgress((line) => process.stdout.write(line + "\n"), { stageLogs: true, verbose })

const run = Command.make("run", {
  file: fileArg,
  set: setFlag,
  preset: presetFlag,
  executor: Flag.String("executor").pipe(
    Flag.withDescription(`where stages run: ${Object.keys(executorKinds).join(" | ")} (default: the experiment's choice, else local)`),
    Flag.optional
  ),
  gpus: Flag.String("gpus").pipe(Flag.withDescription("GPU ids the local executor hands out, e.g. 0,1"), Flag.optional),
  cpus: Flag.Int("cpus").pipe(Flag.withDescription("CPU slots of the local executor (default: core count)"), Flag.optional),
  memory: Flag.Int("memory").pipe(
    Flag.withDescription("memory (MB) the local executor reserves stages' resources.memoryMb from (default: the machine's total)"),
    Flag.optional
  ),
  freshWorkers: Flag.Boolean("fresh-workers").pipe(
    Flag.withDescription("local executor: start a new worker process for every invocation (no module state shared between stages)"),
    Flag.withDefault(false)
  ),
  rayAddress: Flag.String("ray-address").pipe(
    Flag.withDescription("ray executor: Ray cluster address, auto | host:port (default $RAY_ADDRESS, else the head from `vw2 ray up`)"),
    Flag.optional
  ),
  rayTransport: Flag.String("ray-transport").pipe(
    Flag.withDescription("ray executor: how artifacts reach the nodes, shared-path | object-store (default $VW2_RAY_TRANSPORT, else shared-path; docs/ray.md)"),
    Flag.optional
  ),
  noTrack: Flag.Boolean("no-track").pipe(Flag.withDescription("record nothing in the tracker"), Flag.withDefault(false)),
  register: Flag.String("register").pipe(
    Flag.withDescription("register a checkpoint output in the MLflow model registry: --register NAME=step.output (a version per trial); repeatable"),
    Flag.atLeast(0)
  ),
  verbose: verboseFlag
}, (flags) =>
  Effect.gen(function*() {
    configureTensorflowLogs(flags.verbose)
    const { absolute, experiment, plan } = yield* loadAndPlan(flags.file, flags.set, flags.preset)
    const registrations = yield* parseRegistrations(flags.register, plan)
    const storeShape = ArtifactStore.makeArtifactStore()
    // what process stages need from outside the store (a checkout, weights), named before anything starts
    // (docs/process-stages.md, "Preflight")
    const missing = preflightPlan(experiment, plan, storeShape.isPublished)
    if (missing.length > 0) {
      return yield* new UsageError({ message: `${plan.experiment} cannot run:\n${missing.map((m) => `  ${m.step}: ${m.problem.replaceAll("\n", "\n    ")}`).join("\n")}` })
    }
    const executorLayer = yield* chooseExecutor(experiment, {
      executor: flags.executor._tag === "Some" ? flags.executor.value : undefined,
      gpus: flags.gpus._tag === "Some" ? flags.gpus.value : undefined,
      cpus: flags.cpus._tag === "Some" ? flags.cpus.value : undefined,
      memory: flags.memory._tag === "Some" ? flags.memory.value : undefined,
      freshWorkers: flags.freshWorkers,
      rayAddress: flags.rayAddress._tag === "Some" ? flags.rayAddress.value : undefined,
      rayTransport: flags.rayTransport._tag === "Some" ? flags.rayTransport.value : undefined
    })
    yield* runWithRecord(absolute, plan, storeShape, executorLayer, (log) => selectTracker({ noTrack: flags.noTrack, log }), flags.verbose, registrations, presetTag(experiment)).pipe(
      Effect.catchDefect((defect) => (isExecutorStartFailure(defect) ? reportBadInput({ message: condenseStartFailure(defect.message) }) : Effect.die(defect)))
    )
  }).pipe(
    Effect.catchTags({ UsageError: reportBadInput, ExperimentLoadError: reportBadInput, PlanRejected: reportBadInput })
  )).pipe(Command.withDescription("run an experiment: cached invocations are reused, the rest run on the executor"))

/** `--register NAME=step.output`: which checkpoint output becomes a version of which registered model. */
interface Registration {
  readonly name: string
  readonly step: string
  readonly output: string
}

const parseRegistrations = (texts: ReadonlyArray<string>, plan: Plan): Effect.Effect<Array<Registration>, UsageError> =>
  Effect.forEach(texts, (text) => {
    const m = /^([^=]+)=([^.=]+)\.([^.=]+)$/.exec(text.trim())
    if (m === null) return Effect.fail(new UsageError({ message: `--register ${text}: expected NAME=step.output, e.g. --register minicraft-dldm=warmup.checkpoint` }))
    const [, name, step, output] = m as unknown as [string, string, string, string]
    const inv = plan.invocations.find((i) => i.step === step)
    if (inv === undefined) return Effect.fail(new UsageError({ message: `--register ${text}: no step ${step} (steps: ${plan.steps.join(", ")})` }))
    const checkpoints = Object.entries(inv.outputs).filter(([, kind]) => isCheckpointKind(kind)).map(([o]) => o)
    if (!checkpoints.includes(output)) return Effect.fail(new UsageError({ message: `--register ${text}: ${step} has no checkpoint output ${output} (its checkpoints: ${checkpoints.join(", ") || "none"})` }))
    return Effect.succeed({ name: name.trim(), step, output })
  })

const runWithRecord = (
  file: string,
  plan: Plan,
  store: ArtifactStore.ArtifactStoreShape,
  executorLayer: Layer.Layer<Executor>,
  /** the tracker's layer, given where its status lines go (above the live progress table) */
  trackerLayer: (log: ((line: string) => void) | undefined) => ReturnType<typeof selectTracker>,
  verbose = false,
  registrations: ReadonlyArray<Registration> = [],
  /** `vw2.preset`, when the experiment has presets */
  presetTags: Readonly<Record<string, string>> = {}
) =>
  Effect.gen(function*() {
    const progress = progressObserver(verbose)
    // in a child process, so it overlaps the tracker's and the executor's start
    const backendProbe = probeTfBackend({ verbose })
    let executorName = ""
    let trackerName: string | undefined
    let tracker: Tracker.TrackerShape | undefined
    let base: RunRecord = {
      id: newRunId(),
      experiment: plan.experiment,
      file,
      // after planning, so secret fields' values and paths are known (docs/engine.md, "Secrets")
      command: redactCommandLine(process.argv.slice(1)),
      host: os.hostname(),
      pid: process.pid,
      executor: "",
      configHash: plan.configHash,
      startedAt: new Date().toISOString(),
      status: "running"
    }
    const recordEnd = (status: RunRecord["status"], counts?: Record<string, number>, trackingRunId?: string) =>
      writeRunRecord(store.runsDir, { ...base, status, endedAt: new Date().toISOString(), ...(counts ? { counts } : {}), ...(trackingRunId ? { trackingRunId } : {}) })
    let runTree: ReturnType<typeof makeRunTree> | undefined
    const logs = logFileObserver(path.join(store.root, "logs", base.id))
    const announce: RunObserver = {
      onEvent: (event) =>
        Effect.sync(() => {
          if (event.type !== "run-started") return
          const cached = plan.invocations.filter((inv) => store.isPublished(inv.hash)).length
          process.stdout.write(
            `${plan.experiment}: ${plan.trials.length} trial(s) × ${plan.steps.length} step(s) → ${plan.invocations.length} invocation(s), ` +
              `${cached} cached · ${executorName}${trackerName === undefined ? "" : ` · tracking ${trackerName}`}\n`
          )
        })
    }
    // one observer, so the announcement is printed before the live table starts drawing
    const observers = [combineObservers(announce, progress), logs]
    const registered: Array<string> = []
    const summary = yield* Effect.gen(function*() {
      executorName = (yield* Executor).describe()
      base = { ...base, executor: executorName }
      writeRunRecord(store.runsDir, base)
      tracker = yield* Tracker.Tracker
      trackerName = tracker.describe()
      // MLflow may still be starting in the background (records spool meanwhile): the live table shows its state
      if (tracker.state !== undefined) progress.watchTracker?.(tracker.state)
      runTree = makeRunTree(tracker)
      const backend = yield* Effect.promise(() => backendProbe)
      const context = yield* collectRunContext({ experimentFile: file, config: plan.config, recordDir: path.join(store.runsDir, base.id) })
      // issue 15: a sweep with `sweep.scheduler` runs rung by rung; anything else is runPlan
      const ran = yield* runSweepWithEarlyStopping({
        plan,
        experimentFile: file,
        observers,
        runTree,
        tags: { "vw2.command": base.command, "vw2.file": file, ...presetTags, ...backend.tags, ...context.tags },
        artifacts: context.artifacts
      })
      // one model version per invocation of the step (each trial's checkpoint; a cached one is its producer's)
      for (const r of registrations) {
        for (const result of ran.results) {
          if (result.step !== r.step || result.producedBy === undefined || (result.status !== "done" && result.status !== "cached")) continue
          const version = tracker.registerModel === undefined ? undefined : yield* tracker.registerModel(r.name, result.producedBy, r.output)
          registered.push(`registered ${r.step}.${r.output} (${result.trials.join(", ")}) as ${r.name}${version === undefined ? ": pending (see warnings)" : ` version ${version}`}`)
        }
      }
      return ran
    }).pipe(
      Effect.provide(Layer.mergeAll(Layer.succeed(ArtifactStore.ArtifactStore, store), executorLayer, trackerLayer(progress.print))),
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          progress.stop?.()
          recordEnd("interrupted", undefined, runTree?.experimentRunNow())
          process.stderr.write("vw2: interrupted; published invocations are kept, rerun the same command to resume\n")
        })
      ),
      Effect.tapError(() =>
        Effect.sync(() => {
          progress.stop?.()
          recordEnd("failed")
        })
      )
    )
    const counts: Record<string, number> = {}
    for (const r of summary.results) counts[r.status] = (counts[r.status] ?? 0) + 1
    recordEnd(summary.status === "succeeded" ? "succeeded" : "failed", counts, summary.experimentRunId)
    yield* Console.log(renderSummary(summary, { logFile: logs.fileFor, trials: plan.trials, width: process.stdout.columns, verbose }))
    // described now: the experiment exists, so the URL opens it (in MLflow's model-training view)
    if (trackerName !== undefined) yield* Console.log(`tracking: ${tracker?.describe() ?? trackerName}`)
    for (const line of registered) yield* Console.log(line)
    if (tracker?.degraded() === true) yield* Console.error("vw2: the tracker could not reach its backend; records were spooled and will be delivered later")
    if (summary.status !== "succeeded") process.exitCode = exitCodes.stageFailed
  })

const status = Command.make("status", {
  limit: Flag.Int("limit").pipe(Flag.withDescription("how many runs to list"), Flag.withDefault(20)),
  json: Flag.Boolean("json").pipe(Flag.withDescription("print the run records as JSON"), Flag.withDefault(false))
}, (flags) =>
  Effect.gen(function*() {
    const store = ArtifactStore.makeArtifactStore()
    const records = listRunRecords(store.runsDir, flags.limit)
    if (flags.json) return yield* Console.log(JSON.stringify(records, null, 2))
    if (records.length === 0) return yield* Console.log(`no runs recorded in ${store.root}`)
    const { default: Table } = yield* Effect.promise(() => import("cli-table3"))
    const table = new Table({ head: ["run", "experiment", "status", "started", "took", "stages"], style: { head: [], border: [], compact: true } })
    for (const r of records) {
      const took = r.endedAt === undefined ? "" : `${((Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000).toFixed(1)}s`
      table.push([r.id, r.experiment, r.status, r.startedAt.replace("T", " ").slice(0, 19), took, Object.entries(r.counts ?? {}).map(([k, v]) => `${k} ${v}`).join(", ")])
    }
    yield* Console.log(`store ${store.root}\n${table.toString()}`)
    // issue 15: unpublished invocations with a mid-stage checkpoint
    for (const line of resumableLines(store)) yield* Console.log(line)
  })).pipe(Command.withDescription("list recent runs recorded in the store (VW2_HOME, default ./.vw2)"))

/** Every `vw2` subcommand; append new ones here. */
export const subcommands = [plan, run, status, gcCommand, ...trackingCommands, rayCommand] as const

export const vw2 = Command.make("vw2").pipe(
  Command.withDescription("VideoWorld 2 experiments: plan and run content-hashed stage pipelines"),
  Command.withSubcommands(subcommands)
)

export { ExperimentLoadError, PlanRejected }
