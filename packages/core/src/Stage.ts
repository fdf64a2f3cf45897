/**
 * The stage contract: what model and data packages implement, and what every executor runs.
 * A stage never knows which executor (inline, local worker, Ray task) runs it; everything it may touch
 * arrives through `StageContext`.
 */
import type { Effect, Schema } from "effect"
import { Data, Schema as EffectSchema } from "effect"

/** An artifact kind names what a directory holds ("minicraft-dataset", "dldm-checkpoint", ...).
 * Wiring an output of one kind into an input of another kind fails `tsc`. */
export type ArtifactKind = string

/** Resource needs of one invocation; the executor reserves these slots before starting it. */
export interface Resources {
  readonly cpus: number
  readonly gpus: number
  readonly memoryMb: number
}

/** One scalar metric point, as MLflow stores it. */
export interface MetricPoint {
  readonly key: string
  readonly value: number
  readonly step: number
  /** milliseconds since the epoch */
  readonly timestamp: number
}

/** A published upstream output, resolved for a consumer. `dir` is read-only for the consumer. */
export interface InputArtifact {
  readonly dir: string
  readonly kind: ArtifactKind
  /** invocation hash of the producing stage */
  readonly hash: string
}

/** What a running stage can use. Identical on every executor. */
export interface StageContext {
  readonly invocationHash: string
  /** step name in the pipeline (the config path prefix, e.g. "dldm") */
  readonly step: string
  readonly seed: number
  /** Directory to write the named output into (created on demand). Published atomically after `run` succeeds. */
  readonly outputDir: (output: string) => string
  /** Scratch space that is discarded after the invocation. */
  readonly scratchDir: string
  /** Directory that survives a crash, kill -9 or Ctrl-C of this invocation: keyed by its invocation hash under the
   * store's `resume/<hash>/`, never published, removed once the invocation publishes (`vw2 gc` removes orphans).
   * Mid-stage checkpoints live here (docs/engine.md, "Mid-stage checkpoints"). */
  readonly resumeDir: string
  /** Reports a durable mid-stage checkpoint at `step` of `total` (the plan and `vw2 status` show
   * "resumable at step k/K"). Call it only once the checkpoint is complete on disk. */
  readonly checkpointed: (step: number, total: number) => void
  /** Set by the engine for an early-stopping rung: train up to this step, checkpoint it (`checkpointed`) and
   * return without writing outputs; the engine records the invocation as paused there, not published, and
   * may run it again later (resuming from `resumeDir`) to a later rung or to the end. */
  readonly pauseAtStep?: number
  /** Devices granted by the executor (`CUDA_VISIBLE_DEVICES` is set to `gpus.join(",")` in workers). */
  readonly devices: { readonly gpus: ReadonlyArray<string>; readonly cpus: number }
  readonly progress: (done: number, total: number, message?: string) => void
  /** Stream scalar metrics at a step; forwarded (batched) to the tracker. */
  readonly metrics: (values: Readonly<Record<string, number>>, step: number) => void
  readonly log: (message: string) => void
  /** Mark a file (path relative to the invocation's output root, e.g. "plots/loss.png") for upload to the tracker. */
  readonly upload: (relativePath: string) => void
  /** Aborted when the invocation is interrupted (Ctrl-C, dependency failure, executor shutdown). */
  readonly signal: AbortSignal
}

/** The one error type a stage's `run` fails with; crosses processes, so it stays plain data. */
export class StageError extends Data.TaggedError("StageError")<{
  readonly stage: string
  readonly message: string
  readonly cause?: unknown
}> {}

export type InputsOf<I extends Readonly<Record<string, ArtifactKind>>> = { readonly [K in keyof I]: InputArtifact }

export interface StageDefinition<
  Name extends string = string,
  S extends Schema.Top = Schema.Top,
  I extends Readonly<Record<string, ArtifactKind>> = Readonly<Record<string, ArtifactKind>>,
  O extends Readonly<Record<string, ArtifactKind>> = Readonly<Record<string, ArtifactKind>>
