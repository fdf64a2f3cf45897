/** Exponential moving average of a module's parameters (shadow ← d·shadow + (1−d)·param). */
import * as tf from "@tensorflow/tfjs"
import type { Module } from "../Module.ts"

export class Ema {
  readonly decay: number
  private readonly shadow = new Map<string, tf.Variable>()
  private readonly source: Module

  constructor(source: Module, decay = 0.9999) {
    if (!(decay >= 0 && decay < 1)) throw new Error(`Ema: decay must be in [0, 1), got ${decay}`)
    this.decay = decay
    this.source = source
    for (const [name, p] of source.namedParams()) this.shadow.set(name, tf.variable(p.v, false))
  }

  update(): void {
    const live = this.source.paramMap()
    tf.tidy(() => {
      for (const [name, s] of this.shadow) {
        const p = live.get(name)!.v
        s.assign(tf.add(tf.mul(s, this.decay), tf.mul(p, 1 - this.decay)))
      }
    })
  }

  /** Write the averaged weights into a module of the same structure (e.g. an eval copy). */
  copyTo(target: Module): void {
    const params = target.paramMap()
    for (const [name, s] of this.shadow) {
      const p = params.get(name)
      if (p === undefined) throw new Error(`Ema.copyTo: target has no parameter "${name}"`)
      p.assign(s, name)
    }
  }

  stateDict(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>()
    for (const [k, t] of this.shadow) out.set(k, { shape: [...t.shape], data: t.dataSync() as Float32Array })
    return out
  }

  /** Restore the shadow weights (e.g. from a training checkpoint); every shadow must be present with its shape. */
  loadStateDict(state: ReadonlyMap<string, { shape: ReadonlyArray<number>; data: Float32Array }>): void {
    for (const [name, s] of this.shadow) {
      const e = state.get(name)
      if (e === undefined) throw new Error(`Ema.loadStateDict: no entry for "${name}"`)
      if (e.shape.length !== s.shape.length || e.shape.some((d, i) => d !== s.shape[i])) {
        throw new Error(`Ema.loadStateDict: "${name}" has shape [${e.shape}] but the shadow has [${s.shape}]`)
      }
      tf.tidy(() => s.assign(tf.tensor(e.data, [...e.shape], "float32")))
    }
  }

  dispose(): void {
    for (const t of this.shadow.values()) t.dispose()
    this.shadow.clear()
  }
}
