/**
 * The planner: experiment (+ overrides) → validated configs → sweep points × seeds → trials → stage
 * invocations keyed by content hash. Pure data in, plain data out; invocations shared by several trials
 * (same stage, version, config slice, seed and inputs) appear once, which is how a sweep over a
 * downstream setting runs its upstream stages once.
 *
 *   invocation hash = sha256(canonical { stage, version, config: encoded slice, seed | null, inputs: { name: "<hash>/<output>" } })
 *
 * A stage with `seeded: false` hashes (and runs) with seed null/0, so it is shared across seeds.
 */
import { Schema, SchemaIssue } from "effect"
import { canonicalJson, hashValue, sha256Hex } from "./Canonical.ts"
import type { Override, ResolvedSlice } from "./Config.ts"
import { ConfigError, applyOverrides, validateConfig } from "./Config.ts"
import type { PathSegment } from "./ConfigPath.ts"
import { formatPath, parsePath, setPath } from "./ConfigPath.ts"
import type { EarlyStoppingPlan } from "./EarlyStopping.ts"
import { EarlyStoppingConfig, rungsOf, scheduleOf } from "./EarlyStopping.ts"
import type { Experiment } from "./Experiment.ts"
import { checkDistinctSeeds, parseDuration, StepSettings } from "./Experiment.ts"
import { isSecretPath, redactConfig, redactedText, redactOverrideText, rememberSecretFields, rememberSecretsIn } from "./Redaction.ts"
import type { ArtifactKind, Resources } from "./Stage.ts"
import { resourcesOf } from "./Stage.ts"
import type { Assignments } from "./Sweep.ts"
import { expandSweep } from "./Sweep.ts"
import type { Objective } from "./SweepRollup.ts"

export interface PlannedInput {
  readonly hash: string
  readonly step: string
  readonly output: string
  readonly kind: ArtifactKind
}

export interface PlannedInvocation {
  readonly hash: string
  readonly step: string
  readonly stage: string
  readonly stageVersion: string
  /** resolved config slice, encoded (what is hashed and what workers receive) */
  readonly config: unknown
  /** seed the stage runs with: the trial seed, or 0 for `seeded: false` stages */
  readonly seed: number
  readonly seeded: boolean
  readonly inputs: Readonly<Record<string, PlannedInput>>
  readonly outputs: Readonly<Record<string, ArtifactKind>>
  readonly resources: Resources
  /** the stage's declared headline metrics (`defineStage({ headline })`), empty when it declares none */
  readonly headline: ReadonlyArray<string>
  /** invocation hashes this one waits for */
  readonly dependsOn: ReadonlyArray<string>
  /** ids of the trials that use it; the first one "owns" its tracker run */
  readonly trials: ReadonlyArray<string>
  /** the step's `steps.<step>.retries` (transient failures rerun from the last checkpoint); absent: 0. Not hashed. */
  readonly retries?: number
  /** the step's `steps.<step>.retryStageErrors`: the stage's own errors are retried too */
  readonly retryStageErrors?: boolean
  /** the step's `steps.<step>.timeout` in ms, per attempt. Not hashed. */
  readonly timeoutMs?: number
  /** set by the sweep scheduler for an early-stopping rung (SweepScheduler.ts): the stage pauses at this step */
  readonly pauseAtStep?: number
}

export interface PlannedTrial {
  readonly id: string
  readonly index: number
  readonly seed: number
  /** sweep assignments, path → value (secrets as `***`: this is what plans, labels and params show) */
  readonly assignments: Readonly<Record<string, unknown>>
  /** hash of this trial's full resolved config and seed */
  readonly configHash: string
  /** step → invocation hash */
  readonly invocations: Readonly<Record<string, string>>
}

export interface Plan {
  readonly experiment: string
  /** hash of the resolved base config, sweep and seeds: the experiment run's identity */
  readonly configHash: string
  readonly steps: ReadonlyArray<string>
  /** resolved base config (overrides applied, defaults filled in), step → encoded slice */
  readonly config: Readonly<Record<string, unknown>>
  readonly trials: ReadonlyArray<PlannedTrial>
  /** sweep axes a `--set` replaced by its single value: "fit.lr: grid of 3 values → --set fit.lr=0.1" */
  readonly pinnedAxes: ReadonlyArray<string>
  /** the sweep's objective (`sweep.objective`), checked to name a step of the pipeline */
  readonly objective?: Objective
  /** early stopping across the trials (`sweep.scheduler`, checked): which step pauses at which rungs */
  readonly earlyStopping?: EarlyStoppingPlan
  /** deduplicated, in a topological order */
  readonly invocations: ReadonlyArray<PlannedInvocation>
}

