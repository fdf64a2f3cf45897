/**
 * Stage `tokenize`: a video dataset → FSQ code sequences for the AR stage ("code-dataset", the layout
 * @vw2/ar's CodeDataset reads). Each episode is cut into clips of T frames starting every `clipStride`
 * frames (default T − 1: consecutive clips share their boundary frame, as long rollouts chain them);
 * per clip we store its K−1 × N indices and its start frame. With `tail: "hold"` the last clip may run past
 * the episode's end and holds its last frame there, so ⌈(L−1)/(T−1)⌉ clips cover every frame — the count
 * craft-eval's rollout generates for an L-frame reference (issue 13: tokenize kept 11, eval made 12).
 *   codes.json, episodes/<id>/codes.npy int32 [clips, K−1, N], episodes/<id>/start_frames.npy uint8 [clips, H, W, 3]
 */
import * as tf from "@tensorflow/tfjs"
import { defineStage, type StageContext } from "@vw2/core"
import { Dataset, npyArray, writeNpy } from "@vw2/data"
import { Schema } from "effect"
import { mkdirSync, renameSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { loadDldm } from "../checkpoint.ts"
import { int, nonNegInt, withDefault } from "../internal/schema.ts"
import { runStageBody, useBackend } from "./common.ts"

export const TokenizeConfigSchema = Schema.Struct({
  /** which splits to tokenize (each episode keeps its split in codes.json) */
  splits: withDefault(Schema.Array(Schema.String), ["train", "test"]),
  /** frames between clip starts; 0 = T − 1 (clips share their boundary frame) */
  clipStride: nonNegInt(0),
  /** "hold": a last clip covers the episode's tail, frames past the end hold the last frame; "drop": whole clips only */
  tail: withDefault(Schema.Literals(["hold", "drop"]), "hold"),
  /** clips encoded per forward pass */
  batchSize: int(16)
})
export type TokenizeConfig = typeof TokenizeConfigSchema.Type

export async function runTokenize(ctx: StageContext, config: TokenizeConfig, datasetDir: string, checkpointDir: string): Promise<void> {
  await useBackend(ctx)
  const { model } = await loadDldm(checkpointDir)
  try {
    const c = model.config
    const dataset = Dataset.open(datasetDir)
    if (dataset.height !== c.height || dataset.width !== c.width) {
      throw new Error(`${datasetDir}: frames are ${dataset.height}×${dataset.width}, the dLDM in ${checkpointDir} expects ${c.height}×${c.width}`)
    }
    const T = c.frames
    const stride = config.clipStride === 0 ? T - 1 : config.clipStride
    const frameSize = c.height * c.width * 3
    const out = ctx.outputDir("codes")
    const episodes = dataset.episodes({ split: config.splits })
    const listed: Array<{ id: string; split: string; task: string; instruction: string; clips: number }> = []
    let done = 0
    for (const ep of episodes) {
      if (ctx.signal.aborted) throw new Error("tokenize interrupted")
      const starts: number[] = []
      for (let s = 0; config.tail === "hold" ? s === 0 || s + 1 < ep.length : s + T <= ep.length; s += stride) starts.push(s)
      const codes = new Int32Array(starts.length * model.geo.codesPerClip)
      const startFrames = new Uint8Array(starts.length * frameSize)
      for (let i = 0; i < starts.length; i += config.batchSize) {
        const group = starts.slice(i, i + config.batchSize)
        const rows = group.flatMap((s) => Array.from({ length: T }, (_, t) => Math.min(ep.length - 1, s + t)))
        const bytes = dataset.readFrames(ep.id, rows)
        group.forEach((_, g) => startFrames.set(bytes.subarray(g * T * frameSize, g * T * frameSize + frameSize), (i + g) * frameSize))
        const indices = tf.tidy(() => {
          const video = tf.div(tf.tensor5d(Float32Array.from(bytes), [group.length, T, c.height, c.width, 3]), 255)
          return model.encode(video)
        })
        codes.set(indices.dataSync() as Int32Array, i * model.geo.codesPerClip)
        indices.dispose()
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
      const dir = join(out, "episodes", ep.id)
      mkdirSync(dir, { recursive: true })
      writeNpy(join(dir, "codes.npy"), npyArray("int32", [starts.length, model.geo.transitions, c.queries], codes))
      writeNpy(join(dir, "start_frames.npy"), npyArray("uint8", [starts.length, c.height, c.width, 3], startFrames))
      listed.push({ id: ep.id, split: ep.split, task: ep.task, instruction: dataset.meta(ep.id).instruction, clips: starts.length })
      ctx.progress(++done, episodes.length, ep.id)
    }
    const manifest = {
      format: "vw2-codes/1",
      codeVocab: model.geo.vocabulary,
      queries: c.queries,
      transitionsPerClip: model.geo.transitions,
      clipLength: T,
      clipStride: stride,
      tail: config.tail,
      height: c.height,
      width: c.width,
      fsqLevels: c.fsqLevels,
      source: { dataset: dataset.manifest.name },
      episodes: listed
    }
    const tmp = join(out, "codes.json.tmp")
    writeFileSync(tmp, JSON.stringify(manifest, null, 2) + "\n")
    renameSync(tmp, join(out, "codes.json"))
    const total = listed.reduce((a, e) => a + e.clips, 0)
    ctx.metrics({ "tokenize/episodes": listed.length, "tokenize/clips": total }, 0)
    ctx.log(`tokenize: ${listed.length} episodes, ${total} clips × ${model.geo.codesPerClip} codes (vocab ${model.geo.vocabulary})`)
  } finally {
    model.dispose()
  }
}

export const tokenizeStage = defineStage({
  name: "tokenize",
  headline: ["tokenize/clips"],
  // 2: the episode's tail is a held clip (tail "hold")
  version: "2",
  config: TokenizeConfigSchema,
  inputs: { dataset: "video-dataset", checkpoint: "dldm-checkpoint" },
  outputs: { codes: "code-dataset" },
  seeded: false,
  run: (ctx, config, inputs) => runStageBody("tokenize", ctx, (c) => runTokenize(c, config, inputs.dataset.dir, inputs.checkpoint.dir))
})
