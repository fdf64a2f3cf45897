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
import { canonicalJson, hashValue, sha256Hex } from "./Canonical.ts"
import type { Override, ResolvedSlice } from "./Config.ts"
import { ConfigError, applyOverrides, validateConfig } from "./Config.ts"
import { setPath } from "./ConfigPath.ts"
import type { Experiment } from "./Experiment.ts"
import type { ArtifactKind, Resources } from "./Stage.ts"
import { resourcesOf } from "./Stage.ts"
import type { Assignments } from "./Sweep.ts"
import { expandSweep } from "./Sweep.ts"

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
  /** invocation hashes this one waits for */
  readonly dependsOn: ReadonlyArray<string>
  /** ids of the trials that use it; the first one "owns" its tracker run */
  readonly trials: ReadonlyArray<string>
}

export interface PlannedTrial {
  readonly id: string
  readonly index: number
  readonly seed: number
  /** sweep assignments, path → value */
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
  /** deduplicated, in a topological order */
  readonly invocations: ReadonlyArray<PlannedInvocation>
}

const trialIdWidth = (n: number) => String(Math.max(0, n - 1)).length

const encodedOf = (resolved: Readonly<Record<string, ResolvedSlice>>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(resolved).map(([k, v]) => [k, v.encoded]))

/** Builds the plan; throws ConfigError (naming the path) for any invalid config, override or sweep point. */
export const planExperiment = (experiment: Experiment, overrides: ReadonlyArray<Override> = []): Plan => {
  const pipeline = experiment.pipeline
  const sliceCache = new Map<string, ResolvedSlice>()
  const baseInput = applyOverrides(pipeline, experiment.config, overrides)
  const base = validateConfig(pipeline, baseInput, overrides.length > 0 ? `experiment config with ${overrides.map((o) => `--set ${o.text}`).join(" ")}` : "experiment config", sliceCache)
  const seeds = experiment.seeds ?? [0]
  const points = expandSweep(experiment.sweep as Parameters<typeof expandSweep>[0])
  const stepsByName = new Map(pipeline.steps.map((s) => [s.name, s]))

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
    const source = assignments.length === 0 ? "experiment config" : `sweep point ${pointIndex} (${assignments.map((a) => `${a.key}=${canonicalJson(a.value)}`).join(", ")})`
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
            dependsOn: [...new Set(Object.values(inputs).map((i) => i.hash))]
          },
          trials: [id]
        })
      }
      trials.push({
        id,
        index: trials.length,
        seed,
        assignments: Object.fromEntries(assignments.map((a) => [a.key, a.value])),
        configHash: sha256Hex(canonicalJson({ config: encodedOf(resolved), seed })),
        invocations: hashes
      })
    }
  })

  const baseEncoded = encodedOf(base)
  return {
    experiment: experiment.name,
    configHash: hashValue({ config: baseEncoded, sweep: experiment.sweep ?? null, seeds }),
    steps: pipeline.steps.map((s) => s.name),
    config: baseEncoded,
    trials,
    invocations: order.map((hash) => {
      const entry = invocations.get(hash)!
      return { ...entry.inv, trials: entry.trials }
    })
  }
}
