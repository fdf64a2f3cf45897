/**
 * AdamW (Loshchilov & Hutter): Adam moments with bias correction, weight decay decoupled from the gradient
 * (p ← p − lr·wd·p), as torch.optim.AdamW. State is keyed by hierarchical parameter name, so it saves to
 * and loads from safetensors next to the model.
 *
 * Two implementations of the same arithmetic: on the native `tensorflow` backend one fused op updates every
 * parameter (Vw2AdamW from @vw2/native: one op call per step instead of ~14 per parameter tensor); elsewhere,
 * or with `implementation: "tfjs"`, tfjs ops per parameter (the reference the fused op is tested against).
 */
import * as tf from "@tensorflow/tfjs"
import { FUSED_ADAMW_OP, fusedAdamW, fusedAdamWAvailable, loadNativeOps } from "@vw2/native"

export interface AdamWOptions {
  readonly lr: number
  readonly beta1?: number
  readonly beta2?: number
  readonly eps?: number
  readonly weightDecay?: number
  /** Which parameters get weight decay; default: every parameter of rank ≥ 2 (not biases/norm scales). */
  readonly decay?: (name: string, shape: ReadonlyArray<number>) => boolean
  /**
   * `auto` (default): the fused native op when the active backend has it, else tfjs ops. `fused` insists
   * (an error saying why when unavailable); `tfjs` always uses tfjs ops.
   */
  readonly implementation?: "auto" | "fused" | "tfjs"
}

const sameShape = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a.length === b.length && a.every((d, i) => d === b[i])

export class AdamW {
  lr: number
  readonly beta1: number
  readonly beta2: number
  readonly eps: number
  readonly weightDecay: number
  readonly implementation: "auto" | "fused" | "tfjs"
  private readonly decay: (name: string, shape: ReadonlyArray<number>) => boolean
  private readonly m = new Map<string, tf.Tensor>()
  private readonly v = new Map<string, tf.Tensor>()
  step = 0

  constructor(o: AdamWOptions) {
    this.lr = o.lr
    this.beta1 = o.beta1 ?? 0.9
    this.beta2 = o.beta2 ?? 0.999
    this.eps = o.eps ?? 1e-8
    this.weightDecay = o.weightDecay ?? 0.01
    this.decay = o.decay ?? ((_, shape) => shape.length >= 2)
    this.implementation = o.implementation ?? "auto"
  }

  /** Whether the next `apply` runs the fused native op (depends on the active tfjs backend). */
  usesFusedKernel(): boolean {
    if (this.implementation === "tfjs") return false
    if (fusedAdamWAvailable()) return true
    if (this.implementation === "fused") {
      const ops = loadNativeOps()
      const why = !ops.available ? ops.reason : tf.getBackend() !== "tensorflow" ? `the active backend is ${tf.getBackend()}` : `${FUSED_ADAMW_OP} is not in ${ops.path}`
      throw new Error(`AdamW: implementation "fused" but the fused op is unavailable: ${why}`)
    }
    return false
  }

  /**
   * One update of every variable that has a gradient. `lr` overrides the current rate for this step;
   * every gradient is multiplied by `gradScale` first (global-norm clipping, see trainStep).
   */
  apply(variables: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>, lr: number = this.lr, gradScale = 1): void {
    // validate everything before touching state, so a bad call leaves the optimizer as it was
    const params: Array<tf.Variable> = []
    for (const [name, g] of grads) {
      const p = variables.get(name)
      if (p === undefined) throw new Error(`AdamW: gradient for unknown parameter "${name}"`)
      if (!sameShape(g.shape, p.shape)) {
        throw new Error(`AdamW: gradient for "${name}" has shape [${g.shape}] but the parameter has [${p.shape}]`)
      }
      for (const [kind, state] of [["m", this.m], ["v", this.v]] as const) {
        const s = state.get(name)
        if (s !== undefined && !sameShape(s.shape, p.shape)) {
          throw new Error(`AdamW: optimizer state ${kind}.${name} has shape [${s.shape}] but the parameter has [${p.shape}]`)
        }
      }
      params.push(p)
    }
    const fused = this.usesFusedKernel()
    this.step += 1
    if (fused) this.applyFused([...grads.keys()], params, [...grads.values()], lr, gradScale)
    else this.applyTfjs(params, grads, lr, gradScale)
  }

