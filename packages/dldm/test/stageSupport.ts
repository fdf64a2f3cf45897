/** A real dataset in the shared episode layout (written with @vw2/data's DatasetWriter) and a direct stage runner. */
import type { AnyStage, InputArtifact, StageContext } from "@vw2/core"
import { DatasetWriter } from "@vw2/data"
import { Effect, Exit, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** MiniCraft-like episodes: a coloured 8×8 square sliding over a textured table, 32×32. */
export function writeSquaresDataset(dir: string, episodes: { train: number; test: number }, frames = 17, size = 32, name = "squares"): void {
  const writer = new DatasetWriter(dir, { name, source: "test", height: size, width: size, fps: 8 })
  let n = 0
  for (const split of ["train", "test"] as const) {
    for (let e = 0; e < episodes[split]; e++, n++) {
      const ep = writer.beginEpisode({ id: `${name}-${split}-${e}`, split, task: "slide", instruction: "slide the square right", domain: "d0" })
      const colour = [220 - 50 * (n % 3), 60 + 90 * (n % 2), 40 + 70 * (n % 3)]
      const row = 4 + ((5 * n) % 18)
      for (let t = 0; t < frames; t++) {
        const rgb = new Uint8Array(size * size * 3)
        const x0 = (t + 2 * e) % (size - 8)
        for (let y = 0; y < size; y++)
          for (let x = 0; x < size; x++) {
            const inside = y >= row && y < row + 8 && x >= x0 && x < x0 + 8
            const i = (y * size + x) * 3
            rgb[i] = inside ? colour[0]! : 40 + 4 * y
            rgb[i + 1] = inside ? colour[1]! : 60 + 20 * ((x + y) % 2)
            rgb[i + 2] = inside ? colour[2]! : 80 + 3 * x
          }
        ep.appendFrame(rgb, { step: t, phase: "slide", state: {} })
      }
      ep.close()
    }
  }
  writer.finish()
}

export interface StageRun {
  readonly outputRoot: string
  readonly metrics: Array<{ readonly values: Readonly<Record<string, number>>; readonly step: number }>
  readonly logs: Array<string>
  readonly exit: Exit.Exit<void, unknown>
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `vw2-dldm-${prefix}-`))
}

/** Runs one stage with a real StageContext on temporary directories, config decoded by its Schema. */
export async function runStage(
  stage: AnyStage,
  config: unknown,
  inputs: Readonly<Record<string, string>>,
  options: { seed?: number; signal?: AbortSignal } = {}
): Promise<StageRun> {
  const root = tempDir(stage.name)
  const outputRoot = path.join(root, "out")
  const metrics: StageRun["metrics"] = []
  const logs: string[] = []
  const ctx: StageContext = {
    invocationHash: "test",
    step: stage.name,
    seed: options.seed ?? 0,
    outputDir: (name) => {
      const dir = path.join(outputRoot, name)
      fs.mkdirSync(dir, { recursive: true })
      return dir
    },
    scratchDir: fs.mkdtempSync(path.join(root, "scratch-")),
    devices: { gpus: [], cpus: 1 },
    progress: () => {},
    metrics: (values, step) => void metrics.push({ values, step }),
    log: (m) => void logs.push(m),
    upload: () => {},
    signal: options.signal ?? new AbortController().signal
  }
  const decoded = Schema.decodeUnknownSync(stage.config as unknown as Schema.Codec<unknown, unknown>)(config, { onExcessProperty: "error" })
  const resolved: Record<string, InputArtifact> = {}
  for (const [name, dir] of Object.entries(inputs)) resolved[name] = { dir, kind: stage.inputs[name]!, hash: "test" }
  const exit = await Effect.runPromiseExit(stage.run(ctx, decoded, resolved))
  return { outputRoot, metrics, logs, exit }
}

export const failureMessage = (exit: Exit.Exit<void, unknown>): string => (Exit.isFailure(exit) ? String(JSON.stringify(exit.cause)) : "")
