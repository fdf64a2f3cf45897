/**
 * The authors' released dLDM pipeline (ByteDance-Seed/VideoWorld, folder VideoWorld2/; docs/paper.md, "Facts from
 * the authors' released code") declared as vw2 process stages, so their PyTorch training is hashed, cached,
 * resumable, tracked and scheduled on GPUs like every other stage. Their code is not copied: each stage runs their
 * scripts from a checkout you point it at, with their weights and data (docs/process-stages.md, "The authors'
 * pipeline"):
 *
 *   authors        checks the checkout, weights, data and Python (torch importable); records them
 *   warmup         scripts/train.py, experiment videoworld2_dldm_openx_and_videocraft_wodit_warmup (torchrun)
 *   warmupLdm      scripts/extract_ldm_pth.py: the dLDM weights out of the warm-up checkpoint
 *   ctrl           scripts/add_ctrl_branch.py: Cosmos-Predict2-2B + a zero-initialised ControlNet branch
 *   dldm           scripts/train.py, experiment videoworld2_dldm_openx_and_videocraft (DiT + control + dLDM)
 *   dldmLdm        scripts/extract_ldm_pth.py on the dLDM checkpoint
 *   codes          scripts/train.py, experiment videoworld2_dldm_openx_and_videocraft_infer: latent_code_infos.pt
 *
 *   npx vw2 plan experiments/paper/authors-dldm.ts
 *   npx vw2 run experiments/paper/authors-dldm.ts --gpus 0,1,2,3,4,5,6,7 \
 *     --set authors.checkout=/data/VideoWorld --set authors.python=/opt/conda/envs/videoworld2/bin/python
 *
 * Their scripts read and write paths relative to their folder (`checkpoints/…`, `datasets/…`). Each stage runs in
 * a working directory of links instead (their code folders, `checkpoints` → `authors.weights`, `datasets` →
 * `authors.datasets`), trains into the invocation's resume directory (IMAGINAIRE_OUTPUT_ROOT: their checkpointer
 * resumes from it after a crash or kill -9) and moves the result into the stage's outputs; nothing is written into
 * the checkout or the weights folder. Their config keys are typed overrides below (`warmup.maxIter` →
 * `trainer.max_iter=…`); `hydra` passes any other `key=value` through.
 *
 * What is not here fails before any compute: `vw2 run` stops at `authors` with every missing path named (no
 * GPU stage starts). None of it has been run end to end here: there is no GPU, checkout or Cosmos weights on
 * this machine (docs/gpu.md).
 */
import { ConfigField, defineExperiment, definePipeline, defineProcessStage, repositoryRoot } from "@vw2/core"
import type { InputArtifact } from "@vw2/core"
import { Schema } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

/** The release commit this file was written against (ByteDance-Seed/VideoWorld, "Update README.md", Feb 2026). */
const releaseCommit = "37d32e920de57d6d4e543f62b744599d5610777b"
const configModule = "videoworld2/configs/base/config.py"
const cosmos = "Cosmos-Predict2-2B-Video2World"
const experiments = {
  warmup: "videoworld2_dldm_openx_and_videocraft_wodit_warmup",
  dldm: "videoworld2_dldm_openx_and_videocraft",
  codes: "videoworld2_dldm_openx_and_videocraft_infer"
} as const

// ---- where things are ------------------------------------------------------------------------------------------

const AuthorsConfig = Schema.Struct({
  /** a clone of github.com/ByteDance-Seed/VideoWorld (or its VideoWorld2/ folder); relative paths are from the vw2 checkout */
  checkout: ConfigField.withDefault(Schema.String, "../VideoWorld"),
  /** their `checkpoints/` folder: Cosmos-Predict2-2B-Video2World/, VideoWorld2_dLDM_2B/ ("" = <VideoWorld2>/checkpoints) */
  weights: ConfigField.withDefault(Schema.String, ""),
  /** their `datasets/` folder: Video-CraftBench/Paper_and_Block_clips, openx_untar/, the two openx_videocraft_*.json ("" = <VideoWorld2>/datasets) */
  datasets: ConfigField.withDefault(Schema.String, ""),
  /** the Python of their environment (torch 2.6 + their install.sh); torchrun runs as `python -m torch.distributed.run` */
  python: ConfigField.withDefault(Schema.String, "python3"),
  /** the checkout must be at this commit ("" accepts any): their code is part of every hash only through this field */
  revision: ConfigField.withDefault(Schema.String, releaseCommit)
})
type AuthorsConfig = typeof AuthorsConfig.Type