const trialIdWidth = (n: number) => String(Math.max(0, n - 1)).length

const encodedOf = (resolved: Readonly<Record<string, ResolvedSlice>>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(resolved).map(([k, v]) => [k, v.encoded]))

type SweepInput = NonNullable<Parameters<typeof expandSweep>[0]>

const isPrefix = (short: ReadonlyArray<PathSegment>, long: ReadonlyArray<PathSegment>): boolean =>
  short.length < long.length && short.every((segment, i) => segment === long[i])

/**
 * A `--set` on a swept path replaces that axis by its one value (grid: `[value]`; random: `{ choice: [value] }`,
 * which draws once per point like every distribution, so the other axes' draws stay the same). A `--set`
 * above or inside a swept path (`fit` or `fit.lr.x` when `fit.lr` is swept) would be overwritten by the
 * sweep or overwrite it, so it is rejected. See docs/engine.md, "Overrides and sweeps".
 */
const pinSweepAxes = (sweep: SweepInput | undefined, overrides: ReadonlyArray<Override>): { readonly sweep: SweepInput | undefined; readonly pinned: Array<string> } => {
  if (sweep === undefined || overrides.length === 0) return { sweep, pinned: [] }
  const grid: Record<string, ReadonlyArray<unknown> | undefined> = { ...sweep.grid }
  const space: Record<string, unknown> = { ...sweep.random?.space }
  const pinned = new Map<string, string>()
  const original = new Map<string, string>()
  for (const override of overrides) {
    const shown = `--set ${redactOverrideText(override.text)}`
    const axes = [
      ...Object.keys(grid).map((key) => ({ key, kind: "grid" as const })),
      ...Object.keys(space).map((key) => ({ key, kind: "random" as const }))
    ]
    for (const { key, kind } of axes) {
      const axis = parsePath(key)
      if (axis === undefined) continue // expandSweep names the malformed key
      if (formatPath(axis) === formatPath(override.path)) {
        const before = original.get(key) ?? (kind === "grid" ? `grid of ${grid[key]?.length ?? 0} value(s)` : "random draws")
        original.set(key, before)
        if (kind === "grid") grid[key] = [override.value]
        else space[key] = { choice: [override.value] }
        pinned.set(key, `${key}: ${before} → ${shown}`)
      } else if (isPrefix(axis, override.path) || isPrefix(override.path, axis)) {
        throw new ConfigError({
          source: shown,
          issues: [{
            path: formatPath(override.path),
            message: `overlaps the swept path ${key}: --set ${key}=… pins that sweep axis to one value; anything else would be overwritten by the sweep or overwrite it`
          }]
        })
      }
    }
  }
  if (pinned.size === 0) return { sweep, pinned: [] }
  const random = sweep.random === undefined ? undefined : { ...sweep.random, space }
  return { sweep: { ...sweep, grid, ...(random === undefined ? {} : { random }) } as SweepInput, pinned: [...pinned.values()] }
}

/** `key=value` of a sweep assignment for messages, secrets masked and non-JSON values (Infinity) shown as is. */
const describeAssignment = (a: Assignments[number]): string => {
  if (isSecretPath(a.path)) return `${a.key}=${redactedText}`
  try {
    return `${a.key}=${canonicalJson(redactConfig(a.value))}`
  } catch {
    return `${a.key}=${String(a.value)}`
  }
}

const issueFormatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** Decodes engine settings (not stage config) with `schema`; every issue names its path under `prefix`. */
const decodeSettings = <S extends Schema.Top>(schema: S, value: unknown, prefix: string, source: string): S["Type"] => {
  const decoded = Schema.decodeUnknownResult(schema as unknown as Schema.Codec<S["Type"], unknown>)(value, { errors: "all", onExcessProperty: "error" })
  if (decoded._tag === "Success") return decoded.success
  const issues = issueFormatter(decoded.failure.issue).issues.map((issue) => {
    const rel = (issue.path ?? []).map((p) => (typeof p === "object" && p !== null && "key" in p ? (p as { key: PropertyKey }).key : p)) as Array<PathSegment>
    const message = issue.message === "Expected no excess property" ? "unknown key" : issue.message
    return { path: formatPath([...parsePath(prefix)!, ...rel]), message }
  })
  throw new ConfigError({ source, issues })
}

