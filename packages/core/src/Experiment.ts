/**
 * Experiments: the typed value an experiment file exports.
 *
 *   export default defineExperiment({
 *     name: "quickstart",
 *     pipeline,                                   // from definePipeline()
 *     config: { data: {...}, fit: {...} },        // keyed by step name: each step's stage config slice
 *     sweep: { grid: { "fit.learningRate": [0.01, 0.1] } },   // keys are typed config paths
 *     seeds: [0, 1]
 *   })
 *
 * An experiment at several sizes declares presets instead of `config`; each preset gives its config and may
 * give its own sweep, seeds or executor (the shared ones apply otherwise). `vw2 plan|run FILE --preset NAME`
 * picks one (default: `defaultPreset`); see docs/experiments.md, "Presets".
 *
 *   export default defineExperiment({
 *     name: "paper-main",                         // runs as paper-main-mini / paper-main-paper
 *     pipeline,
 *     presets: { mini: { config: miniConfig }, paper: { config: paperConfig, seeds: [0] } },
 *     defaultPreset: "mini"
 *   })
 *
 * The config type is derived from the pipeline's stages, so a wrong key or type fails `tsc`; at run time
 * the same config is validated with each stage's Schema (see Config.ts) before anything runs.
 */
import { Data, Schema } from "effect"
import { ConfigError } from "./Config.ts"
import type { ConfigPaths, PathValue } from "./ConfigPath.ts"
import type { EarlyStoppingConfig } from "./EarlyStopping.ts"
import type { AnyPipeline, StepsOf, StepsRecord } from "./Pipeline.ts"
import { isPipeline } from "./Pipeline.ts"

/** Step name → that stage's config (as written: the Schema's encoded side). */
export type ExperimentConfig<Steps extends StepsRecord> = { readonly [K in keyof Steps]: Steps[K]["config"]["Encoded"] }

export type ConfigOfPipeline<P> = ExperimentConfig<StepsOf<P>>

/** How a random sweep draws one value. */
export type Distribution<V> =
  | { readonly choice: ReadonlyArray<V> }
  | ([V] extends [number]
    ? { readonly uniform: readonly [number, number] } | { readonly logUniform: readonly [number, number] } | {
      readonly intUniform: readonly [number, number]
    }
    : never)

export interface Sweep<C> {
  /** Cartesian product over the listed values (in key order). */
  readonly grid?: { readonly [P in ConfigPaths<C>]?: ReadonlyArray<PathValue<C, P>> }
  /** `n` random draws (seeded by `seed`, default 0); combined with `grid`, every grid point gets `n` draws. */
  readonly random?: {
    readonly n: number
    readonly seed?: number
    readonly space: { readonly [P in ConfigPaths<C>]?: Distribution<PathValue<C, P>> }
  }
  /** What "best" means for this sweep: a rolled-up stage metric `<step>/<metric>` (as trial runs carry it) and
   * its direction. The experiment run is tagged with the best trial group (`vw2.best_group`). Not hashed: it
   * changes what is reported, not what is computed. */
  readonly objective?: { readonly metric: string; readonly mode: "min" | "max" }
  /** Early stopping across the trials (EarlyStopping.ts; docs/engine.md, "Early stopping"): the swept step's
   * trials pause at rungs and only the best go on. Part of the experiment's config hash, under which its
   * decisions are recorded. */
  readonly scheduler?: EarlyStoppingConfig
}

/** How long, as text: "90s", "30m", "2h", "1.5d", "500ms". */
const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/
const durationUnitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/** Milliseconds of a duration text ("2h" → 7200000); undefined when it is not one. */
export const parseDuration = (text: string): number | undefined => {
  const m = durationPattern.exec(text)
  return m === null ? undefined : Number(m[1]) * durationUnitMs[m[2] as keyof typeof durationUnitMs]
}

/**
 * How the engine runs a step's invocations: retries and a time limit. Settings of the step in this
 * experiment, not of its stage's model, so they are not part of any invocation hash (docs/engine.md,
 * "Retries and time limits").
 */
export const StepSettings = Schema.Struct({
  /** reruns after a transient failure (worker killed or exited by a signal, lost Ray node); each resumes from the
   * invocation's last mid-stage checkpoint. Default 0. */
  retries: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  /** also rerun after the stage's own error (StageError), not only transient failures. Default false. */
  retryStageErrors: Schema.optionalKey(Schema.Boolean),
  /** time limit of one attempt ("90s", "30m", "2h", "1d"): past it the worker group is killed and the
   * invocation fails with "timed out after …" (not retried) */
  timeout: Schema.optionalKey(Schema.String.check(Schema.isPattern(durationPattern)))
})
export type StepSettings = typeof StepSettings["Type"]

