/**
 * The custom-op route end to end (packages/native/ops → 41-native-ops.sh → loadNativeOps → executeNativeOp),
 * on its first op: Vw2AdamW must update parameters and moments as @vw2/nn's tfjs AdamW does, within 1e-6
 * relative, leak nothing, and refuse mismatched shapes with a message that says which tensor.
 */
import * as tf from "@tensorflow/tfjs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../nn/src/backend/index.ts"
import { AdamW } from "../../nn/src/optim/AdamW.ts"
import { trainStep } from "../../nn/src/optim/step.ts"
import { executeNativeOp, FUSED_ADAMW_OP, fusedAdamW, sumSquares, fusedAdamWAvailable, loadNativeOps, loadTfjsNode, TFJS_NODE_BACKEND, vendoredTfjsNodePath } from "../src/index.ts"

const native = loadTfjsNode()
/** Our ops are built for the wheel build of the binding; they must load wherever that exists. */
const wheelBuild = native.available && native.source.includes(vendoredTfjsNodePath)

/** Shapes of a small model, plus one tensor big enough to be split across worker threads. */
const SHAPES: Array<[string, Array<number>]> = [
  ["blocks.0.qkv.w", [48, 144]], ["blocks.0.qkv.b", [144]], ["blocks.0.norm.gamma", [48]],
  ["embed.table", [1000, 64]], ["head.w", [7, 3, 5]], ["scalar", [1]]
]

const makeVariables = (seed: number) =>
  new Map(SHAPES.map(([name, shape], i) => [name, tf.variable(tf.randomNormal(shape, 0, 1, "float32", seed + i), true, `${name}#${seed}#${Math.random()}`)]))

const gradsAt = (step: number) =>
  new Map(SHAPES.map(([name, shape], i) => [name, tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, "float32", 1000 * step + i), 10 ** ((i % 3) - 2)))]))

const maxRelativeError = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  let worst = 0
  for (let i = 0; i < want.length; i++) {
    const scale = Math.abs(want[i]!)
    const err = Math.abs(got[i]! - want[i]!)
    worst = Math.max(worst, scale === 0 ? err : err / scale)
  }
  return worst
}

