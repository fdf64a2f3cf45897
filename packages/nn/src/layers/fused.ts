/**
 * The transformer's hot element-wise pieces as single ops: LayerNorm, (bias +) tanh-GELU and the
 * multi-head attention core (scale, mask, softmax, both products).
 *
 * On the `tensorflow` backend each forward and each backward is one custom TensorFlow op
 * (packages/native/ops/fused/fused_ops.cc) wired in through tf.customGrad; everywhere else (cpu, wasm, or
 * the op library not built) the same function runs as a composition of tfjs ops. Why: tfjs runs LayerNorm as
 * ~11 eager ops and GELU as ~9, each 2–3× more in backward through its JS gradient functions, and on the
 * bench shapes per-op dispatch plus the extra passes over memory cost more than the matmuls (profile in
 * docs/native-compute.md). Both paths compute the same function; packages/native/test/fused.test.ts checks
 * values and gradients agree.
 */
import * as tf from "@tensorflow/tfjs"
import { executeNativeOp, nativeAttr, nativeOpAvailable } from "@vw2/native"

const GELU_C = Math.sqrt(2 / Math.PI)
const GELU_A = 0.044715

// ---- the composite (any backend) forms: the reference the fused ops must match ----

/** LayerNorm over the last axis from tfjs ops; gamma/beta [D] or undefined (no affine). */
export function compositeLayerNorm(x: tf.Tensor, gamma: tf.Tensor | undefined, beta: tf.Tensor | undefined, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true)
    let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)))
    if (gamma !== undefined) y = tf.mul(y, gamma)
    if (beta !== undefined) y = tf.add(y, beta)
    return y
  })
}

/** GELU (tanh form) of x + bias from tfjs ops; bias [D] or undefined. */
export function compositeBiasGelu(x: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const h = bias === undefined ? x : tf.add(x, bias)
    // h·h·h, not pow(h, 3): pow's gradient also differentiates w.r.t. the exponent (a log and a select)
    const inner = tf.mul(GELU_C, tf.add(h, tf.mul(GELU_A, tf.mul(tf.mul(h, h), h))))
    return tf.mul(tf.mul(0.5, h), tf.add(1, tf.tanh(inner)))
  })
}

/**
 * Attention core on head-major tensors with TF's (or any backend's) batched matmuls: q [B, H, Lq, d],
 * k/v [B, H, Lk, d], allowed float mask [1|B, Lq, Lk] (1 keep, 0 masked) or undefined. Masked keys get
 * probability exactly 0; a query with no allowed key outputs zeros. On the fused path the scale, mask and
 * softmax are one op (Vw2MaskedSoftmax) each way; elsewhere they are tfjs ops.
 */
function batchedAttentionCore(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, allowed: tf.Tensor | undefined): tf.Tensor {
  return tf.tidy(() => {
    const d = q.shape[q.rank - 1]!
    const product = tf.matMul(q as tf.Tensor4D, k as tf.Tensor4D, false, true)
    if (fusedOpsActive()) return tf.matMul(fusedMaskedSoftmax(product, allowed, 1 / Math.sqrt(d)) as tf.Tensor4D, v as tf.Tensor4D)
    const scores = tf.mul(product, 1 / Math.sqrt(d))
    if (allowed === undefined) return tf.matMul(tf.softmax(scores) as tf.Tensor4D, v as tf.Tensor4D)
    const allowed4 = tf.expandDims(allowed, 1) // [1|B, 1, Lq, Lk]
    const probs = tf.mul(tf.softmax(tf.add(scores, tf.mul(tf.sub(1, allowed4), -1e9))), allowed4)
    return tf.matMul(probs as tf.Tensor4D, v as tf.Tensor4D)
  })
}

// ---- the fused (tensorflow backend) forms ----

let enabled = process.env["VW2_FUSED_OPS"] !== "0"

/**
 * Turns the fused ops off (composite tfjs ops on every backend) or back on; the default is on, and
 * VW2_FUSED_OPS=0 starts a process with them off. For before/after measurements and agreement tests.
 */
export function setFusedOps(on: boolean): void {
  enabled = on
}

/** Every op this module calls: the library either has all of them or the composite path runs. */
const FUSED_OPS = [
  "Vw2LayerNorm", "Vw2LayerNormGrad", "Vw2BiasGelu", "Vw2BiasGeluGrad",
  "Vw2Attention", "Vw2AttentionGrad", "Vw2SelfAttention", "Vw2SelfAttentionGrad", "Vw2MaskedSoftmax", "Vw2MaskedSoftmaxGrad",
  "Vw2Dense", "Vw2DenseGrad"
]

