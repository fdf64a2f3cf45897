/**
 * Loading external DiT weights from safetensors: our own layout (names as `VideoDiT.namedParams()`, weights
 * [in, out]) or the Cosmos-Predict2 layout the VideoWorld 2 release fine-tunes (PyTorch [out, in] Linear
 * weights, `net.`-prefixed names, patch vectors ordered (C, pt, ps, ps) on input and (ps, ps, pt, C) on output).
 * Every tensor is shape-checked against the DiT built from its config; errors name the file and both names.
 */
import * as tf from "@tensorflow/tfjs"
import { readSafetensors, type NamedTensor } from "@vw2/nn"
import type { VideoDiT } from "./VideoDiT.ts"
import type { VideoDiTConfig } from "./VideoDiTConfig.ts"

export type WeightLayout = "vw2" | "cosmos-predict2"

export interface ImportReport {
  /** our parameter names that were set */
  readonly loaded: ReadonlyArray<string>
  /** our parameters the file did not provide (kept at their initial values) */
  readonly missing: ReadonlyArray<string>
  /** tensors in the file that map to nothing here (buffers such as RoPE tables, or unknown names) */
  readonly ignored: ReadonlyArray<string>
}

export interface ImportOptions {
  readonly layout: WeightLayout
  /** fail when a base-network parameter is missing or a file tensor is unknown (default true) */
  readonly strict?: boolean
}

/** A 2D row-major matrix with rows/cols permuted and/or transposed. */
const remap = (t: NamedTensor, outShape: [number, number], read: (r: number, c: number) => number): NamedTensor => {
  const [rows, cols] = outShape
  const data = new Float32Array(rows * cols)
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[r * cols + c] = t.data[read(r, c)]!
  return { shape: outShape, data }
}

/** PyTorch Linear [out, in] → ours [in, out]. */
const transposed = (t: NamedTensor): NamedTensor => {
  if (t.shape.length !== 2) return t
  const [out, inn] = t.shape as [number, number]
  return remap(t, [inn, out], (r, c) => c * inn + r)
}

/** Our patch-feature layout (pt, ps, ps, C): flat index → time offset r, row m, column n, channel ci. */
const ourPatchIndex = (ours: number, ch: number, ps: number) => ({
  ci: ours % ch,
  n: Math.floor(ours / ch) % ps,
  m: Math.floor(ours / (ch * ps)) % ps,
  r: Math.floor(ours / (ch * ps * ps))
})

/** Cosmos patch-embedding [D, (C, pt, ps, ps)] → ours [(pt, ps, ps, C), D]. */
const cosmosPatchIn = (t: NamedTensor, c: VideoDiTConfig): NamedTensor => {
  const [d, inn] = t.shape as [number, number]
  const pt = c.patchTemporal
  const ps = c.patchSpatial
  const ch = inn / (pt * ps * ps)
  return remap(t, [inn, d], (ours, col) => {
    const { r, m, n, ci } = ourPatchIndex(ours, ch, ps)
    const theirs = ((ci * pt + r) * ps + m) * ps + n
    return col * inn + theirs
  })
}

/** Cosmos final linear [(ps, ps, pt, C), D] → ours [D, (pt, ps, ps, C)]. */
const cosmosPatchOut = (t: NamedTensor, c: VideoDiTConfig): NamedTensor => {
  const [out, d] = t.shape as [number, number]
  const pt = c.patchTemporal
  const ps = c.patchSpatial
  const ch = out / (pt * ps * ps)
  return remap(t, [d, out], (row, ours) => {
    const { r, m, n, ci } = ourPatchIndex(ours, ch, ps)
    const theirs = ((m * ps + n) * pt + r) * ch + ci
    return theirs * d + row
  })
}

/** Cosmos tensors that are buffers or features we do not model (RoPE tables, TransformerEngine state). */
const cosmosIgnorable = (name: string) => name.startsWith("pos_embedder.") || name.includes("._extra_state") || name.includes("accum_")

interface Mapped {
  readonly target: string
  readonly convert: (t: NamedTensor) => NamedTensor
}

