/** A real dataset in the shared episode layout (written with @vw2/data) and a direct stage runner. */
import type { AnyStage, InputArtifact, StageContext } from "@vw2/core"
import { DatasetWriter } from "@vw2/data"
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** Episodes of a coloured square sliding over a gradient, 16×16, `frames` frames each. */
export const writeSquaresDataset = (dir: string, episodes: { train: number; test: number }, frames = 12, size = 16): void => {
  const writer = new DatasetWriter(dir, { name: "squares", source: "test", height: size, width: size, fps: 8 })
  let n = 0
  for (const split of ["train", "test"] as const) {
    for (let e = 0; e < episodes[split]; e++, n++) {
      const ep = writer.beginEpisode({ id: `sq-${split}-${e}`, split, task: "slide", instruction: "slide the square", domain: "d0" })
      const colour = [200 - 40 * (n % 3), 60 + 50 * (n % 2), 40 + 70 * (n % 3)]
      for (let t = 0; t < frames; t++) {
        const rgb = new Uint8Array(size * size * 3)
        for (let y = 0; y < size; y++)
          for (let x = 0; x < size; x++) {
            const inside = y >= 4 && y < 10 && x >= (t + e) % (size - 6) && x < ((t + e) % (size - 6)) + 6
            const i = (y * size + x) * 3
            rgb[i] = inside ? colour[0]! : 20 + 8 * y
            rgb[i + 1] = inside ? colour[1]! : 30
            rgb[i + 2] = inside ? colour[2]! : 40 + 6 * x
          }
        ep.appendFrame(rgb, { step: 0, phase: "slide", state: {} })
      }
      ep.close()
    }
  }
  writer.finish()
}

export interface StageRun {
  readonly outputRoot: string
  readonly metrics: Array<{ readonly values: Readonly<Record<string, number>>; readonly step: number }>
  readonly uploads: Array<string>
  readonly logs: Array<string>
}

/** Runs one stage with a real StageContext on temporary directories, config decoded by its Schema. */
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
