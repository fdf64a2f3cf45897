/**
 * AdamW (Loshchilov & Hutter): Adam moments with bias correction, weight decay decoupled from the gradient
 * (p ← p − lr·wd·p), as torch.optim.AdamW. State is keyed by hierarchical parameter name, so it saves to
 * and loads from safetensors next to the model.
 */
import * as tf from "@tensorflow/tfjs"

export interface AdamWOptions {
  readonly lr: number
  readonly beta1?: number
  readonly beta2?: number
  readonly eps?: number
  readonly weightDecay?: number
  /** Which parameters get weight decay; default: every parameter of rank ≥ 2 (not biases/norm scales). */
  readonly decay?: (name: string, shape: ReadonlyArray<number>) => boolean
}

export class AdamW {
  lr: number
  readonly beta1: number
  readonly beta2: number
  readonly eps: number
  readonly weightDecay: number
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
  }

  /** One update of every variable that has a gradient. `lr` overrides the current rate for this step. */
  apply(variables: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>, lr: number = this.lr): void {
    this.step += 1
    const t = this.step
    const bc1 = 1 - Math.pow(this.beta1, t)
    const bc2 = 1 - Math.pow(this.beta2, t)
    for (const [name, g] of grads) {
      const p = variables.get(name)
      if (p === undefined) throw new Error(`AdamW: gradient for unknown parameter "${name}"`)
      const mPrev = this.m.get(name)
      const vPrev = this.v.get(name)
      const [m, v] = tf.tidy(() => {
        const m = tf.add(tf.mul(mPrev ?? tf.zerosLike(g), this.beta1), tf.mul(g, 1 - this.beta1))
        const v = tf.add(tf.mul(vPrev ?? tf.zerosLike(g), this.beta2), tf.mul(tf.square(g), 1 - this.beta2))
        return [tf.keep(m), tf.keep(v)]
      })
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
