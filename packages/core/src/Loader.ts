/**
 * Loads an experiment file (`export default defineExperiment(...)`). The CLI, the inline executor and
 * every worker import the same file, so the stage a worker runs is exactly the one the planner hashed.
 * A file with presets is resolved to the preset asked for (the CLI's `--preset`); workers need none, since
 * every preset shares the pipeline and a worker gets its step's resolved config in its spec.
 */
import { Data, Effect } from "effect"
import { registerHooks } from "node:module"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import type { Experiment, ExperimentFileValue } from "./Experiment.ts"
import { isExperiment, isExperimentWithPresets, selectPreset } from "./Experiment.ts"
import type { AnyPipeline, PipelineStep } from "./Pipeline.ts"

export class ExperimentLoadError extends Data.TaggedError("ExperimentLoadError")<{
  readonly file: string
  readonly message: string
}> {}

let workspaceFallbackInstalled = false

/**
 * Lets an experiment file anywhere on disk (`vw2 run ~/exp/my.ts`) import `@vw2/*` and `effect`: a bare
 * import that Node cannot resolve from the file's own directory (no node_modules above it) is resolved
 * again from this package, i.e. from the vw2 checkout the CLI or worker runs from. Files inside the
 * repository resolve as before; the fallback only runs where resolution already failed.
 */
const installWorkspaceFallback = () => {
  if (workspaceFallbackInstalled) return
  workspaceFallbackInstalled = true
  const here = import.meta.url
  registerHooks({
    resolve: (specifier, context, nextResolve) => {
      try {
        return nextResolve(specifier, context)
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        const bare = !/^(\.|\/|[A-Za-z][\w+.-]*:)/.test(specifier)
        if (!bare || (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") || context.parentURL === here) throw error
        return nextResolve(specifier, { ...context, parentURL: here })
      }
    }
  })
}

/** "file:///x/exp.ts:3\n<source line>\n   ^^^" from a SyntaxError's stack (Node puts the location there, not in the message). */
const syntaxErrorLocation = (error: unknown): string | undefined => {
  if (!(error instanceof SyntaxError) || typeof error.stack !== "string") return undefined
  const [where, ...excerpt] = error.stack.split("\n\n")[0]!.split("\n")
  // a file URL, or a plain path for files outside any package.json
  const match = /^(file:\/\/.+|\/.+):(\d+)$/.exec(where ?? "")
  if (match === null) return undefined
  const file = match[1]!.startsWith("file:") ? fileURLToPath(match[1]!) : match[1]!
  return [`${file}:${match[2]}`, ...excerpt].map((line) => `  ${line}`).join("\n")
}

/** The file's export as declared: one experiment, or one per preset. */
export const loadExperimentFilePromise = async (file: string): Promise<ExperimentFileValue> => {
  const absolute = path.resolve(file)
  installWorkspaceFallback()
  let module: Record<string, unknown>
  try {
    module = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>
  } catch (error) {
    const location = syntaxErrorLocation(error)
    if (location !== undefined) throw new SyntaxError(`${(error as Error).message}\n${location}`, { cause: error })
    throw error
  }
  const candidate = module.default ?? module.experiment
  if (!isExperiment(candidate) && !isExperimentWithPresets(candidate)) {
    throw new TypeError(`${absolute}: expected \`export default defineExperiment({...})\` (or an export named \`experiment\`)`)
  }
  return candidate
}

/** The experiment to plan: the file's only one, or its preset `preset` (default: the file's defaultPreset). */
export const loadExperimentPromise = async (file: string, preset?: string): Promise<Experiment> =>
  selectPreset(await loadExperimentFilePromise(file), preset)

export const loadExperiment = (file: string, preset?: string): Effect.Effect<Experiment, ExperimentLoadError> =>
  Effect.tryPromise({
    try: () => loadExperimentPromise(file, preset),
    catch: (cause) => {
      const message = cause instanceof Error ? cause.message : String(cause)
      return new ExperimentLoadError({ file, message: message.startsWith(file) ? message : `${file}: ${message}` })
    }
  })

export const findStep = (experiment: { readonly name: string; readonly pipeline: AnyPipeline }, step: string): PipelineStep => {
  const found = experiment.pipeline.steps.find((s) => s.name === step)
  if (found === undefined) {
    throw new TypeError(`experiment ${experiment.name} has no step ${JSON.stringify(step)} (steps: ${experiment.pipeline.steps.map((s) => s.name).join(", ")})`)
  }
  return found
}
