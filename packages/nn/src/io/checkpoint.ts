/**
 * Model checkpoint artifact (see the shared layout): a directory with `model.safetensors` (float32,
 * hierarchical names), `config.json` (the model's full typed config), and optionally
 * `optimizer.safetensors` + `train_state.json`.
 */
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { Module } from "../Module.ts"
import type { AdamW } from "../optim/AdamW.ts"
import { readSafetensors, writeSafetensors, type NamedTensor } from "./safetensors.ts"

export interface TrainState {
  readonly step: number
  readonly [key: string]: unknown
}

export interface SaveCheckpointOptions<C> {
  readonly model: Module
  readonly config: C
  readonly optimizer?: AdamW
  readonly trainState?: TrainState
  /** Extra string metadata stored in the safetensors header (e.g. {"format": "pt"}). */
  readonly metadata?: Readonly<Record<string, string>>
}

async function writeJson(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  await writeFile(tmp, JSON.stringify(value, null, 2) + "\n")
  await rename(tmp, path)
}

export async function saveCheckpoint<C>(dir: string, o: SaveCheckpointOptions<C>): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeSafetensors(join(dir, "model.safetensors"), o.model.stateDict(), { format: "pt", ...o.metadata })
  await writeJson(join(dir, "config.json"), o.config)
  if (o.optimizer !== undefined) {
    await writeSafetensors(join(dir, "optimizer.safetensors"), o.optimizer.stateDict(), { format: "pt" })
  }
  if (o.trainState !== undefined || o.optimizer !== undefined) {
    await writeJson(join(dir, "train_state.json"), { step: o.optimizer?.step ?? 0, ...o.trainState })
  }
}

export interface LoadedCheckpoint<C> {
  readonly config: C
  readonly weights: Map<string, NamedTensor>
  readonly optimizer?: Map<string, NamedTensor>
  readonly trainState?: TrainState
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false
  )
}

/** Read a checkpoint directory; the caller builds the model from `config` and loads `weights` into it. */
export async function loadCheckpoint<C = unknown>(dir: string): Promise<LoadedCheckpoint<C>> {
  const configPath = join(dir, "config.json")
  const modelPath = join(dir, "model.safetensors")
  if (!(await exists(modelPath))) throw new Error(`loadCheckpoint: ${modelPath} not found (is ${dir} a model checkpoint directory?)`)
  if (!(await exists(configPath))) throw new Error(`loadCheckpoint: ${configPath} not found`)
  const config = JSON.parse(await readFile(configPath, "utf8")) as C
  const { tensors: weights } = await readSafetensors(modelPath)
  const optPath = join(dir, "optimizer.safetensors")
  const statePath = join(dir, "train_state.json")
  const optimizer = (await exists(optPath)) ? (await readSafetensors(optPath)).tensors : undefined
  const trainState = (await exists(statePath)) ? (JSON.parse(await readFile(statePath, "utf8")) as TrainState) : undefined
  return { config, weights, ...(optimizer !== undefined ? { optimizer } : {}), ...(trainState !== undefined ? { trainState } : {}) }
}

/** Convert loaded tensors to the float32 state dict `Module.loadStateDict` takes (rejects integer tensors). */
export function asFloatState(weights: ReadonlyMap<string, NamedTensor>, source = "checkpoint"): Map<string, { shape: ReadonlyArray<number>; data: Float32Array }> {
  const out = new Map<string, { shape: ReadonlyArray<number>; data: Float32Array }>()
  for (const [k, t] of weights) {
    if (!(t.data instanceof Float32Array)) throw new Error(`${source}: tensor "${k}" is not floating point`)
    out.set(k, { shape: t.shape, data: t.data })
  }
  return out
}