  private applyFused(names: ReadonlyArray<string>, params: ReadonlyArray<tf.Variable>, grads: ReadonlyArray<tf.Tensor>, lr: number, gradScale: number): void {
    // first step: zero moments (created here, disposed below)
    const fresh: Array<tf.Tensor> = []
    const moment = (state: Map<string, tf.Tensor>, name: string, like: tf.Tensor) => {
      const s = state.get(name)
      if (s !== undefined) return s
      const zeros = tf.zerosLike(like)
      fresh.push(zeros)
      return zeros
    }
    const out = fusedAdamW({
      params, grads,
      m: names.map((name, i) => moment(this.m, name, grads[i]!)),
      v: names.map((name, i) => moment(this.v, name, grads[i]!)),
      decay: names.map((name, i) => this.weightDecay > 0 && this.decay(name, params[i]!.shape)),
      lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay, step: this.step, gradScale
    })
    tf.dispose(fresh)
    names.forEach((name, i) => {
      params[i]!.assign(out.params[i]!)
      out.params[i]!.dispose()
      this.m.get(name)?.dispose()
      this.v.get(name)?.dispose()
      // kept: they outlive any tf.tidy the caller runs apply in
      this.m.set(name, tf.keep(out.m[i]!))
      this.v.set(name, tf.keep(out.v[i]!))
    })
  }

  private applyTfjs(params: ReadonlyArray<tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>, lr: number, gradScale: number): void {
    const t = this.step
    const bc1 = 1 - Math.pow(this.beta1, t)
    const bc2 = 1 - Math.pow(this.beta2, t)
    let i = 0
    for (const [name, unscaled] of grads) {
      const p = params[i++]!
      const g = gradScale === 1 ? unscaled : tf.mul(unscaled, gradScale)
      const mPrev = this.m.get(name)
      const vPrev = this.v.get(name)
      const [m, v] = tf.tidy(() => {
        const m = tf.add(tf.mul(mPrev ?? tf.zerosLike(g), this.beta1), tf.mul(g, 1 - this.beta1))
        const v = tf.add(tf.mul(vPrev ?? tf.zerosLike(g), this.beta2), tf.mul(tf.square(g), 1 - this.beta2))
        return [tf.keep(m), tf.keep(v)]
      })
      if (g !== unscaled) g.dispose()
      mPrev?.dispose()
      vPrev?.dispose()
      this.m.set(name, m)
      this.v.set(name, v)
      const decay = this.weightDecay > 0 && this.decay(name, p.shape)
      tf.tidy(() => {
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), this.eps))
        const decayed = decay ? tf.mul(p, 1 - lr * this.weightDecay) : p
        p.assign(tf.sub(decayed, tf.mul(update, lr)))
      })
    }
  }

  /** Moments as named float32 arrays (`m.<param>`, `v.<param>`) for `optimizer.safetensors`. */
  stateDict(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>()
    for (const [k, t] of this.m) out.set(`m.${k}`, { shape: [...t.shape], data: t.dataSync() as Float32Array })
    for (const [k, t] of this.v) out.set(`v.${k}`, { shape: [...t.shape], data: t.dataSync() as Float32Array })
    return out
  }

  loadStateDict(state: ReadonlyMap<string, { shape: ReadonlyArray<number>; data: Float32Array }>, step: number): void {
    this.dispose()
    for (const [k, e] of state) {
      const target = k.startsWith("m.") ? this.m : k.startsWith("v.") ? this.v : undefined
      if (target === undefined) throw new Error(`AdamW.loadStateDict: unexpected entry "${k}" (expected m.* or v.*)`)
      target.set(k.slice(2), tf.tensor(e.data, [...e.shape], "float32"))
    }
    this.step = step
  }

  dispose(): void {
    for (const t of this.m.values()) t.dispose()
    for (const t of this.v.values()) t.dispose()
    this.m.clear()
    this.v.clear()
  }
}
