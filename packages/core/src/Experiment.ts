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
 * The config type is derived from the pipeline's stages, so a wrong key or type fails `tsc`; at run time
 * the same config is validated with each stage's Schema (see Config.ts) before anything runs.
 */
import { ConfigError } from "./Config.ts"
import type { ConfigPaths, PathValue } from "./ConfigPath.ts"
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
}

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
}

export interface ExperimentDefinition<P extends AnyPipeline> {
  readonly name: string
  readonly pipeline: P
  readonly config: ConfigOfPipeline<P>
  readonly sweep?: Sweep<ConfigOfPipeline<P>>
  readonly seeds?: ReadonlyArray<number>
  readonly executor?: ExecutorChoice
}

/** Declares an experiment; checks the shape that types cannot (name, seeds) right away. */
export const defineExperiment = <P extends AnyPipeline>(definition: ExperimentDefinition<P>): Experiment<P> => {
  if (typeof definition.name !== "string" || !/^[A-Za-z0-9][\w.-]*$/.test(definition.name)) {
    throw new TypeError(`defineExperiment: name must match /^[A-Za-z0-9][\\w.-]*$/, got ${JSON.stringify(definition.name)}`)
  }
  if (!isPipeline(definition.pipeline)) throw new TypeError(`defineExperiment(${definition.name}): pipeline must come from definePipeline()`)
  if (definition.seeds !== undefined) {
    if (!Array.isArray(definition.seeds) || definition.seeds.length === 0) {
      throw new TypeError(`defineExperiment(${definition.name}): seeds must be a non-empty array`)
    }
    for (const [i, seed] of definition.seeds.entries()) {
      if (!Number.isSafeInteger(seed)) throw new TypeError(`defineExperiment(${definition.name}): seeds[${i}] must be an integer`)
    }
    checkDistinctSeeds(definition.seeds, `defineExperiment(${definition.name})`)
  }
  return { _tag: "Experiment", ...definition }
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