/** True when layerNorm / biasGelu / attention run as the fused TensorFlow ops in this process right now. */
export function fusedOpsActive(): boolean {
  if (!enabled || tf.getBackend() !== "tensorflow") return false
  // the op library is loaded at most once per process, so its answer can be kept (this runs once per op call)
  return (libraryHasFusedOps ??= FUSED_OPS.every(nativeOpAvailable))
}
let libraryHasFusedOps: boolean | undefined

/**
 * The whole-attention ops do their per-head products with Eigen GEMMs (AVX2 + FMA where the CPU has them, the
 * op library's flags), which beat oneDNN's batched matmul plus separate softmax ops up to head width 32:
 * fwd + bwd at dldm-small's shape (8 × 320 tokens, 6 heads of 32) 16.7–21.8 ms min fused vs 32–43 ms with TF's
 * matmuls (13:44, load ~2; with the earlier AVX-only build the whole op lost there, 97 vs 55 ms). Wider heads
 * (not measured) keep TF's matmuls and fuse only the scale + mask + softmax (Vw2MaskedSoftmax).
 */
const MAX_FUSED_HEAD_DIM = 32
const fusedCoreFor = (headDim: number): boolean => headDim <= MAX_FUSED_HEAD_DIM && fusedOpsActive()

const run = (op: string, inputs: ReadonlyArray<tf.Tensor>, outputs: number, attrs: Parameters<typeof executeNativeOp>[2] = []) =>
  executeNativeOp(op, inputs, attrs, outputs)

/** Stands in for an absent gamma/beta/bias/mask input: the ops read an empty tensor as "none". */
const none = (): tf.Tensor => tf.tensor1d([], "float32")

type Save = (tensors: Array<tf.Tensor>) => void
type Grad = (dy: tf.Tensor, saved: Array<tf.Tensor>) => Array<tf.Tensor>
/** tf.customGrad with a variable number of tensor inputs (its typings fix the arity). */
const customGrad = (f: (...args: Array<tf.Tensor | Save>) => { value: tf.Tensor; gradFunc: Grad }) =>
  tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...inputs: Array<tf.Tensor>) => tf.Tensor

/** gamma and beta both given (affine) or both omitted: the op's gradient outputs follow gamma. */
function fusedLayerNorm(x: tf.Tensor, affine: { gamma: tf.Tensor; beta: tf.Tensor } | undefined, eps: number): tf.Tensor {
  const epsAttr = [nativeAttr.float("epsilon", eps)]
  const f = customGrad((...args) => {
    const save = args[args.length - 1] as Save
    const gamma = affine?.gamma ?? none()
    const [y, mean, rstd] = run("Vw2LayerNorm", [x, gamma, affine?.beta ?? none()], 3, epsAttr)
    save([x, gamma, mean!, rstd!])
    return {
      value: y!,
      gradFunc: (dy, [sx, sg, sm, sr]) => {
        const [dx, dgamma, dbeta] = run("Vw2LayerNormGrad", [dy, sx!, sg!, sm!, sr!], 3)
        return affine !== undefined ? [dx!, dgamma!, dbeta!] : [dx!]
      }
    }
  })
  return affine !== undefined ? f(x, affine.gamma, affine.beta) : f(x)
}

function fusedBiasGelu(x: tf.Tensor, bias: tf.Tensor | undefined): tf.Tensor {
  const f = customGrad((...args) => {
    const save = args[args.length - 1] as Save
    const b = bias ?? none()
    const [y] = run("Vw2BiasGelu", [x, b], 1)
    save([x, b])
    return {
      value: y!,
      gradFunc: (dy, [sx, sb]) => {
        const [dx, dbias] = run("Vw2BiasGeluGrad", [dy, sx!, sb!], 2)
        return bias !== undefined ? [dx!, dbias!] : [dx!]
      }
    }
  })
  return bias !== undefined ? f(x, bias) : f(x)
}

/** q [B, Lq, H·d], k/v [B, Lk, H·d], allowed [1|B, Lq, Lk] float or undefined → [B, Lq, H·d]. */
function fusedAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, allowed: tf.Tensor | undefined): tf.Tensor {
  const headsAttr = [nativeAttr.int("heads", heads)]
  const f = customGrad((...args) => {
    const save = args[args.length - 1] as Save
    const [o, probs] = run("Vw2Attention", [q, k, v, allowed ?? none()], 2, headsAttr)
    save([q, k, v, probs!])
    return {
      value: o!,
      gradFunc: (dy, [sq, sk, sv, sp]) => run("Vw2AttentionGrad", [dy, sq!, sk!, sv!, sp!], 3, headsAttr)
    }
  })
  return f(q, k, v)
}