describe.skipIf(!wheelBuild)("native ops on the tensorflow backend", () => {
  let previous = ""
  beforeAll(async () => {
    previous = tf.getBackend()
    await tf.setBackend(TFJS_NODE_BACKEND)
  })
  afterAll(async () => {
    await tf.setBackend(previous)
  })

  it("the op library is built, current and has Vw2AdamW", () => {
    const ops = loadNativeOps()
    expect(ops).toMatchObject({ available: true })
    expect(ops.available && ops.ops).toContain(FUSED_ADAMW_OP)
    expect(fusedAdamWAvailable()).toBe(true)
  })

  it("selectBackend reports the native ops it loaded", async () => {
    const choice = await selectBackend({ backend: "tensorflow" })
    expect(choice.details["native_ops"]?.split(",")).toContain(FUSED_ADAMW_OP)
  })

  for (const weightDecay of [0, 0.1]) {
    it(`fused AdamW == tfjs AdamW within 1e-6 over 5 steps (weight decay ${weightDecay}, varying lr)`, () => {
      const fusedVars = makeVariables(1)
      const refVars = makeVariables(1)
      const fused = new AdamW({ lr: 1e-2, weightDecay, beta2: 0.98, implementation: "fused" })
      const ref = new AdamW({ lr: 1e-2, weightDecay, beta2: 0.98, implementation: "tfjs" })
      expect(fused.usesFusedKernel()).toBe(true)
      for (let step = 1; step <= 5; step++) {
        const grads = gradsAt(step)
        const lr = 1e-2 / step
        fused.apply(fusedVars, grads, lr)
        ref.apply(refVars, grads, lr)
        tf.dispose([...grads.values()])
      }
      for (const [name] of SHAPES) {
        const moved = maxRelativeError(refVars.get(name)!.dataSync(), makeVariablesSnapshot(name))
        expect(moved, `${name} did not change`).toBeGreaterThan(0)
        expect(maxRelativeError(fusedVars.get(name)!.dataSync(), refVars.get(name)!.dataSync()), name).toBeLessThan(1e-6)
      }
      const fusedState = fused.stateDict()
      for (const [key, want] of ref.stateDict()) {
        expect(maxRelativeError(fusedState.get(key)!.data, want.data), key).toBeLessThan(1e-6)
        expect(fusedState.get(key)!.shape).toEqual(want.shape)
      }
      fused.dispose()
      ref.dispose()
      tf.dispose([...fusedVars.values(), ...refVars.values()])
    })
  }

  it("Vw2SumSquares == the tfjs Σ g² within 1e-6 (the global gradient norm²)", () => {
    const grads = gradsAt(7)
    const native = sumSquares([...grads.values()])
    const reference = tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))
    expect(native.shape).toEqual([])
    expect(maxRelativeError(native.dataSync(), reference.dataSync())).toBeLessThan(1e-6)
    tf.dispose([native, reference, ...grads.values()])
  })

  it("trainStep with clipping: fused == tfjs AdamW within 1e-6 (clip factor folded into the op)", () => {
    const run = (implementation: "fused" | "tfjs") => {
      const vars = makeVariables(4)
      const opt = new AdamW({ lr: 1e-2, weightDecay: 0.1, implementation })
      const targets = gradsAt(11)
      const norms: Array<number> = []
      for (let step = 0; step < 3; step++) {
        const { gradNorm } = trainStep({
          variables: vars, optimizer: opt, clipNorm: 0.5,
          lossFn: () => tf.addN([...vars].map(([name, v]) => tf.sum(tf.square(tf.sub(v, targets.get(name)!))))) as tf.Scalar
        })
        norms.push(gradNorm)
      }
      const values = new Map([...vars].map(([name, v]) => [name, v.dataSync().slice()]))
      opt.dispose()
      tf.dispose([...vars.values(), ...targets.values()])
      return { norms, values }
    }
    const fused = run("fused"), reference = run("tfjs")
    expect(fused.norms[0]).toBeGreaterThan(0.5) // the clip is active
    expect(maxRelativeError(fused.norms, reference.norms)).toBeLessThan(1e-6)
    for (const [name, want] of reference.values) expect(maxRelativeError(fused.values.get(name)!, want), name).toBeLessThan(1e-6)
  })

  it("leaks no tensors: the count is flat from step to step, and back to the start after dispose", () => {
    const vars = makeVariables(2)
    const opt = new AdamW({ lr: 1e-3, weightDecay: 0.05, implementation: "fused" })
    const start = tf.memory().numTensors
    const counts: Array<number> = []
    for (let step = 1; step <= 4; step++) {
      const grads = gradsAt(step)
      // inside a tidy, as a train loop may call it: the moments must survive it
      tf.tidy(() => opt.apply(vars, grads))
      tf.dispose([...grads.values()])
      counts.push(tf.memory().numTensors)
    }
    expect(counts).toEqual(counts.map(() => start + 2 * SHAPES.length))
    opt.dispose()
    expect(tf.memory().numTensors).toBe(start)
    tf.dispose([...vars.values()])
  })

  it("the kernel refuses mismatched shapes, naming the tensor", () => {
    const p = tf.zeros([2, 2])
    const call = (g: tf.Tensor) => () => fusedAdamW({
      params: [p], grads: [g], m: [p], v: [p], decay: [true], lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1
    })
    const before = tf.memory().numTensors
    expect(call(tf.zeros([3]))).toThrow(/Vw2AdamW: grads\[0\] has shape \[3\] but params\[0\] has shape \[2,2\]/)
    expect(tf.memory().numTensors).toBe(before + 1) // only the bad gradient we made; nothing from the op
    expect(() => executeNativeOp(FUSED_ADAMW_OP, [p, p, p, p, tf.zeros([3])], [], 3)).toThrow(/Vw2AdamW/)
    expect(() => executeNativeOp("Vw2NoSuchOp", [p], [], 1)).toThrow(/Vw2NoSuchOp: not in .*vw2_ops\.node/)
  })

  it("AdamW names the parameter whose gradient or state has the wrong shape, and changes nothing", () => {
    const vars = makeVariables(3)
    const opt = new AdamW({ lr: 1e-3, implementation: "fused" })
    const before = vars.get("head.w")!.dataSync().slice()
    const grads = gradsAt(1)
    grads.set("head.w", tf.zeros([7, 15]))
    expect(() => opt.apply(vars, grads)).toThrow(/AdamW: gradient for "head.w" has shape \[7,15\] but the parameter has \[7,3,5\]/)
    expect(opt.step).toBe(0)
    expect(Array.from(vars.get("head.w")!.dataSync())).toEqual(Array.from(before))
    tf.dispose([...grads.values(), ...vars.values()])
  })
})

describe("AdamW off the native backend", () => {
  it("uses tfjs ops on cpu, and `fused` there is an error that says why", async () => {
    const previous = tf.getBackend()
    await tf.setBackend("cpu")
    try {
      expect(new AdamW({ lr: 1e-3 }).usesFusedKernel()).toBe(false)
      expect(() => new AdamW({ lr: 1e-3, implementation: "fused" }).usesFusedKernel()).toThrow(/fused op is unavailable: .*(active backend is cpu|tensorflow)/)
    } finally {
      await tf.setBackend(previous)
    }
  })
})

/** The initial value of a parameter (same seed as makeVariables), to check the steps moved it. */
const makeVariablesSnapshot = (name: string): Float32Array => {
  const i = SHAPES.findIndex(([n]) => n === name)
  return tf.tidy(() => tf.randomNormal(SHAPES[i]![1], 0, 1, "float32", 1 + i).dataSync() as Float32Array)
}
