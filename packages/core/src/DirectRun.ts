/**
 * Runs one stage directly, without planner, artifact store or executor: the config is decoded by the
 * stage's Schema and the stage gets the same StageContext every executor gives it (runStageInProcess),
 * on fresh temporary directories. For package tests and quick scripts that exercise one stage.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runStageInProcess } from "./internal/runStage.ts"
import type { AnyStage, InputArtifact } from "./Stage.ts"

export interface DirectStageRun {
  /** the invocation's output root: one folder per declared output */
  readonly outputRoot: string
  readonly metrics: Array<{ readonly values: Readonly<Record<string, number>>; readonly step: number }>
  readonly uploads: Array<string>
  readonly logs: Array<string>
}

export interface DirectRunOptions {
  /** the trial seed (default 0) */
  readonly seed?: number
  /** aborting it aborts ctx.signal, as Ctrl-C does on an executor; the stage decides how to stop */
  readonly signal?: AbortSignal
  /** the mid-stage checkpoint directory (default: a fresh one); pass the same one again to resume */
  readonly resumeDir?: string
  /** an early-stopping rung: the stage trains to this step, checkpoints and returns without outputs */
  readonly pauseAtStep?: number
}

/**
 * `inputs` maps each input name of the stage to a directory holding that artifact. Rejects with the
 * stage's error (a StageError, or the Schema's complaint about `config`) when it fails.
 */
export const runStageDirect = async (
  stage: AnyStage,
  config: unknown,
  inputs: Readonly<Record<string, string>>,
  options: number | DirectRunOptions = {}
): Promise<DirectStageRun> => {
  const { seed = 0, signal, resumeDir, pauseAtStep }: DirectRunOptions = typeof options === "number" ? { seed: options } : options
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `vw2-${stage.name}-`))
  const run: DirectStageRun = { outputRoot: path.join(root, "out"), metrics: [], uploads: [], logs: [] }
  const resolved: Record<string, InputArtifact> = {}
  for (const [name, dir] of Object.entries(inputs)) {
    const kind = stage.inputs[name]
    if (kind === undefined) throw new Error(`${stage.name}: no input named ${JSON.stringify(name)} (inputs: ${Object.keys(stage.inputs).join(", ") || "none"})`)
    resolved[name] = { dir, kind, hash: "direct" }
  }
  const result = await Effect.runPromise(
    runStageInProcess(
      {
        stage,
        step: stage.name,
        config,
        seed,
        invocationHash: "direct",
        inputs: resolved,
        outputRoot: run.outputRoot,
        scratchDir: path.join(root, "scratch"),
        resumeDir: resumeDir ?? path.join(root, "resume"),
        ...(pauseAtStep === undefined ? {} : { pauseAtStep }),
        gpus: [],
        cpus: 1,
        ...(signal === undefined ? {} : { signal })
      },
      (event) => {
        if (event.type === "metrics") run.metrics.push({ values: event.values, step: event.step })
        else if (event.type === "log") run.logs.push(event.message)
      }
    )
  )
  run.uploads.push(...result.uploads)
  return run
}