/** Step name → its engine settings. */
export type StepsSettings<P> = { readonly [K in keyof StepsOf<P>]?: StepSettings }

/** Which executor runs the experiment by default (the CLI's --executor/--gpus/--cpus/--memory override it). */
export interface ExecutorChoice {
  readonly kind?: "inline" | "local" | (string & {})
  readonly gpus?: ReadonlyArray<string>
  readonly cpus?: number
  /** memory (MB) the local executor reserves stages' `resources.memoryMb` from */
  readonly memoryMb?: number
}

export interface Experiment<P extends AnyPipeline = AnyPipeline> {
  readonly _tag: "Experiment"
  readonly name: string
  readonly pipeline: P
  readonly config: ConfigOfPipeline<P>
  readonly sweep?: Sweep<ConfigOfPipeline<P>>
  /** Trial seeds; each sweep point runs once per seed. Default [0]. */
  readonly seeds?: ReadonlyArray<number>
  readonly executor?: ExecutorChoice
  /** Per-step engine settings (retries, timeout), keyed by step name; not hashed. */
  readonly steps?: StepsSettings<P>
  /** The preset this experiment was chosen as (`ExperimentWithPresets`); absent for a file with one size. */
  readonly preset?: string
}

export interface ExperimentDefinition<P extends AnyPipeline> {
  readonly name: string
  readonly pipeline: P
  readonly config: ConfigOfPipeline<P>
  readonly sweep?: Sweep<ConfigOfPipeline<P>>
  readonly seeds?: ReadonlyArray<number>
  readonly executor?: ExecutorChoice
  /** per-step engine settings (retries, timeout): docs/engine.md, "Retries and time limits" */
  readonly steps?: StepsSettings<P>
}

/** What one preset of an experiment sets. The pipeline is shared by every preset, so a worker finds a step's
 * stage without knowing the preset: the preset only changes configs, which reach workers resolved. */
export interface ExperimentPreset<P extends AnyPipeline> {
  readonly config: ConfigOfPipeline<P>
  /** replaces the experiment's shared `sweep` for this preset */
  readonly sweep?: Sweep<ConfigOfPipeline<P>>
  /** replaces the experiment's shared `seeds` for this preset */
  readonly seeds?: ReadonlyArray<number>
  readonly executor?: ExecutorChoice
  /** replaces the experiment's shared `steps` settings for this preset */
  readonly steps?: StepsSettings<P>
}

export interface PresetsDefinition<P extends AnyPipeline, N extends string> {
  /** base name: the experiment runs as `<name>-<preset>` (sizes are not comparable, so each gets its own MLflow experiment) */
  readonly name: string
  readonly pipeline: P
  readonly presets: { readonly [K in N]: ExperimentPreset<P> }
  /** the preset `vw2 plan|run` uses without `--preset` */
  readonly defaultPreset: NoInfer<N>
  /** shared by every preset that does not set its own */
  readonly sweep?: Sweep<ConfigOfPipeline<P>>
  readonly seeds?: ReadonlyArray<number>
  readonly executor?: ExecutorChoice
  readonly steps?: StepsSettings<P>
}

/** An experiment file's value when it declares presets: every preset already resolved and checked. */
export interface ExperimentWithPresets<P extends AnyPipeline = AnyPipeline, N extends string = string> {
  readonly _tag: "ExperimentWithPresets"
  readonly name: string
  readonly pipeline: P
  readonly presets: { readonly [K in N]: Experiment<P> }
  readonly defaultPreset: N
}

/** What an experiment file may export: one experiment, or one per preset. */
export type ExperimentFileValue = Experiment | ExperimentWithPresets

const namePattern = /^[A-Za-z0-9][\w.-]*$/

const checkSeeds = (seeds: ReadonlyArray<number> | undefined, source: string): void => {
  if (seeds === undefined) return
  if (!Array.isArray(seeds) || seeds.length === 0) throw new TypeError(`${source}: seeds must be a non-empty array`)
  for (const [i, seed] of seeds.entries()) {
    if (!Number.isSafeInteger(seed)) throw new TypeError(`${source}: seeds[${i}] must be an integer`)
  }
  checkDistinctSeeds(seeds, source)
}

const checkNameAndPipeline = (definition: { readonly name: unknown; readonly pipeline: unknown }): void => {
  if (typeof definition.name !== "string" || !namePattern.test(definition.name)) {
    throw new TypeError(`defineExperiment: name must match /^[A-Za-z0-9][\\w.-]*$/, got ${JSON.stringify(definition.name)}`)
  }
  if (!isPipeline(definition.pipeline)) throw new TypeError(`defineExperiment(${definition.name}): pipeline must come from definePipeline()`)
}

