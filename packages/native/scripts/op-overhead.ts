/**
 * Where the time of one small eager op goes on the native backend: tfjs-core's engine (runKernel, tensor
 * bookkeeping), tfjs-node's JS (input ids, output tensors), and the binding's executeOp (N-API marshalling,
 * TFE_NewOp, attrs, TFE_Execute). Also times one AdamW step over the ar-mini parameter shapes, fused vs tfjs.
 * Run: `npx node packages/native/scripts/op-overhead.ts` (a timing: under flock /tmp/vw2-bench.lock).
 */
import * as tf from "@tensorflow/tfjs"
import { AdamW } from "../../nn/src/optim/AdamW.ts"
import { selectBackend } from "../../nn/src/backend/index.ts"

await selectBackend({ backend: "tensorflow" })
const backend = tf.backend() as unknown as {
  binding: { executeOp: (name: string, attrs: unknown[], ids: number[], n: number) => Array<{ id: number }>; deleteTensor: (id: number) => void; TF_ATTR_TYPE: number; TF_FLOAT: number }
  getInputTensorIds: (ts: unknown[]) => number[]
  executeSingleOutput: (name: string, attrs: unknown[], inputs: unknown[]) => tf.Tensor
}

const median = (xs: Array<number>) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
/** µs per call of fn, median of 7 rounds of n calls */
const perCall = (n: number, fn: () => void): number => {
  for (let i = 0; i < n; i++) fn()
  const rounds: Array<number> = []
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now()
    for (let i = 0; i < n; i++) fn()
    rounds.push(((performance.now() - t0) * 1000) / n)
  }
  return median(rounds)
}

const a = tf.ones([64]), b = tf.ones([64])
const attrs = [{ name: "T", type: backend.binding.TF_ATTR_TYPE, value: backend.binding.TF_FLOAT }]
const ids = backend.getInputTensorIds([a, b])
const rows: Array<[string, number]> = [
  ["tf.add (tfjs-core engine + tfjs-node JS + binding + TF)", perCall(5000, () => tf.add(a, b).dispose())],
  ["backend.executeSingleOutput('AddV2') (tfjs-node JS + binding + TF)", perCall(5000, () => backend.executeSingleOutput("AddV2", attrs, [a, b]).dispose())],
  ["binding.executeOp('AddV2') + deleteTensor (N-API + TFE_NewOp + TFE_Execute)", perCall(5000, () => {
    const [out] = backend.binding.executeOp("AddV2", attrs, ids, 1)
    backend.binding.deleteTensor(out!.id)
  })]
]
for (const [what, us] of rows) console.log(`${us.toFixed(1).padStart(7)} µs  ${what}`)

// AdamW over ar-mini's parameter shapes (depth 2, width 64, MLP ×4: 26 tensors, 0.1 M parameters)
const shapes: Array<Array<number>> = []
for (let blk = 0; blk < 2; blk++) {
  shapes.push([64], [64], [64, 192], [192], [64, 64], [64], [64], [64], [64, 256], [256], [256, 64], [64])
}
shapes.push([64], [64])
for (const implementation of ["tfjs", "fused"] as const) {
  const vars = new Map(shapes.map((s, i) => [`p${i}`, tf.variable(tf.randomNormal(s, 0, 1, "float32", i))]))
  const grads = new Map(shapes.map((s, i) => [`p${i}`, tf.randomNormal(s, 0, 1, "float32", 100 + i)]))
  const opt = new AdamW({ lr: 1e-3, weightDecay: 0, implementation })
  const us = perCall(50, () => opt.apply(vars, grads))
  console.log(`${(us / 1000).toFixed(2).padStart(7)} ms  AdamW.apply, ${shapes.length} tensors, implementation ${implementation}`)
  opt.dispose()
  tf.dispose([...vars.values(), ...grads.values()])
}
{
  const vars = shapes.map((s, i) => tf.variable(tf.randomNormal(s, 0, 1, "float32", i)))
  const grads = Object.fromEntries(vars.map((v, i) => [v.name, tf.randomNormal(shapes[i]!, 0, 1, "float32", 100 + i)]))
  const opt = tf.train.adam(1e-3)
  const us = perCall(50, () => opt.applyGradients(grads as unknown as Parameters<typeof opt.applyGradients>[0]))
  console.log(`${(us / 1000).toFixed(2).padStart(7)} ms  tf.train.adam applyGradients, ${shapes.length} tensors`)
}

// The dLDM mini preset's 206 parameter tensors: gradient norm (clipping) and AdamW, native vs tfjs ops
{
  const { Dldm, miniPreset } = await import("@vw2/dldm")
  const { Init, globalNorm } = await import("@vw2/nn")
  const model = new Dldm(Init.seeded(1), miniPreset)
  const vars = model.trainableVariables()
  const grads = new Map([...vars].map(([k, v]) => [k, tf.randomNormal(v.shape, 0, 1, "float32", 7)]))
  const tfjsNorm = () => tf.tidy(() => Math.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g)))).dataSync()[0]!))
  const rows2: Array<[string, number]> = [
    [`gradient norm, ${vars.size} tensors, Vw2SumSquares`, perCall(20, () => globalNorm(grads))],
    [`gradient norm, ${vars.size} tensors, tfjs ops`, perCall(20, tfjsNorm)]
  ]
  for (const implementation of ["tfjs", "fused"] as const) {
    const opt = new AdamW({ lr: 1e-3, weightDecay: 0.1, implementation })
    rows2.push([`AdamW.apply, ${vars.size} tensors, implementation ${implementation}`, perCall(20, () => opt.apply(vars, grads))])
    opt.dispose()
  }
  for (const [what, us] of rows2) console.log(`${(us / 1000).toFixed(2).padStart(7)} ms  ${what}`)
  model.dispose()
  tf.dispose([...grads.values()])
}
