import * as tf from "@tensorflow/tfjs"
import { Init, patchify, writeSafetensors, type NamedTensor } from "@vw2/nn"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { importWeights } from "../src/ImportWeights.ts"
import { codeVisibility, VideoDiT } from "../src/VideoDiT.ts"
import { maxAbsDiff, randomize, tinyDiT } from "./support.ts"

let dir = ""
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vw2-diffusion-import-"))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const config = tinyDiT({ adalnLoraDim: 8, concatPaddingMask: true, positionEncoding: "rope3d", control: { ...tinyDiT().control, enabled: false } })

/** Written independently of the importer: our parameters → the Cosmos-Predict2 names and PyTorch layouts. */
const toCosmos = (dit: VideoDiT): Map<string, NamedTensor> => {
  const out = new Map<string, NamedTensor>()
  const ps = config.patchSpatial
  const ch = config.inChannels + 2 // + condition mask + padding mask
  for (const [name, p] of dit.namedParams()) {
    if (name.startsWith("code_proj.")) continue
    const v = p.v.arraySync() as number[] | number[][]
    const torchT = (m: number[][]) => m[0]!.map((_, c) => m.map((row) => row[c]!)) // [in, out] → [out, in]
    let key = name
      .replace(/^t_embedder\./, "t_embedder.1.")
      .replace(/\.(layer[12])\./, ".mlp.$1.")
      .replace(/(adaln_modulation_\w+)\.down\./, "$1.1.")
      .replace(/(adaln_modulation_\w+)\.up\./, "$1.2.")
      .replace(/final_layer\.adaln_down\./, "final_layer.adaln_modulation.1.")
      .replace(/final_layer\.adaln_up\./, "final_layer.adaln_modulation.2.")
    let value: number[][] | number[] = p.shape.length === 2 ? torchT(v as number[][]) : v
    if (name === "x_embedder.weight") {
      key = "x_embedder.proj.1.weight"
      const w = v as number[][] // ours [(m, n, C), D] (pt = 1)
      value = w[0]!.map((_, d) => {
        const row: number[] = []
        for (let c = 0; c < ch; c++) for (let m = 0; m < ps; m++) for (let n = 0; n < ps; n++) row.push(w[(m * ps + n) * ch + c]![d]!)
        return row
      })
    }
    if (name === "final_layer.linear.weight") {
      const w = v as number[][] // ours [D, (m, n, C)] — the same order as Cosmos's (m, n, t, C) with pt = 1
      value = torchT(w)
    }
    const flat = (value as number[] | number[][]).flat() as number[]
    const shape = p.shape.length === 2 ? [p.shape[1]!, p.shape[0]!] : [...p.shape]
    out.set(`net.${key}`, { shape, data: Float32Array.from(flat) })
  }
  out.set("net.pos_embedder.seq", { shape: [4], data: new Float32Array(4) }) // a RoPE buffer: ignored
  return out
}

describe("importWeights", () => {
  const inp = () => ({
    x: tf.randomNormal([1, 3, 16, 16, 3], 0, 1, "float32", 1),
    time: tf.tensor2d([[0, 0.4, 0.8]]),
    conditionMask: tf.tensor2d([[1, 0, 0]]),
    context: { codes: tf.randomNormal([1, 2, 4, 4], 0, 1, "float32", 2), visibleFrom: codeVisibility(2) }
  })

  it("loads Cosmos-Predict2 weights (names, transposes, patch order) into an identical network", async () => {
    const source = new VideoDiT(Init.seeded(1), config)
    randomize(source)
    const file = join(dir, "cosmos.safetensors")
    await writeSafetensors(file, toCosmos(source))
    const target = new VideoDiT(Init.seeded(2), config)
    target.code_proj.copyFrom(source.code_proj) // the codes' projection is new in VideoWorld 2, not in Cosmos
    const report = await importWeights(target, file, { layout: "cosmos-predict2" })
    expect(report.ignored).toEqual(["net.pos_embedder.seq"])
    expect(report.missing).toEqual(["code_proj.weight", "code_proj.bias"])
    expect(maxAbsDiff(source.call(inp()), target.call(inp()))).toBeLessThan(1e-5)
  })

  it("reads the Cosmos input patch order (C, pt, ps, ps): one weight picks one pixel of one channel", async () => {
    const d = config.width
    const inPatch = (config.inChannels + 2) * config.patchSpatial ** 2
    const w = new Float32Array(d * inPatch)
    const [c, m, n] = [1, 2, 3]
    w[0 * inPatch + (c * config.patchSpatial + m) * config.patchSpatial + n] = 1 // row d = 0
    const dit = new VideoDiT(Init.seeded(3), config)
    const file = join(dir, "patch.safetensors")
    await writeSafetensors(file, new Map([["net.x_embedder.proj.1.weight", { shape: [d, inPatch], data: w }]]))
    await importWeights(dit, file, { layout: "cosmos-predict2", strict: false })
    const x = tf.buffer([1, 1, 16, 16, 5])
    x.set(5, 0, 0, m, n, c) // pixel (m, n) of channel c in patch (0, 0)
    const emb = dit.x_embedder.call(patchify(x.toTensor(), { t: 1, s: config.patchSpatial })) // [1, 1, P, D]
    expect(tf.slice(emb, [0, 0, 0, 0], [1, 1, 1, 1]).dataSync()[0]).toBe(5)
    expect(tf.sum(tf.abs(emb)).dataSync()[0]).toBe(5)
  })

  it("round-trips our own layout and rejects wrong shapes and unknown names with the file and tensor named", async () => {
    const source = new VideoDiT(Init.seeded(1), config)
    randomize(source)
    const file = join(dir, "vw2.safetensors")
    await writeSafetensors(file, source.stateDict())
    const target = new VideoDiT(Init.seeded(2), config)
    await importWeights(target, file, { layout: "vw2" })
    expect(maxAbsDiff(source.call(inp()), target.call(inp()))).toBe(0)

    const wide = new VideoDiT(Init.seeded(2), { ...config, width: 64, contextDim: 16 })
    await expect(importWeights(wide, file, { layout: "vw2" })).rejects.toThrow(/vw2\.safetensors: tensor "[\w.]+" \[[\d, ]+\] → .* does not match the DiT's .*dit\.width=64/)
    const extra = join(dir, "extra.safetensors")
    await writeSafetensors(extra, new Map([...source.stateDict(), ["mystery.weight", { shape: [1], data: new Float32Array(1) }]]))
    await expect(importWeights(target, extra, { layout: "vw2" })).rejects.toThrow(/unknown tensors \[mystery\.weight\]/)
  })
})