const definePresets = <P extends AnyPipeline, N extends string>(definition: PresetsDefinition<P, N>): ExperimentWithPresets<P, N> => {
  const source = `defineExperiment(${definition.name})`
  if ("config" in definition) throw new TypeError(`${source}: give either config or presets, not both (each preset has its config)`)
  const names = Object.keys(definition.presets ?? {}) as Array<N>
  if (typeof definition.presets !== "object" || definition.presets === null || names.length === 0) {
    throw new TypeError(`${source}: presets must be a non-empty object, e.g. { mini: { config }, paper: { config } }`)
  }
  for (const name of names) {
    if (!namePattern.test(name)) throw new TypeError(`${source}: preset name ${JSON.stringify(name)} must match /^[A-Za-z0-9][\\w.-]*$/`)
  }
  if (!names.includes(definition.defaultPreset)) {
    throw new TypeError(`${source}: defaultPreset ${JSON.stringify(definition.defaultPreset)} is not one of its presets (${names.join(", ")})`)
  }
  const resolve = (name: N): Experiment<P> => {
    const preset = definition.presets[name]
    if (typeof preset !== "object" || preset === null || !("config" in preset)) throw new TypeError(`${source}: presets.${name} must be { config, sweep?, seeds?, executor?, steps? }`)
    const sweep = preset.sweep ?? definition.sweep
    const seeds = preset.seeds ?? definition.seeds
    const executor = preset.executor ?? definition.executor
    const steps = preset.steps ?? definition.steps
    checkSeeds(seeds, `${source}, preset ${name}`)
    return {
      _tag: "Experiment",
      name: `${definition.name}-${name}`,
      pipeline: definition.pipeline,
      config: preset.config,
      ...(sweep === undefined ? {} : { sweep }),
      ...(seeds === undefined ? {} : { seeds }),
      ...(executor === undefined ? {} : { executor }),
      ...(steps === undefined ? {} : { steps }),
      preset: name
    }
  }
  return {
    _tag: "ExperimentWithPresets",
    name: definition.name,
    pipeline: definition.pipeline,
    presets: Object.fromEntries(names.map((name) => [name, resolve(name)])) as { readonly [K in N]: Experiment<P> },
    defaultPreset: definition.defaultPreset
  }
}

/**
 * Declares an experiment; checks the shape that types cannot (name, seeds, preset names) right away. With
 * `config` it is one experiment; with `presets` one per preset (`ExperimentWithPresets`).
 */
export const defineExperiment = <P extends AnyPipeline, const N extends string = never>(
  definition: ExperimentDefinition<P> | PresetsDefinition<P, N>
): [N] extends [never] ? Experiment<P> : ExperimentWithPresets<P, N> => {
  checkNameAndPipeline(definition)
  if ("presets" in definition) return definePresets(definition) as never
  checkSeeds(definition.seeds, `defineExperiment(${definition.name})`)
  return { _tag: "Experiment", ...definition } as never
}

/** `--preset` named a preset the experiment does not have, or the experiment has none. */
export class PresetError extends Data.TaggedError("PresetError")<{ readonly message: string }> {}

/**
 * The experiment to plan: the named preset (default: the file's `defaultPreset`). A preset asked of a file
 * with one size fails rather than silently running that size.
 */
export const selectPreset = (value: ExperimentFileValue, preset: string | undefined): Experiment => {
  if (value._tag === "Experiment") {
    if (preset === undefined) return value
    throw new PresetError({ message: `preset ${preset} asked for, but experiment ${value.name} has no presets (it has one size; files that offer sizes declare defineExperiment({ presets }), e.g. experiments/paper/*.ts)` })
  }
  const name = preset ?? value.defaultPreset
  const chosen = Object.hasOwn(value.presets, name) ? value.presets[name] : undefined
  if (chosen === undefined) throw new PresetError({ message: `unknown preset ${JSON.stringify(name)}: experiment ${value.name} has presets ${Object.keys(value.presets).join(", ")}` })
  return chosen
}

/**
 * Rejects a seed listed twice (`seeds: [0, 0]`): its trials would share an id and a config, so one of them
 * would silently stand for both.
 */
export const checkDistinctSeeds = (seeds: ReadonlyArray<number>, source: string): void => {
  const firstIndex = new Map<number, number>()
  seeds.forEach((seed, i) => {
    const first = firstIndex.get(seed)
    if (first !== undefined) {
      throw new ConfigError({
        source,
        issues: [{ path: `seeds[${i}]`, message: `duplicate seed ${seed} (also seeds[${first}]): each seed runs every trial once, list it once` }]
      })
    }
    firstIndex.set(seed, i)
  })
}

export const isExperiment = (u: unknown): u is Experiment =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "Experiment"

export const isExperimentWithPresets = (u: unknown): u is ExperimentWithPresets =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "ExperimentWithPresets"