/** `steps: { <step>: { retries, retryStageErrors, timeout } }` checked against the pipeline's steps. */
const checkStepSettings = (settings: unknown, steps: ReadonlyArray<string>): Map<string, Pick<PlannedInvocation, "retries" | "retryStageErrors" | "timeoutMs">> => {
  const out = new Map<string, Pick<PlannedInvocation, "retries" | "retryStageErrors" | "timeoutMs">>()
  if (settings === undefined) return out
  const fail = (path: string, message: string) => new ConfigError({ source: "experiment steps", issues: [{ path, message }] })
  if (typeof settings !== "object" || settings === null || Array.isArray(settings)) throw fail("steps", "expected an object keyed by step name")
  for (const [step, value] of Object.entries(settings)) {
    if (!steps.includes(step)) throw fail(`steps.${step}`, `unknown step (steps: ${steps.join(", ")})`)
    const decoded = decodeSettings(StepSettings, value, `steps.${step}`, "experiment steps")
    const timeoutMs = decoded.timeout === undefined ? undefined : parseDuration(decoded.timeout)
    if (timeoutMs !== undefined && timeoutMs <= 0) throw fail(`steps.${step}.timeout`, "expected a positive duration")
    out.set(step, {
      ...(decoded.retries === undefined || decoded.retries === 0 ? {} : { retries: decoded.retries }),
      ...(decoded.retryStageErrors === true ? { retryStageErrors: true } : {}),
      ...(timeoutMs === undefined ? {} : { timeoutMs })
    })
  }
  return out
}

/**
 * `sweep.scheduler` checked against the planned trials: its metric's step must be swept (its invocation differs
 * between trials: that is what pauses and is compared), and there must be at least two of them.
 */
const checkEarlyStopping = (config: unknown, steps: ReadonlyArray<string>, trials: ReadonlyArray<PlannedTrial>): EarlyStoppingPlan | undefined => {
  if (config === undefined) return undefined
  const fail = (path: string, message: string) => new ConfigError({ source: "sweep", issues: [{ path: `sweep.scheduler.${path}`, message }] })
  const decoded = decodeSettings(EarlyStoppingConfig, config, "sweep.scheduler", "sweep")
  const step = steps.filter((s) => decoded.metric.startsWith(`${s}/`)).sort((a, b) => b.length - a.length)[0]
  if (step === undefined || decoded.metric.length === step.length + 1) {
    throw fail("metric", `expected <step>/<metric> with a step of the pipeline (${steps.join(", ")}), got ${JSON.stringify(decoded.metric)}`)
  }
  const swept = new Set(trials.map((t) => t.invocations[step]))
  if (swept.size < 2) {
    throw fail("metric", `step ${step} is not swept: all ${trials.length} trial(s) share one ${step} invocation, so there is nothing to stop early (sweep a ${step}.… config path, or name the swept step's metric)`)
  }
  const rungs = rungsOf(decoded)
  if ("problem" in rungs) throw fail(rungs.path, rungs.problem)
  const reductionFactor = decoded.reductionFactor ?? 2
  return {
    kind: decoded.kind,
    metric: decoded.metric,
    step,
    key: decoded.metric.slice(step.length + 1),
    mode: decoded.mode,
    reductionFactor,
    rungs: rungs.rungs,
    schedule: scheduleOf(decoded.kind, rungs.rungs, swept.size, reductionFactor)
  }
}

const withoutObjective = (sweep: SweepInput): SweepInput => {
  const { objective: _objective, ...rest } = sweep as SweepInput & { readonly objective?: unknown }
  return rest
}

/** `sweep.objective` must name a rolled-up metric of a step, `<step>/<metric>`, and a mode. */
const checkObjective = (objective: Objective | undefined, steps: ReadonlyArray<string>): Objective | undefined => {
  if (objective === undefined) return undefined
  const fail = (path: string, message: string) => new ConfigError({ source: "sweep", issues: [{ path, message }] })
  if (objective.mode !== "min" && objective.mode !== "max") throw fail("sweep.objective.mode", `expected "min" or "max", got ${JSON.stringify(objective.mode)}`)
  const step = steps.filter((s) => typeof objective.metric === "string" && objective.metric.startsWith(`${s}/`)).sort((a, b) => b.length - a.length)[0]
  if (step === undefined || objective.metric.length === step.length + 1) {
    throw fail("sweep.objective.metric", `expected <step>/<metric> with a step of the pipeline (${steps.join(", ")}), got ${JSON.stringify(objective.metric)}`)
  }
  return { metric: objective.metric, mode: objective.mode }
}