/** Cosmos-Predict2 name → our name and tensor conversion; undefined for names we do not use. */
export const cosmosName = (raw: string, c: VideoDiTConfig): Mapped | undefined => {
  const name = raw.replace(/^(net\.|model\.|module\.)+/, "")
  const lora = c.adalnLoraDim > 0
  if (name === "x_embedder.proj.1.weight") return { target: "x_embedder.weight", convert: (t) => cosmosPatchIn(t, c) }
  if (name === "final_layer.linear.weight") return { target: "final_layer.linear.weight", convert: (t) => cosmosPatchOut(t, c) }
  const simple: Array<[RegExp, string]> = [
    [/^t_embedder\.1\.(linear_[12])\.(weight|bias)$/, "t_embedder.$1.$2"],
    [/^t_embedding_norm\.weight$/, "t_embedding_norm.weight"],
    [/^blocks\.(\d+)\.(self_attn|cross_attn)\.(q_proj|k_proj|v_proj|output_proj|q_norm|k_norm)\.weight$/, "blocks.$1.$2.$3.weight"],
    [/^blocks\.(\d+)\.mlp\.(layer[12])\.weight$/, "blocks.$1.$2.weight"],
    [/^blocks\.(\d+)\.(adaln_modulation_(?:self_attn|cross_attn|mlp))\.1\.weight$/, lora ? "blocks.$1.$2.down.weight" : "blocks.$1.$2.up.weight"],
    [/^blocks\.(\d+)\.(adaln_modulation_(?:self_attn|cross_attn|mlp))\.2\.weight$/, "blocks.$1.$2.up.weight"],
    [/^final_layer\.adaln_modulation\.1\.weight$/, lora ? "final_layer.adaln_down.weight" : "final_layer.adaln_up.weight"],
    [/^final_layer\.adaln_modulation\.2\.weight$/, "final_layer.adaln_up.weight"]
  ]
  for (const [pattern, target] of simple) {
    if (pattern.test(name)) return { target: name.replace(pattern, target), convert: transposed }
  }
  return undefined
}

const sameShape = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a.length === b.length && a.every((d, i) => d === b[i])

/**
 * Load `path` into `dit` (in place). The control branch, when the file does not carry it, is re-initialised
 * from the loaded base blocks (ControlNet: copies of the base).
 */
export const importWeights = async (dit: VideoDiT, path: string, options: ImportOptions): Promise<ImportReport> => {
  const strict = options.strict ?? true
  const { tensors } = await readSafetensors(path)
  const params = dit.paramMap()
  const loaded: string[] = []
  const ignored: string[] = []
  const pending: Array<{ target: string; value: NamedTensor; source: string }> = []
  for (const [source, tensor] of tensors) {
    const mapped: Mapped | undefined =
      options.layout === "vw2" ? { target: source, convert: (t) => t } : cosmosName(source, dit.config)
    if (mapped === undefined || !params.has(mapped.target)) {
      ignored.push(source)
      continue
    }
    if (!(tensor.data instanceof Float32Array)) throw new Error(`${path}: tensor "${source}" is not floating point`)
    const target = params.get(mapped.target)!
    const value = mapped.convert(tensor)
    if (!sameShape(value.shape, target.shape)) {
      throw new Error(
        `${path}: tensor "${source}" [${tensor.shape.join(", ")}] → "${mapped.target}" [${value.shape.join(", ")}] does not match ` +
          `the DiT's [${target.shape.join(", ")}] (check dit.width=${dit.config.width}, dit.patchSpatial=${dit.config.patchSpatial}, ` +
          `dit.inChannels=${dit.config.inChannels}, dit.adalnLoraDim=${dit.config.adalnLoraDim}, dit.contextDim=${dit.config.contextDim})`
      )
    }
    pending.push({ target: mapped.target, value, source })
  }
  const unknown = ignored.filter((n) => options.layout === "vw2" || !cosmosIgnorable(n.replace(/^(net\.|model\.|module\.)+/, "")))
  const provided = new Set(pending.map((p) => p.target))
  const isBase = (n: string) => !n.startsWith("control.") && !n.startsWith("code_proj.") && !n.includes("_lora.")
  const missing = [...params.keys()].filter((n) => !provided.has(n))
  if (strict) {
    const missingBase = missing.filter(isBase)
    if (missingBase.length > 0 || unknown.length > 0) {
      throw new Error(
        `${path} (layout ${options.layout}): missing DiT parameters [${missingBase.slice(0, 6).join(", ")}${missingBase.length > 6 ? ", …" : ""}]` +
          `, unknown tensors [${unknown.slice(0, 6).join(", ")}${unknown.length > 6 ? ", …" : ""}]; pass strict: false to load what matches`
      )
    }
  }
  for (const { target, value } of pending) {
    const t = tf.tensor(value.data, [...value.shape], "float32")
    try {
      params.get(target)!.assign(t, target)
    } finally {
      t.dispose()
    }
    loaded.push(target)
  }
  if (dit.control !== undefined && !missing.every((n) => !n.startsWith("control.")) && loaded.some(isBase)) dit.control.initFromBase(dit)
  return { loaded, missing, ignored }
}
