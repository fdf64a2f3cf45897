/**
 * Held-out and train code use of a joint (dldm) run's checkpoints: x0 error at σ with codes + hint, codes
 * dropped, codes + hint dropped, repeat-the-first-frame (mse and l1 in [0, 1] units).
 * Then samples (Karras, 6 steps, cfg 2 as craft-eval's mini preset) from the first frame, codes and low-fi hint
 * and reports the samples' error to the clip against repeat-the-first-frame.
 *   npx node scripts/code-use.ts <video dataset> <dldm checkpoint> <vdm checkpoint> [clips=32] [sigma=1]
 */
import { Dataset, DatasetClips, shuffledBatches } from "@vw2/data"
import { codeUse, loadDldm } from "@vw2/dldm"
import { asFloatState, Init, loadCheckpoint, selectBackend } from "@vw2/nn"
import * as tf from "@tensorflow/tfjs"
import { sample } from "../src/Objective.ts"
import { readVdmCheckpointConfig } from "../src/VdmCheckpoint.ts"
import { codeVisibility } from "../src/VideoDiT.ts"
import { VideoDiT } from "../src/VideoDiT.ts"

const [data, dldmDir, vdmDir, n, sigmaArg] = process.argv.slice(2) as [string, string, string, string?, string?]
await selectBackend()
const { model: dldm } = await loadDldm(dldmDir)
const meta = await readVdmCheckpointConfig(vdmDir)
const dit = new VideoDiT(Init.seeded(0), meta.dit)
dit.loadStateDict(asFloatState((await loadCheckpoint(vdmDir)).weights, vdmDir))
const sigma = Number(sigmaArg ?? 1)
// SIGMA_MAX overrides the checkpoint's sampling range (checkpoints written before the field existed read 80)
const objective = process.env["SIGMA_MAX"] ? { ...meta.objective, samplingSigmaMax: Number(process.env["SIGMA_MAX"]) } : meta.objective
for (const split of ["train", "test"]) {
  const clips = new DatasetClips(Dataset.open(data), { length: dldm.config.frames, stride: 3 }, { filter: { split } })
  const batch = shuffledBatches(clips, { batchSize: Math.min(Number(n ?? 32), clips.count), seed: 20261206 }).next().value!
  const video = tf.tensor5d(batch.frames, [...batch.shape])
  const u = codeUse(dldm, dit, video, { objective: meta.objective, sigma, seed: 99 })
  const f = (e: { l1: number; mse: number }) => `${e.mse.toFixed(5)} (l1 ${e.l1.toFixed(4)})`
  console.log(`${split} ${batch.refs.length} clips σ=${sigma}: full ${f(u.full)}  no codes ${f(u.noCodes)}  no codes+hint ${f(u.noCondition)}  repeat ${f(u.repeat)}  code-drop gain ${(100 * (u.noCodes.mse / u.full.mse - 1)).toFixed(1)} %  cond-drop ${(100 * (u.noCondition.mse / u.full.mse - 1)).toFixed(1)} %`)
  const idx = tf.tidy(() => dldm.encode(video)).dataSync() as Int32Array
  const distinct = new Set(idx).size
  console.log(`  ${idx.length} code indices, ${distinct} distinct`)
  const errs = tf.tidy(() => {
    const n8 = Math.min(8, batch.refs.length)
    const clip = tf.slice(video, [0], [n8])
    const first = tf.slice(clip, [0, 0], [-1, 1])
    const indices = dldm.encode(clip)
    const lowFi = dldm.decodeLowFi(first, indices)
    const context = { codes: dldm.fsq.indicesToCodes(indices), visibleFrom: codeVisibility(dldm.geo.transitions, dldm.config.temporalCompression) }
    const hint = dit.config.control.enabled ? tf.sub(tf.mul(lowFi, 2), 1) : undefined
    const gen = tf.clipByValue(tf.div(tf.add(sample(dit, tf.sub(tf.mul(first, 2), 1), context, hint, { frames: clip.shape[1]!, steps: Number(process.env["STEPS"] ?? 6), cfg: Number(process.env["CFG"] ?? 2), seed: 1, objective }), 1), 2), 0, 1)
    const rest = (v: tf.Tensor) => tf.slice(v, [0, 1], [-1, -1])
    const err = (v: tf.Tensor) => [tf.mean(tf.abs(tf.sub(rest(v), rest(clip)))).dataSync()[0]!, tf.mean(tf.square(tf.sub(rest(v), rest(clip)))).dataSync()[0]!]
    return { gen: err(gen), lowFi: err(lowFi), repeat: err(tf.concat(new Array(clip.shape[1]!).fill(first), 1)) }
  })
  const g = (e: number[]) => `l1 ${e[0]!.toFixed(4)} mse ${e[1]!.toFixed(5)}`
  console.log(`  samples (6 Karras steps, cfg 2): ${g(errs.gen)}; low-fi chained ${g(errs.lowFi)}; repeat ${g(errs.repeat)}`)
  video.dispose()
}