/** Builds the plan; throws ConfigError (naming the path) for any invalid config, override or sweep point. */
export const planExperiment = (experiment: Experiment, overrides: ReadonlyArray<Override> = []): Plan => {
  const pipeline = experiment.pipeline
  const sliceCache = new Map<string, ResolvedSlice>()
  const seeds = experiment.seeds ?? [0]
  checkDistinctSeeds(seeds, "experiment seeds")
  // before any message quotes a --set: its value is masked when the schema declares the path secret
  for (const step of pipeline.steps) rememberSecretFields(step.stage.config, [step.name])
  // the file's own values too: one a --set replaces must still be masked where the file is copied
  rememberSecretsIn(experiment.config)
  const { sweep, pinned } = pinSweepAxes(experiment.sweep as SweepInput | undefined, overrides)
  const baseInput = applyOverrides(pipeline, experiment.config, overrides)
  const base = validateConfig(
    pipeline,
    baseInput,
    overrides.length > 0 ? `experiment config with ${overrides.map((o) => `--set ${redactOverrideText(o.text)}`).join(" ")}` : "experiment config",
    sliceCache
  )
  const points = expandSweep(sweep)
  const objective = checkObjective(experiment.sweep?.objective, pipeline.steps.map((s) => s.name))
  const stepsByName = new Map(pipeline.steps.map((s) => [s.name, s]))
  const stepSettings = checkStepSettings(experiment.steps, pipeline.steps.map((s) => s.name))

  const invocations = new Map<string, { inv: Omit<PlannedInvocation, "trials">; trials: Array<string> }>()
  const order: Array<string> = []
  const trials: Array<PlannedTrial> = []
  const width = trialIdWidth(points.length)

  points.forEach((assignments: Assignments, pointIndex) => {
    let config: unknown = baseInput
    for (const a of assignments) {
      if (typeof a.path[0] !== "string" || !stepsByName.has(a.path[0])) {
        throw new ConfigError({ source: "sweep", issues: [{ path: a.key, message: `unknown step ${JSON.stringify(a.path[0])}` }] })
      }
      config = setPath(config, a.path, a.value)
    }
    const source = assignments.length === 0 ? "experiment config" : `sweep point ${pointIndex} (${assignments.map(describeAssignment).join(", ")})`
    const resolved = assignments.length === 0 ? base : validateConfig(pipeline, config, source, sliceCache)
    for (const seed of seeds) {
      const id = `p${String(pointIndex).padStart(width, "0")}-s${seed}`
      const hashes: Record<string, string> = {}
      for (const step of pipeline.steps) {
        const slice = resolved[step.name]!
        const seeded = step.stage.seeded !== false
        const inputs: Record<string, PlannedInput> = {}
        for (const [inputName, ref] of Object.entries(step.inputs)) {
          const [fromStep, output] = ref.split(".") as [string, string]
          inputs[inputName] = { hash: hashes[fromStep]!, step: fromStep, output, kind: step.stage.inputs[inputName] as ArtifactKind }
        }
        const hash = hashValue({
          stage: step.stage.name,
          version: step.stage.version,
          config: slice.encoded,
          seed: seeded ? seed : null,
          inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, `${v.hash}/${v.output}`]))
        })
        hashes[step.name] = hash
        const existing = invocations.get(hash)
        if (existing !== undefined) {
          if (!existing.trials.includes(id)) existing.trials.push(id)
          continue
        }
        order.push(hash)
        invocations.set(hash, {
          inv: {
            hash,
            step: step.name,
            stage: step.stage.name,
            stageVersion: step.stage.version,
            config: slice.encoded,
            seed: seeded ? seed : 0,
            seeded,
            inputs,
            outputs: step.stage.outputs as Record<string, ArtifactKind>,
            resources: resourcesOf(step.stage, slice.value),
            headline: step.stage.headline ?? [],
            dependsOn: [...new Set(Object.values(inputs).map((i) => i.hash))],
            ...stepSettings.get(step.name)
          },
          trials: [id]
        })
      }
      trials.push({
        id,
        index: trials.length,
        seed,
        assignments: Object.fromEntries(assignments.map((a) => [a.key, isSecretPath(a.path) ? redactedText : redactConfig(a.value)])),
        configHash: sha256Hex(canonicalJson({ config: encodedOf(resolved), seed })),
        invocations: hashes
      })
    }
  })

  const baseEncoded = encodedOf(base)
  const earlyStopping = checkEarlyStopping(experiment.sweep?.scheduler, pipeline.steps.map((s) => s.name), trials)
  return {
    experiment: experiment.name,
    configHash: hashValue({ config: baseEncoded, sweep: sweep === undefined ? null : withoutObjective(sweep), seeds }),
    steps: pipeline.steps.map((s) => s.name),
    config: baseEncoded,
    trials,
    pinnedAxes: pinned,
    ...(objective === undefined ? {} : { objective }),
    ...(earlyStopping === undefined ? {} : { earlyStopping }),
    invocations: order.map((hash) => {
      const entry = invocations.get(hash)!
      return { ...entry.inv, trials: entry.trials }
    })
  }
}
