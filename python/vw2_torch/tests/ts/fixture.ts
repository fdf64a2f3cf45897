/**
 * The TypeScript side of the twin tests: whatever the PyTorch stage must agree with comes from the tfjs packages
 * themselves, run here, so a change there fails the Python tests instead of drifting.
 *
 *   node fixture.ts dataset <dir>                         a small dataset written by @vw2/data's DatasetWriter
 *   node fixture.ts batches <dir> <configJson> <seed> <n>  clip refs + pixel sums of the first n warm-up batches (openClips + endlessBatches)
 *   node fixture.ts config <overridesJson>                 WarmupConfigSchema decoded (defaults filled in) from the overrides
 *   node fixture.ts rng <seed> <label> <n>                 SeededRandom.derive(seed, label).permutation(n)
 *   node fixture.ts dataset <dir> <prefix>                 the same with episode ids `<prefix>-…` (a second source for mixtures)
 *   node fixture.ts mixture <craftDir> <robotDir> <configJson> <seed> <n>
 *                                                          sources + clip refs of the first n robot-mixed warm-up batches
 *   node fixture.ts loss <checkpointDir> <video.f32> <B>   the reconstruction loss and the pre-quantisation latents [B, J, N, L]
 *                                                          of @vw2/dldm's loadDldm(checkpointDir) on a fixed batch
 *                                                          (little-endian float32 [B, T, H, W, 3]), inference mode
 */
import * as tf from "@tensorflow/tfjs"
import { type Batch, DatasetWriter, SeededRandom } from "@vw2/data"
import { readFileSync } from "node:fs"
import { endlessBatches, loadDldm, mixedBatches, openClips, WarmupConfigSchema, WarmupRobotMixConfigSchema, type WarmupConfig } from "@vw2/dldm"
import { Schema } from "effect"

const [command, ...args] = process.argv.slice(2)

/** Moving squares on a coloured background: every episode differs (colour, start, velocity), deterministic. */
function writeDataset(dir: string, prefix = "sq"): void {
  const [h, w] = [32, 32]
  const writer = new DatasetWriter(dir, { name: "twin-squares", source: "test", height: h, width: w, fps: 8 })
  const rng = new SeededRandom(prefix === "sq" ? 11 : 12)
  const episodes: ReadonlyArray<{ split: string; id: string; length: number }> = [
    ...Array.from({ length: 4 }, (_, i) => ({ split: "train", id: `${prefix}-train-${i}`, length: 14 + 3 * i })),
    { split: "test", id: `${prefix}-test-0`, length: 12 }
  ]
  for (const { split, id, length } of episodes) {
    const episode = writer.beginEpisode({ id, split, task: "move", instruction: "move the square", domain: "squares" })
    const bg = [rng.int(256), rng.int(256), rng.int(256)]
    let [y, x] = [rng.int(h - 8), rng.int(w - 8)]
    const [dy, dx] = [rng.int(3) - 1, rng.int(3) - 1 || 1]
    for (let t = 0; t < length; t++) {
      const rgb = new Uint8Array(h * w * 3)
      for (let p = 0; p < h * w; p++) rgb.set(bg, p * 3)
      for (let yy = y; yy < y + 8; yy++) for (let xx = x; xx < x + 8; xx++) rgb.set([250, 250 - 20 * t, 30], (yy * w + xx) * 3)
      episode.appendFrame(rgb, { step: t, phase: "move", state: {} })
      y = Math.min(h - 8, Math.max(0, y + dy))
      x = Math.min(w - 8, Math.max(0, x + dx))
    }
    episode.close()
  }
  writer.finish()
}

function batches(dir: string, config: WarmupConfig, seed: number, n: number): unknown[] {
  const clips = openClips(dir, config.model, { split: config.split, clipStride: config.clipStride || undefined })
  const stream = endlessBatches(clips, config.optim.batchSize, seed)
  return Array.from({ length: n }, () => {
    const b: Batch = stream.next().value
    return { refs: b.refs.map((r) => [r.episodeId, r.start]), sum: b.frames.reduce((a, v) => a + v, 0) }
  })
}

function mixture(craftDir: string, robotDir: string, json: string, seed: number, n: number): unknown[] {
  const config = Schema.decodeUnknownSync(WarmupRobotMixConfigSchema)(JSON.parse(json))
  const options = { split: config.split, clipStride: config.clipStride || undefined }
  const parts = [
    { clips: openClips(craftDir, config.model, options, "craft"), weight: config.craftWeight },
    { clips: openClips(robotDir, config.model, options, "robot"), weight: config.robotWeight }
  ]
  const stream = mixedBatches(parts, config.optim.batchSize, seed)
  return Array.from({ length: n }, () => {
    const b: Batch = stream.next().value!
    return b.refs.map((r, i) => [b.sources[i], r.episodeId, r.start])
  })
}

async function loss(dir: string, videoFile: string, batch: number): Promise<{ loss: number; latents: number[] }> {
  const { model } = await loadDldm(dir)
  const c = model.config
  const bytes = readFileSync(videoFile)
  const video = tf.tensor5d(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), [batch, c.frames, c.height, c.width, 3])
  const value = tf.tidy(() => {
    const f = model.forward(video, false)
    return { loss: model.reconstructionLoss(video, f.recon).dataSync()[0]!, latents: Array.from(f.latents.dataSync()) }
  })
  video.dispose()
  model.dispose()
  return value
}

const decode = (json: string): WarmupConfig => Schema.decodeUnknownSync(WarmupConfigSchema)(JSON.parse(json)) as WarmupConfig

switch (command) {
  case "dataset":
    writeDataset(args[0]!, args[1])
    break
  case "batches":
    console.log(JSON.stringify(batches(args[0]!, decode(args[1]!), Number(args[2]), Number(args[3]))))
    break
  case "config":
    console.log(JSON.stringify(decode(args[0] ?? "{}")))
    break
  case "rng":
    console.log(JSON.stringify(Array.from(SeededRandom.derive(Number(args[0]), args[1]!).permutation(Number(args[2])))))
    break
  case "mixture":
    console.log(JSON.stringify(mixture(args[0]!, args[1]!, args[2]!, Number(args[3]), Number(args[4]))))
    break
  case "loss":
    void loss(args[0]!, args[1]!, Number(args[2])).then((value) => console.log(JSON.stringify(value)))
    break
  default:
    throw new Error(`fixture.ts: unknown command ${command}`)
}