interface Located {
  readonly checkout: string
  /** their VideoWorld2/ folder */
  readonly code: string
  readonly weights: string
  readonly datasets: string
  readonly python: string
}

const locate = (c: AuthorsConfig): Located => {
  const checkout = path.resolve(repositoryRoot, c.checkout)
  const nested = path.join(checkout, "VideoWorld2")
  const code = fs.existsSync(path.join(nested, "scripts")) || !fs.existsSync(path.join(checkout, "scripts")) ? nested : checkout
  const python = c.python.includes("/") ? path.resolve(repositoryRoot, c.python) : c.python
  return {
    checkout,
    code,
    weights: c.weights === "" ? path.join(code, "checkpoints") : path.resolve(repositoryRoot, c.weights),
    datasets: c.datasets === "" ? path.join(code, "datasets") : path.resolve(repositoryRoot, c.datasets),
    python
  }
}

/** What every stage needs from outside the store, with where to get it. */
const required = (at: Located) => [
  { path: path.join(at.code, "scripts", "train.py"), what: "their code: git clone https://github.com/ByteDance-Seed/VideoWorld (set authors.checkout)" },
  { path: path.join(at.code, "scripts", "extract_ldm_pth.py"), what: "their code" },
  { path: path.join(at.code, "scripts", "add_ctrl_branch.py"), what: "their code" },
  { path: path.join(at.weights, cosmos, "model-480p-16fps.pt"), what: `the ${cosmos} weights (huggingface.co/nvidia/${cosmos}; set authors.weights)` },
  { path: path.join(at.weights, cosmos, "tokenizer", "tokenizer.pth"), what: `the ${cosmos} video tokenizer` },
  { path: path.join(at.weights, "VideoWorld2_dLDM_2B", "tokenizer", "ldm_tokenizer_training_init_weights.pt"), what: "the dLDM warm-up initialisation (huggingface.co/maverickrzw/VideoWorld2_dLDM_2B)" },
  { path: path.join(at.datasets, "Video-CraftBench", "Paper_and_Block_clips"), what: "Video-CraftBench clips (huggingface.co/maverickrzw/Video-CraftBench_v0.1; set authors.datasets)" },
  { path: path.join(at.datasets, "openx_untar"), what: "the extracted OpenX pickles" },
  { path: path.join(at.datasets, "openx_videocraft_cache.json"), what: "their OpenX + CraftBench sample cache" },
  { path: path.join(at.datasets, "openx_videocraft_meta.json"), what: "their OpenX + CraftBench mixing weights" }
]

