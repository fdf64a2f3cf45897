/**
 * Stage `warmup-torch`: the dLDM warm-up (WarmupStage.ts, docs/paper.md "Warm-up") trained by the PyTorch twin
 * `python -m vw2_torch.dldm_warmup` (python/vw2_torch) as a process stage (docs/process-stages.md): same config (plus
 * `processes` / `gpus`), same inputs and output kind, same metric names. Its `checkpoint` is a tfjs dldm-checkpoint
 * (vw2_torch.tfjs_checkpoint maps the PyTorch weights onto the tfjs names and layouts), so tokenize, the joint dLDM
 * stage, the probes and the evaluation continue on it unchanged.
 *
 * Data parallel: `processes: k` (CPU, gloo) or `gpus: k` (one rank per GPU, NCCL) runs k ranks under torchrun; the
 * global batch `optim.batchSize` is split across them (python/vw2_torch/README.md). The interpreter is
 * `$VW2_TORCH_PYTHON`, else the repository's torch venv `.venvs/bench` (python/setup.sh).
 */
import { defineProcessStage, repositoryRoot, torchrunArgv } from "@vw2/core"
import { Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { nonNegInt, withDefault, PositiveInt } from "../internal/schema.ts"
import { WarmupConfigSchema, WarmupRobotMixConfigSchema, warmupStage } from "./WarmupStage.ts"

const torchFields = {
  /** data-parallel ranks on CPU (torchrun, gloo), one CPU each; with `gpus` > 0 there is one rank per GPU instead */
  processes: withDefault(PositiveInt, 1),
  /** GPUs to train on (one rank each, NCCL); 0 = CPU */
  gpus: nonNegInt(0)
}

export const TorchWarmupConfigSchema = Schema.Struct({ ...WarmupConfigSchema.fields, ...torchFields })
export type TorchWarmupConfig = typeof TorchWarmupConfigSchema.Type
export const TorchWarmupRobotMixConfigSchema = Schema.Struct({ ...WarmupRobotMixConfigSchema.fields, ...torchFields })

/** The Python that runs the twin: it needs torch, vw2_stage and vw2_torch (python/setup.sh installs them). */
export const torchPython = (): string => process.env["VW2_TORCH_PYTHON"] ?? path.join(repositoryRoot, ".venvs/bench/bin/python")

/** The code of the command (hashed into the stage version: editing it misses the cache). */
const sources = ["python/vw2_torch/src", "python/vw2_stage/src"]

const shared = {
  // 1: the twin of warm-up version 4 (frame-difference tokens, conv-unet decoder, frozen latentNorm), tfjs checkpoint out
  version: "1",
  headline: warmupStage.headline,
  outputs: { checkpoint: "dldm-checkpoint" },
  resources: (c: { readonly processes: number; readonly gpus: number }) => (c.gpus > 0 ? { gpus: c.gpus, cpus: c.gpus } : { cpus: c.processes }),
  sources,
  // the sources themselves first on the path, so the hashed code is the code that runs (also without an editable install)
  env: { PYTHONPATH: [...sources.map((s) => path.join(repositoryRoot, s)), process.env["PYTHONPATH"]].filter((p) => p !== undefined && p !== "").join(path.delimiter) },
  preflight: () => {
    const python = torchPython()
    return fs.existsSync(python) ? undefined : `missing ${python} (the Python with torch for the PyTorch warm-up: run python/setup.sh, or set VW2_TORCH_PYTHON)`
  },
  command: (ctx: { readonly gpus: number; readonly config: { readonly processes: number } }) =>
    torchrunArgv({ nproc: ctx.gpus > 0 ? ctx.gpus : ctx.config.processes, module: "vw2_torch.dldm_warmup", python: torchPython() })
} as const

/** The PyTorch warm-up on one video dataset (the twin of `warmupStage`). */
export const torchWarmupStage = defineProcessStage({
  name: "warmup-torch",
  config: TorchWarmupConfigSchema,
  inputs: { dataset: "video-dataset" },
  ...shared
})

/** The PyTorch warm-up on Craft clips mixed with robot demos (the twin of `warmupRobotMixStage`). */
export const torchWarmupRobotMixStage = defineProcessStage({
  name: "warmup-torch",
  config: TorchWarmupRobotMixConfigSchema,
  inputs: { dataset: "video-dataset", robot: "robot-dataset" },
  ...shared
})
