/**
 * Mean step time of each dLDM stage at the mini preset on the active tfjs backend:
 *   VW2_TF_BACKEND=cpu npx node packages/dldm/scripts/step-times.ts [steps]
 * Runs the real stages on a small synthetic dataset (moving squares, shared episode layout) in a temp dir;
 * prints wall and process-CPU time per step (CPU time is the fairer number on a shared machine).
 */
import type { AnyStage, InputArtifact, StageContext } from "@vw2/core"
import { VideoDiT, miniDiT, saveVdmCheckpoint } from "@vw2/diffusion"
import { Init } from "@vw2/nn"
import { Effect, Exit, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { dldmStage, openxCotrainStage, tokenizeStage, warmupStage } from "../src/index.ts"
import { writeSquaresDataset } from "../test/stageSupport.ts"

const steps = Number(process.argv[2] ?? 6)
const root = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-dldm-steptimes-"))

async function run(stage: AnyStage, config: unknown, inputs: Record<string, string>): Promise<string> {
  const out = path.join(root, stage.name)
  const stepMs: number[] = []
  const logs: string[] = []
  let lastCpu = process.cpuUsage()
  const cpuMs: number[] = []
  const ctx: StageContext = {
    invocationHash: stage.name,
    step: stage.name,
    seed: 0,
    outputDir: (name) => {
      fs.mkdirSync(path.join(out, name), { recursive: true })
      return path.join(out, name)
    },
    scratchDir: root,
    resumeDir: path.join(out, ".resume"),
    checkpointed: () => {},
    devices: { gpus: [], cpus: 1 },
    progress: () => {},
    metrics: (values) => {
      const now = process.cpuUsage()
      cpuMs.push((now.user - lastCpu.user + now.system - lastCpu.system) / 1000)
      lastCpu = now
      // the training harness logs `<stage>/step_ms` (warmup/step_ms, dldm/step_ms)
      const ms = values[`${stage.name}/step_ms`]
      if (ms !== undefined) stepMs.push(ms)
    },
    log: (m) => void logs.push(m),
    upload: () => {},
    signal: new AbortController().signal
  }
  const decoded = Schema.decodeUnknownSync(stage.config as unknown as Schema.Codec<unknown, unknown>)(config)
  const resolved: Record<string, InputArtifact> = {}
  for (const [k, dir] of Object.entries(inputs)) resolved[k] = { dir, kind: stage.inputs[k]!, hash: k }
  const t0 = performance.now()
  const exit = await Effect.runPromiseExit(stage.run(ctx, decoded, resolved))
  if (Exit.isFailure(exit)) throw new Error(`${stage.name} failed: ${JSON.stringify(exit.cause)}`)
  const total = performance.now() - t0
  const tail = (xs: number[]) => xs.slice(1) // first step includes one-time setup
  const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length)
  const backend = logs.find((l) => l.startsWith("tfjs backend:")) ?? ""
  console.log(
    `${stage.name.padEnd(14)} ${backend.replace("tfjs backend: ", "").padEnd(34)} ` +
      (stepMs.length > 0 ? `step ${mean(tail(stepMs)).toFixed(0)} ms wall, ${mean(tail(cpuMs)).toFixed(0)} ms cpu; ` : "") +
      `stage ${(total / 1000).toFixed(1)} s`
  )
  return out
}

const craft = path.join(root, "craft")
const openx = path.join(root, "openx")
writeSquaresDataset(craft, { train: 4, test: 2 }, 17)
writeSquaresDataset(openx, { train: 3, test: 0 }, 17, 32, "openx")
const vdm = path.join(root, "vdm-pretrained")
const pre = new VideoDiT(Init.seeded(0), { ...miniDiT, control: { ...miniDiT.control, enabled: false } })
await saveVdmCheckpoint(vdm, pre, {
  objective: { pMean: 0, pStd: 1, scaleSigmaByFrames: true, conditionFrames: 1, conditionFrameTime: 0 },
  clip: { length: 9, frameStep: 1, height: 32, width: 32 },
  pixelRange: [-1, 1]
})
pre.dispose()
try {
  const warm = await run(warmupStage, { steps }, { dataset: craft })
  const joint = await run(dldmStage, { steps }, { dataset: craft, warmup: path.join(warm, "checkpoint"), vdm })
  await run(openxCotrainStage, { steps }, { craft, openx, checkpoint: path.join(joint, "checkpoint"), vdm: path.join(joint, "vdm") })
  await run(tokenizeStage, {}, { dataset: craft, checkpoint: path.join(joint, "checkpoint") })
} finally {
  fs.rmSync(root, { recursive: true, force: true })
}
