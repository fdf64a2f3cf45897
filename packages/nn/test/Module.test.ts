import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { Init, Linear, LayerNorm, Mlp, Module, MultiHeadAttention, countParams, type InitContext } from "../src/index.ts"

class Block extends Module {
  readonly norm: LayerNorm
  readonly attn: MultiHeadAttention
  readonly mlp: Mlp
  constructor(init: InitContext, dim: number) {
    super(init)
    this.norm = this.module("norm", new LayerNorm(init, dim))
    this.attn = this.module("attn", new MultiHeadAttention(init, dim, 2))
    this.mlp = this.module("mlp", new Mlp(init, dim, 4 * dim))
  }
}
class Tiny extends Module {
  readonly blocks: ReadonlyArray<Block>
  readonly head: Linear
  constructor(init: InitContext, dim = 8, depth = 2) {
    super(init)
    this.blocks = this.moduleList("blocks", Array.from({ length: depth }, () => new Block(init, dim)))
    this.head = this.module("head", new Linear(init, dim, 3))
  }
}

describe("Module", () => {
  it("names parameters hierarchically", () => {
    const m = new Tiny(Init.seeded(1))
    const names = [...m.namedParams()].map(([n]) => n)
    expect(names).toContain("blocks.0.attn.wq.weight")
    expect(names).toContain("blocks.1.mlp.fc2.bias")
    expect(names).toContain("head.weight")
    expect(new Set(names).size).toBe(names.length)
    m.dispose()
  })

  it("initialises deterministically from the seed", () => {
    const a = new Tiny(Init.seeded(7))
    const b = new Tiny(Init.seeded(7))
    const c = new Tiny(Init.seeded(8))
    const wa = a.paramMap().get("blocks.1.attn.wk.weight")!.v.dataSync()
    expect(Array.from(b.paramMap().get("blocks.1.attn.wk.weight")!.v.dataSync())).toEqual(Array.from(wa))
    expect(Array.from(c.paramMap().get("blocks.1.attn.wk.weight")!.v.dataSync())).not.toEqual(Array.from(wa))
    for (const m of [a, b, c]) m.dispose()
  })

  it("counts parameters in meta mode without allocating, matching the allocated model", () => {
    const before = tf.memory().numTensors
    const n = countParams((init) => new Tiny(init, 8, 2))
    expect(tf.memory().numTensors).toBe(before)
    const real = new Tiny(Init.seeded(0), 8, 2)
    const allocated = [...real.namedParams()].reduce((s, [, p]) => s + p.v.size, 0)
    expect(n).toBe(allocated)
    // hand count: per block LN 16 + attn 4·(64+8) + mlp (8·32+32)+(32·8+8); head 8·3+3
    expect(n).toBe(2 * (16 + 4 * 72 + 288 + 264) + 27)
    real.dispose()
    expect(tf.memory().numTensors).toBe(before)
  })

  it("refuses to run a meta-built module", () => {
    const m = new Linear(Init.meta(), 4, 4)
    expect(() => m.call(tf.zeros([1, 4]))).toThrow(/meta/)
  })

  it("round-trips a state dict and rejects mismatched names", () => {
    const a = new Tiny(Init.seeded(1))
    const b = new Tiny(Init.seeded(2))
    b.loadStateDict(a.stateDict())
    expect(Array.from(b.head.weight.v.dataSync())).toEqual(Array.from(a.head.weight.v.dataSync()))
    const partial = a.stateDict()
    partial.delete("head.bias")
    expect(() => b.loadStateDict(partial)).toThrow(/missing \[head.bias\]/)
    a.dispose()
    b.dispose()
  })
})
