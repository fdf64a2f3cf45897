/** Runs one stage directly with a real StageContext on temporary directories (what runStage does, minus the engine). */
import type { AnyStage, InputArtifact, StageContext } from "@vw2/core"
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export interface StageRun {
  readonly outputRoot: string
  readonly metrics: Array<{ readonly values: Readonly<Record<string, number>>; readonly step: number }>
  readonly uploads: Array<string>
  readonly logs: Array<string>
}

export const runStage = async (stage: AnyStage, config: unknown, inputs: Readonly<Record<string, string>>, seed = 0): Promise<StageRun> => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `vw2-${stage.name}-`))
  const outputRoot = path.join(root, "out")
  const run: StageRun = { outputRoot, metrics: [], uploads: [], logs: [] }
  const ctx: StageContext = {
    invocationHash: "test",
    step: stage.name,
    seed,
    outputDir: (name) => {
      const dir = path.join(outputRoot, name)
      fs.mkdirSync(dir, { recursive: true })
      return dir
    },
    scratchDir: fs.mkdtempSync(path.join(root, "scratch-")),
    devices: { gpus: [], cpus: 1 },
    progress: () => {},
    metrics: (values, step) => void run.metrics.push({ values, step }),
    log: (m) => void run.logs.push(m),
    upload: (p) => void run.uploads.push(p),
    signal: new AbortController().signal
  }
  const decoded = Schema.decodeUnknownSync(stage.config as unknown as Schema.Codec<unknown, unknown>)(config, { onExcessProperty: "error" })
  const resolved: Record<string, InputArtifact> = {}
  for (const [name, dir] of Object.entries(inputs)) resolved[name] = { dir, kind: stage.inputs[name]!, hash: "test" }
  await Effect.runPromise(stage.run(ctx, decoded, resolved))
  return run
}