/** softmax(scores·scale, masked) over the last axis; scores [B, H, Lq, Lk], allowed [1|B, Lq, Lk] or undefined. */
function fusedMaskedSoftmax(scores: tf.Tensor, allowed: tf.Tensor | undefined, scale: number): tf.Tensor {
  const scaleAttr = [nativeAttr.float("scale", scale)]
  const f = customGrad((...args) => {
    const save = args[args.length - 1] as Save
    const [probs] = run("Vw2MaskedSoftmax", [scores, allowed ?? none()], 1, scaleAttr)
    save([probs!])
    return { value: probs!, gradFunc: (dy, [sp]) => run("Vw2MaskedSoftmaxGrad", [dy, sp!], 1, scaleAttr) }
  })
  return f(scores)
}

/** qkv [B, L, 3·H·d] (q | k | v column blocks), allowed [1|B, L, L] float or undefined → [B, L, H·d]. */
function fusedSelfAttention(qkv: tf.Tensor, heads: number, allowed: tf.Tensor | undefined): tf.Tensor {
  const headsAttr = [nativeAttr.int("heads", heads)]
  const f = customGrad((...args) => {
    const save = args[args.length - 1] as Save
    const [o, probs] = run("Vw2SelfAttention", [qkv, allowed ?? none()], 2, headsAttr)
    save([qkv, probs!])
    return {
      value: o!,
      gradFunc: (dy, [sqkv, sp]) => run("Vw2SelfAttentionGrad", [dy, sqkv!, sp!], 1, headsAttr)
    }
  })
  return f(qkv)
}

/**
 * x·W (+ b) over the last axis as ONE tfjs kernel running ONE op each way on the tensorflow backend: Vw2Dense
 * (packages/native/ops/fused/dense.cc: Eigen GEMM over the tensors' memory, bias in the same pass, any rank
 * without reshapes) and Vw2DenseGrad (dx, dW and db together). tfjs's own Linear is reshape → matMul → add →
 * reshape forward and 6 eager ops backward, and TF's oneDNN MatMul costs ~150–200 µs per call on the mini
 * shapes (640 × 48 × 144), several times the arithmetic; profile in docs/native-compute.md ("Dense").
 */
const denseForward = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | undefined): tf.Tensor =>
  tf.tidy(() => {
    const [inF, outF] = w.shape as [number, number]
    // 2-D on purpose: tfjs 4.22's BatchMatMul gradient does not reduce a broadcast weight
    const x2 = x.rank === 2 ? x : tf.reshape(x, [-1, inF])
    const y = tf.matMul(x2 as tf.Tensor2D, w as tf.Tensor2D)
    const yb = b === undefined ? y : tf.add(y, b)
    return x.rank === 2 ? yb : tf.reshape(yb, [...x.shape.slice(0, -1), outF])
  })

/**
 * tfjs kernel names of the dense op for `blocks` weights with/without biases: tfjs saves a kernel's inputs for
 * backward by name, so each arity is its own kernel (registered on first use).
 */
const denseKernelName = (blocks: number, withBias: boolean) => `Vw2Dense${blocks}${withBias ? "" : "NoBias"}`
const registeredDenseKernels = new Set<string>()

function registerDense(blocks: number, withBias: boolean): string {
  const kernelName = denseKernelName(blocks, withBias)
  if (registeredDenseKernels.has(kernelName)) return kernelName
  const ws = Array.from({ length: blocks }, (_, j) => `w${j}`)
  const bs = withBias ? Array.from({ length: blocks }, (_, j) => `b${j}`) : []
  const attrs = [nativeAttr.int("N", blocks)]
  // without biases the op still takes N (empty) bias inputs: one empty tensor serves all of them
  const biasesOf = (named: Record<string, tf.Tensor>) => {
    if (withBias) return bs.map((n) => named[n]!)
    const empty = none()
    return ws.map(() => empty)
  }
  if (tf.getKernel(kernelName, "tensorflow") === undefined) {
    tf.registerKernel({
      kernelName,
      backendName: "tensorflow",
      kernelFunc: ({ inputs }) => {
        const named = inputs as unknown as Record<string, tf.Tensor>
        return run("Vw2Dense", [named["x"]!, ...ws.map((n) => named[n]!), ...biasesOf(named)], 1, attrs)[0]!
      }
    })
    tf.registerGradient({
      kernelName,
      inputsToSave: ["x", ...ws, ...bs],
      gradFunc: (dy, saved) => {
        const [x, ...rest] = saved as Array<tf.Tensor>
        const named = Object.fromEntries([...ws, ...bs].map((n, i) => [n, rest[i]!]))
        // every gradient at once, here: backprop runs each input's closure below in its own tf.tidy, so a
        // tensor made lazily inside one of them would be disposed before the next uses it
        const [dx, ...dwb] = run("Vw2DenseGrad", [dy as tf.Tensor, x!, ...ws.map((n) => named[n]!), ...biasesOf(named)], 1 + 2 * blocks, attrs)
        return Object.fromEntries([
          ["x", () => dx!],
          ...ws.map((n, j) => [n, () => dwb[j]!]),
          ...bs.map((n, j) => [n, () => dwb[blocks + j]!])
        ]) as Record<string, () => tf.Tensor>
      }
    })
  }
  registeredDenseKernels.add(kernelName)
  return kernelName
}

