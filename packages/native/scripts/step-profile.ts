/**
 * One bench train step (bench/models.ts) on the native backend, taken apart: wall time, number of kernels
 * and their summed time (tf.profile; on tfjs-node a kernel's time includes the binding call), the top kernels.
 * Run: `npx node packages/native/scripts/step-profile.ts ar-mini [more specs]` (a timing: under flock).
 */
import * as tf from "@tensorflow/tfjs"
import { buildBenchModel, SPECS } from "../../../bench/models.ts"
import { selectBackend } from "../../nn/src/backend/index.ts"

const choice = await selectBackend({ backend: process.env["VW2_TF_BACKEND"] ?? "tensorflow" })
console.log(`backend ${choice.name}, native ops: ${choice.details["native_ops"] ?? "-"}`)
for (const name of process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["ar-mini"]) {
  const spec = SPECS.find((s) => s.name === name)
  if (spec === undefined) throw new Error(`unknown spec ${name}`)
  const model = buildBenchModel(spec)
  for (let i = 0; i < 3; i++) model.step()
  const walls: Array<number> = []
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now()
    model.step()
    walls.push(performance.now() - t0)
  }
  const wall = walls.sort((a, b) => a - b)[4]!
  const info = await tf.profile(() => { model.step() })
  const byKernel = new Map<string, { n: number; ms: number }>()
  let kernelMs = 0
  for (const k of info.kernels) {
    const e = byKernel.get(k.name) ?? { n: 0, ms: 0 }
    e.n += 1
    e.ms += k.kernelTimeMs as number
    kernelMs += k.kernelTimeMs as number
    byKernel.set(k.name, e)
  }
  console.log(`${name}: step ${wall.toFixed(1)} ms (median of 9), ${info.kernels.length} kernels summing ${kernelMs.toFixed(1)} ms (profiled step)`)
  const top = [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 14)
  for (const [k, e] of top) console.log(`  ${k.padEnd(28)} ${String(e.n).padStart(5)} calls ${e.ms.toFixed(2).padStart(8)} ms ${((e.ms * 1000) / e.n).toFixed(0).padStart(6)} µs/call`)
  model.dispose()
}
