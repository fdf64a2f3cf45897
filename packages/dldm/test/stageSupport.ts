/** A real dataset in the shared episode layout (written with @vw2/data's DatasetWriter) and a direct stage runner. */
import { type AnyStage, type DirectRunOptions, runStageDirect } from "@vw2/core"
import { DatasetWriter } from "@vw2/data"
import { miniDiT, saveVdmCheckpoint, VideoDiT } from "@vw2/diffusion"
import { Init } from "@vw2/nn"
import { Cause, Exit } from "effect"
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

/**
 * Runs one stage through core's runStageDirect (the StageContext every executor gives it, config decoded by
 * its Schema) and reports the outcome as an Exit, so tests can assert on failures without try/catch.
 */
export async function runStage(
  stage: AnyStage,
  config: unknown,
  inputs: Readonly<Record<string, string>>,
  options: DirectRunOptions = {}
): Promise<StageRun> {
  try {
    const run = await runStageDirect(stage, config, inputs, options)
    return { outputRoot: run.outputRoot, metrics: run.metrics, logs: run.logs, exit: Exit.void }
  } catch (error) {
    return { outputRoot: "", metrics: [], logs: [], exit: Exit.fail(error) }
  }
}

/** The failure's text: an Error's name and message (not enumerable, so JSON alone would drop them) and its fields. */
export const failureMessage = (exit: Exit.Exit<void, unknown>): string => {
  if (!Exit.isFailure(exit)) return ""
  const error = Cause.squash(exit.cause)
  return error instanceof Error ? `${error.name}: ${error.message} ${JSON.stringify(error)}` : JSON.stringify(error)
}

/** A vdm-checkpoint as vdm-pretrain writes it (mini DiT, no control branch, 5-frame 32 px clips); its weights need
 * no training for the stage tests that read one. Returns `dir`. */
export async function writeUntrainedVdm(dir: string): Promise<string> {
  const pretrained = new VideoDiT(Init.seeded(9), { ...miniDiT, control: { ...miniDiT.control, enabled: false } })
  await saveVdmCheckpoint(dir, pretrained, {
    objective: { pMean: 0, pStd: 1, scaleSigmaByFrames: true, conditionFrames: 1, conditionFrameTime: 0 },
    clip: { length: 5, frameStep: 2, height: 32, width: 32 },
    pixelRange: [-1, 1]
  })
  pretrained.dispose()
  return dir
}