/**
 * Above this many multiply-adds per call TF's own MatMul (oneDNN, AVX-512 kernels on this CPU) beats the op's
 * AVX2 Eigen GEMM and its per-call floor no longer matters: the bench's small presets (2048–2560 rows ×
 * 192–1024, ≥ 94 M per call) ran 3–7 % faster on TF's MatMul (two A/B pairs, 14:33, load ~1), while the minis
 * gain from the op, dit-mini's 2304 × 64 × 192 (28 M) included (72 vs 66 samples/s with a 16 M cut-off).
 */
const DENSE_OP_MAX_MACS = 1 << 26

/** x [..., in] · w [in, out] (+ b [out]) → [..., out]; one kernel with a lean gradient on the fused path. */
export function dense(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  return denseBlocks(x, [w], b === undefined ? undefined : [b])
}

/**
 * x [..., in] · [W_0 | W_1 | …] (+ [b_0 | b_1 | …]) → [..., Σ out_j]: several projections of one input whose
 * outputs are consecutive column blocks (a self-attention's q | k | v). On the fused path one op each way,
 * with no concatenated weight per call and no split of its gradient; elsewhere the concatenation.
 */
export function denseBlocks(x: tf.Tensor, ws: ReadonlyArray<tf.Tensor>, bs?: ReadonlyArray<tf.Tensor>): tf.Tensor {
  if (ws.length === 0) throw new Error("denseBlocks: needs at least one weight")
  if (bs !== undefined && bs.length !== ws.length) throw new Error(`denseBlocks: ${ws.length} weights but ${bs.length} biases`)
  const macs = (x.size / Math.max(1, x.shape[x.rank - 1]!)) * ws[0]!.shape[0]! * ws.reduce((sum, w) => sum + w.shape[1]!, 0)
  if (!fusedOpsActive() || x.dtype !== "float32" || macs > DENSE_OP_MAX_MACS) {
    return tf.tidy(() =>
      denseForward(x, ws.length === 1 ? ws[0]! : tf.concat([...ws], 1), bs === undefined ? undefined : bs.length === 1 ? bs[0]! : tf.concat([...bs], 0))
    )
  }
  const kernel = registerDense(ws.length, bs !== undefined)
  const inputs: tf.NamedTensorMap = { x }
  ws.forEach((w, j) => (inputs[`w${j}`] = w))
  bs?.forEach((b, j) => (inputs[`b${j}`] = b))
  return tf.engine().runKernel(kernel, inputs, {}) as tf.Tensor
}

// ---- the public functions: fused where possible, composite otherwise ----

/** LayerNorm over the last axis: (x − mean)/√(var + eps)·gamma + beta (biased variance). gamma/beta [D] or omitted. */
export function layerNorm(x: tf.Tensor, gamma?: tf.Tensor, beta?: tf.Tensor, eps = 1e-5): tf.Tensor {
  if (!fusedOpsActive() || x.dtype !== "float32" || (gamma === undefined) !== (beta === undefined)) return compositeLayerNorm(x, gamma, beta, eps)
  return fusedLayerNorm(x, gamma !== undefined ? { gamma, beta: beta! } : undefined, eps)
}

/** GELU (tanh form, PyTorch gelu(approximate="tanh")) of x + bias; bias [D] (last axis) or omitted. */
export function biasGelu(x: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  return fusedOpsActive() && x.dtype === "float32" ? fusedBiasGelu(x, bias) : compositeBiasGelu(x, bias)
}