/** Every missing path, named, or undefined when all is there. Reads the disk only (and `git rev-parse`). */
export const checkAuthorsSetup = (c: AuthorsConfig): string | undefined => {
  const at = locate(c)
  if (!fs.existsSync(at.checkout)) {
    return `missing ${at.checkout} (authors.checkout: git clone https://github.com/ByteDance-Seed/VideoWorld; their weights and data go in its VideoWorld2/checkpoints and VideoWorld2/datasets, or set authors.weights and authors.datasets)`
  }
  // a folder that is not there at all is named once, not once per file expected in it
  const folders = [at.code, at.weights, at.datasets]
  const problems = [...new Set(required(at).filter((r) => !fs.existsSync(r.path)).map((r) => {
    const folder = folders.find((f) => r.path.startsWith(f + path.sep) && !fs.existsSync(f))
    return folder === undefined ? `missing ${r.path} (${r.what})` : `missing ${folder} (${required(at).find((q) => q.path.startsWith(folder + path.sep))!.what})`
  }))]
  if (at.python.includes("/") && !fs.existsSync(at.python)) problems.push(`missing ${at.python} (authors.python: the Python of their environment)`)
  if (c.revision !== "" && fs.existsSync(path.join(at.code, "scripts", "train.py"))) {
    let head = ""
    try {
      head = execFileSync("git", ["-C", at.code, "rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
    } catch {
      head = "(not a git checkout)"
    }
    if (!head.startsWith(c.revision)) problems.push(`${at.code} is at ${head}, not authors.revision=${c.revision} (--set authors.revision=<commit> to accept it)`)
  }
  return problems.length === 0 ? undefined : problems.join("\n")
}

const environmentFile = "environment.json"
/** probes their Python: torch importable, how many GPUs it sees; writes what later stages need */
const probe = String.raw`
import json, sys
import torch
info = json.loads(sys.argv[2])
info.update(torch=torch.__version__, cuda=torch.version.cuda, gpus=torch.cuda.device_count())
open(sys.argv[1], "w").write(json.dumps(info, indent=2))
print("torch", torch.__version__, "cuda", torch.version.cuda, "visible GPUs", torch.cuda.device_count())
`

export const authorsStage = defineProcessStage({
  name: "videoworld2-authors",
  version: "1",
  config: AuthorsConfig,
  inputs: {},
  outputs: { env: "videoworld2-authors-env" },
  seeded: false,
  preflight: checkAuthorsSetup,
  command: (ctx) => {
    const at = locate(ctx.config)
    return [at.python, "-c", probe, path.join(ctx.outputs.env, environmentFile), JSON.stringify(at)]
  }
})

const readEnvironment = (input: InputArtifact): Located => JSON.parse(fs.readFileSync(path.join(input.dir, environmentFile), "utf8")) as Located

// ---- a working directory in which their relative paths resolve -----------------------------------------------------

/** `dir` with links to their code folders and `checkpoints`/`datasets` → the configured folders. */
const linkWorkspace = (dir: string, at: Located) => {
  fs.mkdirSync(dir, { recursive: true })
  for (const entry of fs.readdirSync(at.code)) {
    if (entry === "checkpoints" || entry === "datasets" || entry.startsWith(".")) continue
    fs.symlinkSync(path.join(at.code, entry), path.join(dir, entry))
  }
  fs.symlinkSync(at.weights, path.join(dir, "checkpoints"))
  fs.symlinkSync(at.datasets, path.join(dir, "datasets"))
  return dir
}

/** rename (same filesystem: store, resume and scratch dirs all live under VW2_HOME), copy otherwise */
const moveFile = (from: string, to: string) => {
  fs.mkdirSync(path.dirname(to), { recursive: true })
  try {
    fs.renameSync(from, to)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error
    fs.copyFileSync(from, to)
    fs.rmSync(from)
  }
}

const checkpointFile = "checkpoint.json"
interface TrainedCheckpoint {
  /** their experiment name (the job name; extract_ldm_pth.py takes it) */
  readonly experiment: string
  /** "iter_000100000" */
  readonly iteration: string
  /** file name of the model state dict in this artifact */
  readonly model: string
}

/** Their trainer's last checkpoint (latest_checkpoint.txt) of `experiment` under `root` moved into `out`. */
const collectCheckpoint = (root: string, experiment: string, out: string, log: (m: string) => void, maxIter: number) => {
  const dir = path.join(root, "posttraining", "video2world", experiment, "checkpoints")
  const latest = path.join(dir, "latest_checkpoint.txt")
  if (!fs.existsSync(latest)) throw new Error(`their trainer left no ${latest}: no checkpoint was saved`)
  const file = fs.readFileSync(latest, "utf8").trim()
  const iteration = file.replace(/\.pt$/, "")
  if (iteration !== `iter_${String(maxIter).padStart(9, "0")}`) log(`warning: the last checkpoint is ${iteration}, not the final iteration ${maxIter}`)
  moveFile(path.join(dir, "model", file), path.join(out, file))
  const record: TrainedCheckpoint = { experiment, iteration, model: file }
  fs.writeFileSync(path.join(out, checkpointFile), JSON.stringify(record, null, 2))
}

const readCheckpoint = (input: InputArtifact): TrainedCheckpoint => JSON.parse(fs.readFileSync(path.join(input.dir, checkpointFile), "utf8")) as TrainedCheckpoint

// ---- their training script as a stage ------------------------------------------------------------------------------

/** Their hyperparameters (released values as defaults), each mapped to its key in their Hydra config. */
const TrainConfig = {
  /** processes = GPUs (their scripts: torchrun --nproc_per_node=8) */
  gpus: ConfigField.positiveInt(8),
  /** trainer.max_iter */
  maxIter: ConfigField.positiveInt(100_000),
  /** checkpoint.save_iter: also how much a crash can lose */
  saveIter: ConfigField.positiveInt(5_000),
  /** optimizer.lr (fused AdamW): 2^-14.5 */
  lr: ConfigField.positiveNumber(2 ** -14.5),
  /** scheduler.warm_up_steps (linear warm-up) */
  warmUpSteps: ConfigField.nonNegativeInt(2_000),
  /** dataloader_train.batch_size, per GPU */
  batchSize: ConfigField.positiveInt(1),
  /** dataloader_train.num_workers, per GPU */
  numWorkers: ConfigField.nonNegativeInt(8),
  /** any other key of their config, `key: value` → `key=value` on their command line */
  hydra: ConfigField.withDefault(Schema.Record(Schema.String, Schema.String), {})
}

const hydraOverrides = (c: { readonly maxIter: number; readonly saveIter: number; readonly lr: number; readonly warmUpSteps: number; readonly batchSize: number; readonly numWorkers: number; readonly hydra: Readonly<Record<string, string>> }) => [
  `trainer.max_iter=${c.maxIter}`,
  `checkpoint.save_iter=${c.saveIter}`,
  `optimizer.lr=${c.lr}`,
  `scheduler.warm_up_steps=[${c.warmUpSteps}]`,
  `dataloader_train.batch_size=${c.batchSize}`,
  `dataloader_train.num_workers=${c.numWorkers}`,
  ...Object.entries(c.hydra).map(([key, value]) => `${key}=${value}`)
]

/** argv of their trainer: `torchrun -m scripts.train --config=… -- experiment=… overrides` (always torchrun, as theirs) */
export const trainArgv = (python: string, gpus: number, experiment: string, overrides: ReadonlyArray<string>) => [
  python, "-m", "torch.distributed.run", "--standalone", `--nproc-per-node=${Math.max(1, gpus)}`,
  "-m", "scripts.train", `--config=${configModule}`, "--", `experiment=${experiment}`, ...overrides
]

const trainingEnv = (resumeDir: string) => ({ IMAGINAIRE_OUTPUT_ROOT: path.join(resumeDir, "imaginaire") })
const workspaceOf = (scratchDir: string) => path.join(scratchDir, "workspace")

export const warmupStage = defineProcessStage({
  name: "videoworld2-authors-warmup",
  version: "1",
  config: Schema.Struct(TrainConfig),
  inputs: { authors: "videoworld2-authors-env" },
  outputs: { checkpoint: "videoworld2-authors-train-checkpoint" },
  resources: (c) => ({ gpus: c.gpus, cpus: c.gpus }),
  prepare: (ctx) => void linkWorkspace(workspaceOf(ctx.scratchDir), readEnvironment(ctx.inputs.authors)),
  cwd: (ctx) => workspaceOf(ctx.scratchDir),
  env: (ctx) => trainingEnv(ctx.resumeDir),
  command: (ctx) => trainArgv(readEnvironment(ctx.inputs.authors).python, ctx.gpus, experiments.warmup, hydraOverrides(ctx.config)),
  collect: (ctx) => collectCheckpoint(path.join(ctx.resumeDir, "imaginaire"), experiments.warmup, ctx.outputs.checkpoint, ctx.log, ctx.config.maxIter)
})

// ---- extract_ldm_pth.py --------------------------------------------------------------------------------------------

/**
 * Runs their extract script as it is. It ends with a leftover `import pdb; pdb.set_trace()`, which on a closed
 * stdin raises BdbQuit (exit 1) after the file is written; the runner turns that breakpoint into a no-op.
 */
const runScriptWithoutBreakpoints = "import pdb, runpy, sys\npdb.set_trace = lambda *a, **k: None\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')"

const ldmFile = "ldm.pt"

export const extractLdmStage = defineProcessStage({
  name: "videoworld2-authors-extract-ldm",
  version: "1",
  config: Schema.Struct({}),
  inputs: { authors: "videoworld2-authors-env", checkpoint: "videoworld2-authors-train-checkpoint" },
  outputs: { ldm: "videoworld2-authors-ldm" },
  seeded: false,
  resources: () => ({ memoryMb: 16_000 }),
  prepare: (ctx) => {
    // their script reads checkpoints/posttraining/video2world/<experiment>/checkpoints/model/<iteration>.pt
    const trained = readCheckpoint(ctx.inputs.checkpoint)
    const modelDir = path.join(ctx.scratchDir, "checkpoints", "posttraining", "video2world", trained.experiment, "checkpoints", "model")
    fs.mkdirSync(modelDir, { recursive: true })
    fs.symlinkSync(path.join(ctx.inputs.checkpoint.dir, trained.model), path.join(modelDir, trained.model))
  },
  command: (ctx) => {
    const trained = readCheckpoint(ctx.inputs.checkpoint)
    const at = readEnvironment(ctx.inputs.authors)
    return [at.python, "-c", runScriptWithoutBreakpoints, path.join(at.code, "scripts", "extract_ldm_pth.py"), trained.experiment, trained.iteration]
  },
  collect: (ctx) => {
    const trained = readCheckpoint(ctx.inputs.checkpoint)
    const written = path.join(ctx.scratchDir, "checkpoints", "posttraining", "video2world", trained.experiment, "checkpoints", "model", `${trained.iteration}_ldm.pt`)
    moveFile(written, path.join(ctx.outputs.ldm, ldmFile))
  }
})

// ---- add_ctrl_branch.py --------------------------------------------------------------------------------------------

const ctrlFile = "model-480p-16fps-ctrl.pt"

export const addControlBranchStage = defineProcessStage({
  name: "videoworld2-authors-add-ctrl-branch",
  version: "1",
  config: Schema.Struct({}),
  inputs: { authors: "videoworld2-authors-env" },
  outputs: { dit: "videoworld2-authors-ctrl-dit" },
  resources: () => ({ memoryMb: 16_000 }),
  prepare: (ctx) => {
    // their script reads and writes checkpoints/Cosmos-Predict2-2B-Video2World/ relative to its cwd
    const dir = path.join(ctx.scratchDir, "checkpoints", cosmos)
    fs.mkdirSync(dir, { recursive: true })
    fs.symlinkSync(path.join(readEnvironment(ctx.inputs.authors).weights, cosmos, "model-480p-16fps.pt"), path.join(dir, "model-480p-16fps.pt"))
  },
  command: (ctx) => {
    const at = readEnvironment(ctx.inputs.authors)
    return [at.python, path.join(at.code, "scripts", "add_ctrl_branch.py")]
  },
  collect: (ctx) => moveFile(path.join(ctx.scratchDir, "checkpoints", cosmos, ctrlFile), path.join(ctx.outputs.dit, ctrlFile))
})

// ---- the dLDM main stage and the code inference ---------------------------------------------------------------------

export const dldmStage = defineProcessStage({
  name: "videoworld2-authors-dldm",
  version: "1",
  config: Schema.Struct({
    ...TrainConfig,
    maxIter: ConfigField.positiveInt(30_000),
    /** model.config.pipe_config.net_ctrl.control_weight: the control branch's residual scale */
    controlWeight: ConfigField.positiveNumber(0.5)
  }),
  inputs: { authors: "videoworld2-authors-env", ldm: "videoworld2-authors-ldm", dit: "videoworld2-authors-ctrl-dit" },
  outputs: { checkpoint: "videoworld2-authors-train-checkpoint" },
  resources: (c) => ({ gpus: c.gpus, cpus: c.gpus }),
  prepare: (ctx) => void linkWorkspace(workspaceOf(ctx.scratchDir), readEnvironment(ctx.inputs.authors)),
  cwd: (ctx) => workspaceOf(ctx.scratchDir),
  env: (ctx) => trainingEnv(ctx.resumeDir),
  command: (ctx) =>
    trainArgv(readEnvironment(ctx.inputs.authors).python, ctx.gpus, experiments.dldm, [
      ...hydraOverrides(ctx.config),
      `model.config.pipe_config.net_ctrl.control_weight=${ctx.config.controlWeight}`,
      `model.config.model_manager_config.dit_path=${path.join(ctx.inputs.dit.dir, ctrlFile)}`,
      `model.config.ldm_config.ldm_path=${path.join(ctx.inputs.ldm.dir, ldmFile)}`
    ]),
  collect: (ctx) => collectCheckpoint(path.join(ctx.resumeDir, "imaginaire"), experiments.dldm, ctx.outputs.checkpoint, ctx.log, ctx.config.maxIter)
})

const codesFile = "latent_code_infos.pt"

export const codesStage = defineProcessStage({
  name: "videoworld2-authors-codes",
  version: "1",
  config: Schema.Struct({
    gpus: ConfigField.positiveInt(8),
    hydra: ConfigField.withDefault(Schema.Record(Schema.String, Schema.String), {})
  }),
  inputs: { authors: "videoworld2-authors-env", checkpoint: "videoworld2-authors-train-checkpoint", ldm: "videoworld2-authors-ldm" },
  outputs: { codes: "videoworld2-authors-latent-codes" },
  resources: (c) => ({ gpus: c.gpus, cpus: c.gpus }),
  prepare: (ctx) => void linkWorkspace(workspaceOf(ctx.scratchDir), readEnvironment(ctx.inputs.authors)),
  cwd: (ctx) => workspaceOf(ctx.scratchDir),
  env: (ctx) => trainingEnv(ctx.resumeDir),
  command: (ctx) => {
    const trained = readCheckpoint(ctx.inputs.checkpoint)
    return trainArgv(readEnvironment(ctx.inputs.authors).python, ctx.gpus, experiments.codes, [
      // their DiT loader takes a training checkpoint as it is (it skips ldm_net.* and strips net. / net_ctrl.)
      `model.config.model_manager_config.dit_path=${path.join(ctx.inputs.checkpoint.dir, trained.model)}`,
      `model.config.ldm_config.ldm_path=${path.join(ctx.inputs.ldm.dir, ldmFile)}`,
      ...Object.entries(ctx.config.hydra).map(([key, value]) => `${key}=${value}`)
    ])
  },
  // their callback writes latent_code_infos.pt into the working directory
  collect: (ctx) => moveFile(path.join(workspaceOf(ctx.scratchDir), codesFile), path.join(ctx.outputs.codes, codesFile))
})

export const authorsDldmPipeline = definePipeline()
  .step("authors", authorsStage, {})
  .step("warmup", warmupStage, { authors: "authors.env" })
  .step("warmupLdm", extractLdmStage, { authors: "authors.env", checkpoint: "warmup.checkpoint" })
  .step("ctrl", addControlBranchStage, { authors: "authors.env" })
  .step("dldm", dldmStage, { authors: "authors.env", ldm: "warmupLdm.ldm", dit: "ctrl.dit" })
  .step("dldmLdm", extractLdmStage, { authors: "authors.env", checkpoint: "dldm.checkpoint" })
  .step("codes", codesStage, { authors: "authors.env", checkpoint: "dldm.checkpoint", ldm: "dldmLdm.ldm" })

export default defineExperiment({
  name: "paper-authors-dldm",
  pipeline: authorsDldmPipeline,
  config: { authors: {}, warmup: {}, warmupLdm: {}, ctrl: {}, dldm: {}, dldmLdm: {}, codes: {} }
})
