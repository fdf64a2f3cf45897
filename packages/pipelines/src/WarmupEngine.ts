/**
 * The dLDM warm-up with its engine chosen by config: `warmup.engine: "tfjs"` (WarmupStage.ts, in this process) or
 * `"torch"` (TorchWarmupStage.ts: python/vw2_torch as a process stage, `processes: k` / `gpus: k` ranks under
 * torchrun). Both write a tfjs `dldm-checkpoint`, so every later step continues on either. So one experiment file
 * trains the warm-up either way: `npx vw2 run experiments/quickstart.ts --set warmup.engine=torch`.
 *
 * Why one stage that dispatches rather than two steps or two pipelines: the choice is then a config value (a
 * `--set`, a sweep axis, a preset) in every VideoWorld 2 pipeline, and the step keeps its name, so references such
 * as `warmup.checkpoint` do not change. It keeps the tfjs stage's name and version and adds only optional keys, so
 * a config without them (every one written before the choice existed) keeps its invocation hash and its cache.
 * The torch engine's code enters the hash through the encoded config: `engine: "torch"` encodes as
 * `"torch@<warmup-torch version>"` (its declared version + the hash of python/vw2_torch/src and python/vw2_stage/src),
 * so editing the Python code misses the cache as it does for the process stage itself.
 */
import { defineStage } from "@vw2/core"
import {
  torchWarmupRobotMixStage,
  torchWarmupStage,
  WarmupConfigSchema,
  WarmupRobotMixConfigSchema,
  warmupRobotMixStage,
  warmupStage
} from "@vw2/dldm"
import { Schema, SchemaTransformation } from "effect"

export type WarmupEngine = "tfjs" | "torch"

/** "tfjs" | "torch"; encoded "tfjs" | "torch@<code version>" (a stale code version decodes to "torch" and re-encodes current) */
const EngineSchema = Schema.String.check(Schema.isPattern(/^(tfjs|torch(@.*)?)$/, { message: `expected "tfjs" or "torch"` })).pipe(
  Schema.decodeTo(
    Schema.Literals(["tfjs", "torch"]),
    SchemaTransformation.transform({
      decode: (s: string): WarmupEngine => (s === "tfjs" ? "tfjs" : "torch"),
      encode: (e: WarmupEngine): string => (e === "tfjs" ? "tfjs" : `torch@${torchWarmupStage.version}`)
    })
  )
)

const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

const engineFields = {
  /** which implementation trains the warm-up (absent: "tfjs") */
  engine: Schema.optionalKey(EngineSchema),
  /** engine "torch": data-parallel ranks on CPU (absent: 1) */
  processes: Schema.optionalKey(PositiveInt),
  /** engine "torch": GPUs, one rank each (absent: 0, CPU) */
  gpus: Schema.optionalKey(NonNegativeInt)
}

interface EngineKeys {
  readonly engine?: WarmupEngine
  readonly processes?: number
  readonly gpus?: number
}

/** ranks and GPUs mean nothing to the tfjs engine: refused when the config is validated, before anything runs */
const ranksNeedTorch = Schema.makeFilter((c: EngineKeys) =>
  c.engine !== "torch" && (c.processes !== undefined || c.gpus !== undefined)
    ? `processes / gpus apply to engine "torch" only (set engine to "torch", or remove them)`
    : undefined
)

export const WarmupEngineConfigSchema = Schema.Struct({ ...WarmupConfigSchema.fields, ...engineFields }).check(ranksNeedTorch)
export const WarmupRobotMixEngineConfigSchema = Schema.Struct({ ...WarmupRobotMixConfigSchema.fields, ...engineFields }).check(ranksNeedTorch)

const torchResources = (c: EngineKeys) => {
  const gpus = c.gpus ?? 0
  return gpus > 0 ? { gpus, cpus: gpus } : { cpus: c.processes ?? 1 }
}

/** The tfjs stage's config: everything but the engine keys (the schema refused ranks or GPUs for it). */
const forTfjs = <C extends EngineKeys>(config: C): Omit<C, keyof EngineKeys> => {
  const { engine: _engine, processes: _processes, gpus: _gpus, ...rest } = config
  return rest
}

const forTorch = <C extends EngineKeys>(config: C) => {
  const { engine: _engine, processes, gpus, ...rest } = config
  return { ...rest, processes: processes ?? 1, gpus: gpus ?? 0 }
}

/** `warmupStage` or its PyTorch twin, by `engine`. */
export const warmupEngineStage = defineStage({
  name: warmupStage.name,
  // the tfjs stage's version: a config without the engine keys hashes as before; the torch code is in `engine`'s encoding
  version: warmupStage.version,
  headline: warmupStage.headline,
  config: WarmupEngineConfigSchema,
  inputs: warmupStage.inputs,
  outputs: warmupStage.outputs,
  resources: (c) => (c.engine === "torch" ? torchResources(c) : { cpus: 1 }),
  run: (ctx, config, inputs) =>
    config.engine === "torch"
      ? torchWarmupStage.run(ctx, forTorch(config), inputs)
      : warmupStage.run(ctx, forTfjs(config), inputs)
})

/** `warmupRobotMixStage` or its PyTorch twin, by `engine`. */
export const warmupRobotMixEngineStage = defineStage({
  name: warmupRobotMixStage.name,
  version: warmupRobotMixStage.version,
  headline: warmupRobotMixStage.headline,
  config: WarmupRobotMixEngineConfigSchema,
  inputs: warmupRobotMixStage.inputs,
  outputs: warmupRobotMixStage.outputs,
  resources: (c) => (c.engine === "torch" ? torchResources(c) : { cpus: 1 }),
  run: (ctx, config, inputs) =>
    config.engine === "torch"
      ? torchWarmupRobotMixStage.run(ctx, forTorch(config), inputs)
      : warmupRobotMixStage.run(ctx, forTfjs(config), inputs)
})
