import * as tf from "@tensorflow/tfjs"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import {
  AdamW,
  Init,
  Mlp,
  asFloatState,
  decodeSafetensors,
  encodeSafetensors,
  loadCheckpoint,
  mseLoss,
  saveCheckpoint,
  trainStep
} from "../src/index.ts"

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

/** Build a safetensors file by hand from the spec (as the Python library lays it out). */
function handMade(): Uint8Array {
  const header = JSON.stringify({
    __metadata__: { format: "pt" },
    half: { dtype: "F16", shape: [2], data_offsets: [8, 12] },
    w: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    bf: { dtype: "BF16", shape: [1], data_offsets: [12, 14] },
    ids: { dtype: "I64", shape: [1], data_offsets: [14, 22] }
  })
  const h = Buffer.from(header, "utf8")
  const data = Buffer.alloc(22)
  data.writeFloatLE(1.5, 0)
  data.writeFloatLE(-2, 4)
  data.writeUInt16LE(0x3c00, 8) // f16 1.0
  data.writeUInt16LE(0xc000, 10) // f16 −2.0
  data.writeUInt16LE(0x4040, 12) // bf16 3.0
  data.writeBigInt64LE(123n, 14)
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(h.length))
  return new Uint8Array(Buffer.concat([len, h, data]))
}

describe("safetensors", () => {
  it("reads a file laid out by the spec (F32, F16, BF16, I64)", () => {
    const { tensors, metadata } = decodeSafetensors(handMade())
    expect(metadata).toEqual({ format: "pt" })
    expect(Array.from(tensors.get("w")!.data)).toEqual([1.5, -2])
    expect(Array.from(tensors.get("half")!.data)).toEqual([1, -2])
    expect(Array.from(tensors.get("bf")!.data)).toEqual([3])
    expect(Array.from(tensors.get("ids")!.data)).toEqual([123])
  })

  it("writes the spec layout: u64 LE header length, 8-byte aligned data, contiguous offsets", () => {
    const bytes = encodeSafetensors(
      new Map([
        ["b.bias", { shape: [3], data: new Float32Array([1, 2, 3]) }],
        ["a.weight", { shape: [2, 2], data: new Float32Array([4, 5, 6, 7]) }]
      ]),
      { format: "pt" }
    )
    const n = Number(Buffer.from(bytes).readBigUInt64LE(0))
    expect((8 + n) % 8).toBe(0)
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString("utf8"))
    expect(header["a.weight"]).toEqual({ dtype: "F32", shape: [2, 2], data_offsets: [0, 16] })
    expect(header["b.bias"]).toEqual({ dtype: "F32", shape: [3], data_offsets: [16, 28] })
    expect(bytes.length).toBe(8 + n + 28)
    expect(Buffer.from(bytes).readFloatLE(8 + n + 16)).toBe(1)
    const back = decodeSafetensors(bytes).tensors
    expect(Array.from(back.get("a.weight")!.data)).toEqual([4, 5, 6, 7])
  })

  it("rejects a truncated file naming it", () => {
    expect(() => decodeSafetensors(handMade().subarray(0, 40), "x.safetensors")).toThrow(/x.safetensors/)
  })
})

describe("checkpoint", () => {
  it("round-trips model, config, optimizer state and train state; the restored model computes the same", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vw2-nn-ckpt-"))
    dirs.push(dir)
    const mlp = new Mlp(Init.seeded(1), 4, 8)
    const opt = new AdamW({ lr: 1e-2 })
    const x = tf.randomNormal([3, 4], 0, 1, "float32", 1)
    trainStep({ variables: mlp.trainableVariables(), optimizer: opt, lossFn: () => mseLoss(mlp.call(x), tf.zeros([3, 4])) })
    const config = { dim: 4, hidden: 8 }
    await saveCheckpoint(join(dir, "ck"), { model: mlp, config, optimizer: opt, trainState: { step: 1, note: "x" } })
    const loaded = await loadCheckpoint<typeof config>(join(dir, "ck"))
    expect(loaded.config).toEqual(config)
    expect(loaded.trainState).toEqual({ step: 1, note: "x" })
    expect([...loaded.weights.keys()].sort()).toEqual(["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"])
    expect(loaded.optimizer!.has("m.fc1.weight")).toBe(true)
    const restored = new Mlp(Init.seeded(99), loaded.config.dim, loaded.config.hidden)
    restored.loadStateDict(asFloatState(loaded.weights))
    expect(Array.from(restored.call(x).dataSync())).toEqual(Array.from(mlp.call(x).dataSync()))
    const raw = await readFile(join(dir, "ck", "model.safetensors"))
    expect(decodeSafetensors(new Uint8Array(raw)).metadata).toEqual({ format: "pt" })
    await expect(loadCheckpoint(join(dir, "missing"))).rejects.toThrow(/model.safetensors not found/)
    mlp.dispose()
    restored.dispose()
    opt.dispose()
  })
})