> {
  readonly name: Name
  /** Bump when the code changes what the stage produces: it is part of every invocation hash. */
  readonly version: string
  /** Effect Schema of this stage's config slice; unknown keys are rejected. */
  readonly config: S
  /** Named inputs and the artifact kind each expects. */
  readonly inputs: I
  /** Named outputs and the artifact kind each produces. */
  readonly outputs: O
  /** false when the stage's result does not depend on the trial seed (it is then shared across seeds). Default true. */
  readonly seeded?: boolean
  readonly resources?: (config: S["Type"]) => Partial<Resources>
  /** The metric keys worth a glance, most telling first (the run summary and the live table show these before
   * any other; stage runs carry them as the `vw2.headline` tag). Not hashed: it changes what is shown. */
  readonly headline?: ReadonlyArray<string>
  readonly run: (ctx: StageContext, config: S["Type"], inputs: InputsOf<I>) => Effect.Effect<void, StageError>
}

/** Any stage, whatever its name, config and artifact kinds (what pipelines and executors hold). */
export type AnyStage = StageDefinition<string, any, any, any>

/** The config value an experiment file writes for a stage (the Schema's encoded side: defaults may be omitted). */
export type StageConfigInput<St extends AnyStage> = St["config"]["Encoded"]

const defaultResources: Resources = { cpus: 1, gpus: 0, memoryMb: 0 }

/**
 * Declares a stage. At the type level this is the identity (with `const` inference, so artifact kinds stay
 * literal and wiring mistakes fail `tsc`); at run time it checks the definition's shape once, at import,
 * so a malformed stage fails with its name before any planning.
 */
export const defineStage = <
  const Name extends string,
  S extends Schema.Top,
  const I extends Readonly<Record<string, ArtifactKind>>,
  const O extends Readonly<Record<string, ArtifactKind>>
>(definition: StageDefinition<Name, S, I, O>): StageDefinition<Name, S, I, O> => {
  const where = `defineStage(${JSON.stringify(definition?.name)})`
  if (typeof definition !== "object" || definition === null) throw new TypeError("defineStage: expected a stage definition object")
  if (typeof definition.name !== "string" || !/^[A-Za-z][\w-]*$/.test(definition.name)) {
    throw new TypeError(`${where}: name must match /^[A-Za-z][\\w-]*$/`)
  }
  if (typeof definition.version !== "string" || definition.version.length === 0) {
    throw new TypeError(`${where}: version must be a non-empty string (it is part of every invocation hash)`)
  }
  if (!EffectSchema.isSchema(definition.config)) {
    throw new TypeError(`${where}: config must be an Effect Schema`)
  }
  for (const [side, record] of [["inputs", definition.inputs], ["outputs", definition.outputs]] as const) {
    if (typeof record !== "object" || record === null) throw new TypeError(`${where}: ${side} must be a record of name → artifact kind`)
    for (const [key, kind] of Object.entries(record)) {
      if (!/^[A-Za-z][\w-]*$/.test(key)) throw new TypeError(`${where}: ${side} name ${JSON.stringify(key)} must match /^[A-Za-z][\\w-]*$/`)
      if (typeof kind !== "string" || kind.length === 0) throw new TypeError(`${where}: ${side}.${key} must be a non-empty artifact kind`)
    }
  }
  if (definition.seeded !== undefined && typeof definition.seeded !== "boolean") throw new TypeError(`${where}: seeded must be a boolean`)
  if (definition.resources !== undefined && typeof definition.resources !== "function") {
    throw new TypeError(`${where}: resources must be a function of the config`)
  }
  if (definition.headline !== undefined && (!Array.isArray(definition.headline) || definition.headline.some((k) => typeof k !== "string" || k === ""))) {
    throw new TypeError(`${where}: headline must be an array of metric keys`)
  }
  if (typeof definition.run !== "function") throw new TypeError(`${where}: run must be a function returning an Effect`)
  return definition
}

/** The resources an invocation of `stage` with `config` reserves (defaults: 1 cpu, 0 gpus, no memory bound). */
export const resourcesOf = <St extends AnyStage>(stage: St, config: St["config"]["Type"]): Resources => {
  const requested = stage.resources?.(config) ?? {}
  const resources = { ...defaultResources, ...requested }
  for (const [key, value] of Object.entries(resources)) {
    if (!Number.isInteger(value) || value < 0) {
      throw new TypeError(`stage ${stage.name}: resources.${key} must be a non-negative integer, got ${String(value)}`)
    }
  }
  return resources
}
