/**
 * A small module system on raw tfjs ops (nanoGPT / lucidrains style, not tf.layers).
 *
 * - A module owns its parameters; names are hierarchical (`blocks.0.attn.wq`), built from the names
 *   under which children are registered.
 * - Parameters are created from an `InitContext`: `Init.seeded(seed)` allocates deterministic weights,
 *   `Init.meta()` records shapes only, so a paper-scale config can be built and counted without memory.
 * - `call()` implementations wrap their work in `tf.tidy`; `dispose()` frees every variable.
 */
import * as tf from "@tensorflow/tfjs"
import { Rng } from "./Rng.ts"

/** Builds the initial value of a parameter from a shape and a seed. */
export type Initializer = (shape: ReadonlyArray<number>, seed: number) => tf.Tensor

export const Initializers = {
  zeros: ((shape) => tf.zeros(shape as number[])) as Initializer,
  ones: ((shape) => tf.ones(shape as number[])) as Initializer,
  /** Truncated normal (±2σ), the GPT-2 / DiT default for weights. */
  normal:
    (std: number): Initializer =>
    (shape, seed) =>
      tf.truncatedNormal(shape as number[], 0, std, "float32", seed),
  uniform:
    (limit: number): Initializer =>
    (shape, seed) =>
      tf.randomUniform(shape as number[], -limit, limit, "float32", seed),
  /** Glorot/Xavier uniform for a [fanIn, fanOut] matrix. */
  xavier: ((shape, seed) => {
    const fanIn = shape[0] ?? 1
    const fanOut = shape[shape.length - 1] ?? 1
    const limit = Math.sqrt(6 / (fanIn + fanOut))
    return tf.randomUniform(shape as number[], -limit, limit, "float32", seed)
  }) as Initializer
} as const

/** How parameters come to life: real seeded tensors, or shapes only (`meta`). */
export interface InitContext {
  readonly meta: boolean
  readonly rng: Rng
}

export const Init = {
  seeded: (seed: number): InitContext => ({ meta: false, rng: new Rng(seed) }),
  /** Shapes only: no tensor is allocated; calling the module throws. */
  meta: (): InitContext => ({ meta: true, rng: new Rng(0) })
} as const

/** One parameter: its shape always, its variable unless the module was built in meta mode. */
export class Param {
  readonly shape: ReadonlyArray<number>
  trainable: boolean
  private variable: tf.Variable | undefined

  constructor(shape: ReadonlyArray<number>, variable: tf.Variable | undefined, trainable: boolean) {
    this.shape = shape
    this.variable = variable
    this.trainable = trainable
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1)
  }

  /** The live variable; throws for meta-built modules. */
  get v(): tf.Variable {
    if (this.variable === undefined) {
      throw new Error("Param: this module was built with Init.meta() (shapes only); build it with Init.seeded(seed) to run it")
    }
    return this.variable
  }

  get allocated(): boolean {
    return this.variable !== undefined
  }

  /** Overwrite the value (shape-checked). */
  assign(value: tf.Tensor, name = "param"): void {
    const shape = value.shape
    if (shape.length !== this.shape.length || shape.some((d, i) => d !== this.shape[i])) {
      throw new Error(`${name}: shape [${shape.join(", ")}] does not match parameter shape [${this.shape.join(", ")}]`)
    }
    this.v.assign(value.dtype === "float32" ? value : tf.cast(value, "float32"))
  }

  dispose(): void {
    this.variable?.dispose()
    this.variable = undefined
  }
}

export abstract class Module {
  protected readonly init: InitContext
  private readonly ownParams = new Map<string, Param>()
  private readonly children = new Map<string, Module>()

  constructor(init: InitContext) {
    this.init = init
  }