/** bool or float mask [Lq, Lk] | [B, Lq, Lk] → float "allowed" [1|B, Lq, Lk], checked against the shapes. */
function allowedMask(mask: tf.Tensor, batch: number, lq: number, lk: number): tf.Tensor {
  const m3 = mask.rank === 2 ? tf.expandDims(mask, 0) : mask
  if (m3.rank !== 3 || m3.shape[1] !== lq || m3.shape[2] !== lk || (m3.shape[0] !== 1 && m3.shape[0] !== batch)) {
    throw new Error(`attention mask shape [${mask.shape.join(", ")}] must be [${lq}, ${lk}] or [${batch}, ${lq}, ${lk}]`)
  }
  return m3.dtype === "float32" ? m3 : tf.cast(m3, "float32")
}

/**
 * Multi-head attention core on token-major activations, heads as column blocks of the last axis:
 * q [B, Lq, H·d], k/v [B, Lk, H·d], mask bool [Lq, Lk] | [B, Lq, Lk] (true = may attend) → [B, Lq, H·d],
 * softmax(q kᵀ/√d, masked) v per head. A query with no allowed key outputs zeros.
 */
export function multiHeadAttentionCore(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, mask?: tf.Tensor): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, lq, width] = q.shape
    const lk = k.shape[1]
    if (width % heads !== 0) throw new Error(`attention: width ${width} is not divisible by heads ${heads}`)
    const allowed = mask === undefined ? undefined : allowedMask(mask, b, lq, lk)
    if (fusedCoreFor(width / heads)) return fusedAttention(q, k, v, heads, allowed) as tf.Tensor3D
    const d = width / heads
    const toHeads = (t: tf.Tensor3D) => tf.transpose(tf.reshape(t, [b, t.shape[1], heads, d]), [0, 2, 1, 3])
    const o = batchedAttentionCore(toHeads(q), toHeads(k), toHeads(v), allowed)
    return tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [b, lq, width]) as tf.Tensor3D
  })
}

/**
 * Self-attention core on one packed projection: qkv [B, L, 3·H·d] with q, k, v as consecutive column blocks
 * (x·[Wq | Wk | Wv]), mask as multiHeadAttentionCore → [B, L, H·d]. One matmul instead of three for the
 * projections, and no split or gradient sum between them.
 */
export function packedSelfAttention(qkv: tf.Tensor3D, heads: number, mask?: tf.Tensor): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, l, width3] = qkv.shape
    if (width3 % 3 !== 0) throw new Error(`attention: packed qkv width ${width3} is not a multiple of 3`)
    if (!fusedCoreFor(width3 / 3 / heads)) {
      const [q, k, v] = tf.split(qkv, 3, 2) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D]
      return multiHeadAttentionCore(q, k, v, heads, mask)
    }
    if ((width3 / 3) % heads !== 0) throw new Error(`attention: width ${width3 / 3} is not divisible by heads ${heads}`)
    const allowed = mask === undefined ? undefined : allowedMask(mask, b, l, l)
    return fusedSelfAttention(qkv, heads, allowed) as tf.Tensor3D
  })
}

/**
 * The same core on head-major tensors: q [B, H, Lq, d], k/v [B, H, Lk, d], mask bool [Lq, Lk] | [B, Lq, Lk]
 * → [B, H, Lq, d]. Fused as one "head" per (batch, head) pair, so callers that keep [B, H, L, d] tensors
 * (a KV cache) get the fused op without transposes.
 */
export function headMajorAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask?: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, lq, d] = q.shape
    const lk = k.shape[2]
    if (mask !== undefined && mask.rank !== 2 && mask.rank !== 3) {
      throw new Error(`attention mask shape [${mask.shape.join(", ")}] must be [${lq}, ${lk}] or [B, ${lq}, ${lk}]`)
    }
    const allowed = mask === undefined ? undefined : allowedMask(mask, b, lq, lk) // [1|B, Lq, Lk]
    if (!fusedCoreFor(d)) return batchedAttentionCore(q, k, v, allowed) as tf.Tensor4D
    // one fused "head" per (batch, head) pair; a per-batch mask repeats for each head of that batch entry
    const flatMask = allowed === undefined || allowed.shape[0] === 1 ? allowed : tf.reshape(tf.tile(tf.expandDims(allowed, 1), [1, h, 1, 1]), [b * h, lq, lk])
    const flat = (t: tf.Tensor4D) => tf.reshape(t, [b * h, t.shape[2], d]) as tf.Tensor3D
    const o = fusedAttention(flat(q), flat(k), flat(v), 1, flatMask)
    return tf.reshape(o, [b, h, lq, d]) as tf.Tensor4D
  })
}
