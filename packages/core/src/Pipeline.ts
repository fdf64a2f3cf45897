/**
 * Pipelines: a typed builder that wires stage outputs to stage inputs.
 *
 *   const p = definePipeline()
 *     .step("data", generateData, {})
 *     .step("fit", fitModel, { dataset: "data.dataset" })
 *
 * Each input reference is `"<earlier step>.<output>"`, and the type only admits outputs whose artifact kind
 * equals the input's kind, so a misspelt step, a missing output or a kind mismatch fails `tsc`. Steps are
 * kept in declaration order, which is therefore always a topological order.
 */
import type { AnyStage, ArtifactKind } from "./Stage.ts"

/** "step.output" */
export type OutputRef = `${string}.${string}`

export interface PipelineStep {
  readonly name: string
  readonly stage: AnyStage
  /** input name → "step.output" */
  readonly inputs: Readonly<Record<string, OutputRef>>
}

/** Step name → stage, accumulated by the builder. */
export type StepsRecord = { readonly [step: string]: AnyStage }

/** Every "step.output" among `Steps` whose artifact kind is exactly `Kind`. */
export type RefsOfKind<Steps extends StepsRecord, Kind extends ArtifactKind> = {
  [S in keyof Steps & string]: {
    [O in keyof Steps[S]["outputs"] & string]: [Steps[S]["outputs"][O]] extends [Kind]
      ? [Kind] extends [Steps[S]["outputs"][O]] ? `${S}.${O}` : never
      : never
  }[keyof Steps[S]["outputs"] & string]
}[keyof Steps & string]

/** The wiring a stage needs: one reference per declared input, of the matching kind. */
export type WiringOf<Steps extends StepsRecord, St extends AnyStage> = {
  readonly [K in keyof St["inputs"]]: RefsOfKind<Steps, St["inputs"][K]>
}

/** What the engine needs of any pipeline, whatever its step types. */
export interface AnyPipeline {
  readonly _tag: "Pipeline"
  readonly steps: ReadonlyArray<PipelineStep>
}

export interface Pipeline<Steps extends StepsRecord = StepsRecord> extends AnyPipeline {
  /** type-level only: step name → stage */
  readonly "~steps"?: Steps
  /** Adds a step named `name` running `stage`, its inputs wired to outputs of earlier steps. */
  readonly step: <const N extends string, St extends AnyStage>(
    name: N extends keyof Steps ? never : N,
    stage: St,
    inputs: WiringOf<Steps, St>
  ) => Pipeline<Steps & { readonly [K in N]: St }>
}

/** Step name → stage type of a pipeline. */
export type StepsOf<P> = P extends { readonly "~steps"?: infer Steps } ? NonNullable<Steps> : never

const stepNamePattern = /^[A-Za-z][\w-]*$/

const make = <Steps extends StepsRecord>(steps: ReadonlyArray<PipelineStep>): Pipeline<Steps> => ({
  _tag: "Pipeline",
  steps,
  step: (name, stage, inputs) => {
    const where = `pipeline step ${JSON.stringify(name)}`
    if (typeof name !== "string" || !stepNamePattern.test(name)) throw new TypeError(`${where}: name must match ${String(stepNamePattern)}`)
    if (steps.some((s) => s.name === name)) throw new TypeError(`${where}: a step with this name already exists`)
    const wiring = inputs as Readonly<Record<string, string>>
    for (const inputName of Object.keys(stage.inputs)) {
      if (!(inputName in wiring)) throw new TypeError(`${where}: input ${inputName} is not wired`)
    }
    for (const [inputName, ref] of Object.entries(wiring)) {
      const kind = stage.inputs[inputName]
      if (kind === undefined) throw new TypeError(`${where}: stage ${stage.name} has no input ${inputName}`)
      const [fromStep, output, ...rest] = String(ref).split(".")
      const producer = steps.find((s) => s.name === fromStep)
      if (producer === undefined || output === undefined || rest.length > 0) {
        throw new TypeError(`${where}: input ${inputName} refers to ${JSON.stringify(ref)}, which is not "<earlier step>.<output>"`)
      }
      const produced = producer.stage.outputs[output]
      if (produced === undefined) throw new TypeError(`${where}: step ${fromStep} has no output ${output}`)
      if (produced !== kind) {
        throw new TypeError(`${where}: input ${inputName} expects ${kind} but ${ref} is ${String(produced)}`)
      }
    }
    return make([...steps, { name, stage, inputs: wiring as Readonly<Record<string, OutputRef>> }])
  }
})

/** Starts an empty pipeline; add steps with `.step(name, stage, wiring)`. */
/** A pipeline with no steps yet. */
export type EmptySteps = Record<never, AnyStage>

export const definePipeline = (): Pipeline<EmptySteps> => make<EmptySteps>([])

export const isPipeline = (u: unknown): u is AnyPipeline =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "Pipeline" && Array.isArray((u as AnyPipeline).steps)
