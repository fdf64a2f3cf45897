/**
 * Loads an experiment file (`export default defineExperiment(...)`). The CLI, the inline executor and
 * every worker import the same file, so the stage a worker runs is exactly the one the planner hashed.
 */
import { Data, Effect } from "effect"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import type { Experiment } from "./Experiment.ts"
import { isExperiment } from "./Experiment.ts"
import type { PipelineStep } from "./Pipeline.ts"

export class ExperimentLoadError extends Data.TaggedError("ExperimentLoadError")<{
  readonly file: string
  readonly message: string
}> {}

export const loadExperimentPromise = async (file: string): Promise<Experiment> => {
  const absolute = path.resolve(file)
  const module = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>
  const candidate = module.default ?? module.experiment
  if (!isExperiment(candidate)) {
    throw new TypeError(`${absolute}: expected \`export default defineExperiment({...})\` (or an export named \`experiment\`)`)
  }
  return candidate
}

export const loadExperiment = (file: string): Effect.Effect<Experiment, ExperimentLoadError> =>
  Effect.tryPromise({
    try: () => loadExperimentPromise(file),
    catch: (cause) => {
      const message = cause instanceof Error ? cause.message : String(cause)
      return new ExperimentLoadError({ file, message: message.startsWith(file) ? message : `${file}: ${message}` })
    }
  })

export const findStep = (experiment: Experiment, step: string): PipelineStep => {
  const found = experiment.pipeline.steps.find((s) => s.name === step)
  if (found === undefined) {
    throw new TypeError(`experiment ${experiment.name} has no step ${JSON.stringify(step)} (steps: ${experiment.pipeline.steps.map((s) => s.name).join(", ")})`)
  }
  return found
}