  /** Register a parameter of this module under a local name (no dots). */
  protected param(name: string, shape: ReadonlyArray<number>, initializer: Initializer, trainable = true): Param {
    if (name.includes(".")) throw new Error(`Module.param: local name "${name}" must not contain "."`)
    if (this.ownParams.has(name) || this.children.has(name)) throw new Error(`Module.param: duplicate name "${name}"`)
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`Module.param: ${name} has invalid shape [${shape.join(", ")}]`)
    const seed = this.init.rng.nextSeed()
    let variable: tf.Variable | undefined
    if (!this.init.meta) {
      const initial = initializer(shape, seed)
      // tfjs variable names must be globally unique; we keep hierarchical names ourselves.
      variable = tf.variable(initial, trainable)
      initial.dispose()
    }
    const p = new Param([...shape], variable, trainable)
    this.ownParams.set(name, p)
    return p
  }

  /** Register a child module under a local name. */
  protected module<M extends Module>(name: string, child: M): M {
    if (name.includes(".")) throw new Error(`Module.module: local name "${name}" must not contain "."`)
    if (this.ownParams.has(name) || this.children.has(name)) throw new Error(`Module.module: duplicate name "${name}"`)
    this.children.set(name, child)
    return child
  }

  /** Register a list of children as `name.0`, `name.1`, ... */
  protected moduleList<M extends Module>(name: string, children: ReadonlyArray<M>): ReadonlyArray<M> {
    this.module(name, new ModuleList(this.init, children))
    return children
  }

  /** Every parameter with its hierarchical name, depth-first in registration order. */
  *namedParams(prefix = ""): IterableIterator<[string, Param]> {
    for (const [name, p] of this.ownParams) yield [prefix + name, p]
    for (const [name, child] of this.children) yield* child.namedParams(`${prefix}${name}.`)
  }

  /** Parameters as a name → Param map. */
  paramMap(): Map<string, Param> {
    return new Map(this.namedParams())
  }

  /** Trainable variables by hierarchical name (the optimizer's and the gradient function's view). */
  trainableVariables(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>()
    for (const [name, p] of this.namedParams()) if (p.trainable) out.set(name, p.v)
    return out
  }

  /** Total number of scalars (works on meta-built modules). */
  paramCount(filter?: (name: string) => boolean): number {
    let n = 0
    for (const [name, p] of this.namedParams()) if (filter === undefined || filter(name)) n += p.size
    return n
  }

  /** Mark every parameter (optionally under a name prefix) trainable or frozen. */
  setTrainable(trainable: boolean, prefix = ""): void {
    for (const [name, p] of this.namedParams()) {
      if (!name.startsWith(prefix)) continue
      p.trainable = trainable
      if (p.allocated) p.v.trainable = trainable
    }
  }

  /** Snapshot of every parameter as float32 data (for checkpoints). */
  stateDict(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>()
    for (const [name, p] of this.namedParams()) out.set(name, { shape: [...p.shape], data: p.v.dataSync() as Float32Array })
    return out
  }

  /** Load parameters by name. `strict`: every parameter must be present and no extra names allowed. */
  loadStateDict(state: ReadonlyMap<string, { shape: ReadonlyArray<number>; data: Float32Array }>, strict = true): void {
    const params = this.paramMap()
    if (strict) {
      const missing = [...params.keys()].filter((k) => !state.has(k))
      const unexpected = [...state.keys()].filter((k) => !params.has(k))
      if (missing.length > 0 || unexpected.length > 0) {
        throw new Error(
          `loadStateDict: missing [${missing.slice(0, 8).join(", ")}${missing.length > 8 ? ", ..." : ""}], ` +
            `unexpected [${unexpected.slice(0, 8).join(", ")}${unexpected.length > 8 ? ", ..." : ""}]`
        )
      }
    }
    for (const [name, p] of params) {
      const entry = state.get(name)
      if (entry === undefined) continue
      const t = tf.tensor(entry.data, [...entry.shape], "float32")
      try {
        p.assign(t, name)
      } finally {
        t.dispose()
      }
    }
  }

  /** Copy all parameter values from a module of the same structure. */
  copyFrom(other: Module, prefix = ""): void {
    const mine = this.paramMap()
    for (const [name, p] of other.namedParams()) {
      const target = mine.get(prefix + name)
      if (target === undefined) throw new Error(`copyFrom: no parameter "${prefix + name}" in the target module`)
      target.assign(p.v, prefix + name)
    }
  }

  dispose(): void {
    for (const p of this.ownParams.values()) p.dispose()
    for (const c of this.children.values()) c.dispose()
  }
}

/** A container whose children are named by index. */
export class ModuleList<M extends Module> extends Module {
  readonly items: ReadonlyArray<M>
  constructor(init: InitContext, items: ReadonlyArray<M>) {
    super(init)
    this.items = items
    items.forEach((m, i) => this.module(String(i), m))
  }
}

/** Build a model in meta mode and count its parameters: no tensor is allocated. */
export function countParams(build: (init: InitContext) => Module, filter?: (name: string) => boolean): number {
  const before = tf.memory().numTensors
  const m = build(Init.meta())
  const n = m.paramCount(filter)
  if (tf.memory().numTensors !== before) throw new Error("countParams: the model allocated tensors while built in meta mode")
  return n
}
