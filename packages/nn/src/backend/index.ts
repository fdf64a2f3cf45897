/**
 * Chooses the tfjs backend a process trains on, and says which one and why.
 *
 * Order for `auto`, from docs/native-compute.md (2-core AMD EPYC, transformer train steps):
 *   tensorflow (tfjs-node on libtensorflow from the PyPI wheel, oneDNN, all cores)
 *   > wasm (XNNPACK SIMD, one thread in Node) > cpu (pure JS).
 * `VW2_TF_BACKEND` (or `options.backend`) forces one; asking for a backend that cannot load is an error,
 * never a silent fallback, so a run tagged `tensorflow` really ran on it.
 */
import * as tf from "@tensorflow/tfjs"
import { Data } from "effect"
import { loadNativeOps, loadTfjsNode, loadWasm, TFJS_NODE_BACKEND, WASM_BACKEND } from "@vw2/native"

export const BACKEND_ENV_VAR = "VW2_TF_BACKEND"

export const backendNames = ["tensorflow", "wasm", "cpu"] as const
export type BackendName = (typeof backendNames)[number]

export interface BackendChoice {
  readonly name: BackendName
  /** True when ops run in native code with all cores (libtensorflow), not JS or single-threaded wasm. */
  readonly native: boolean
  /** Flat strings, ready for tracker tags and the `vw2 plan` header. */
  readonly details: Readonly<Record<string, string>>
}

export interface SelectBackendOptions {
  /** `auto` | `tensorflow` (alias `native`) | `wasm` | `cpu`; defaults to $VW2_TF_BACKEND, then `auto`. */
  readonly backend?: string
  /** Environment to read VW2_TF_BACKEND from (tests pass their own). */
  readonly env?: Readonly<Record<string, string | undefined>>
}

export class BackendError extends Data.TaggedError("BackendError")<{ readonly message: string }> {}

type Probe = { readonly ok: true; readonly details: Record<string, string> } | { readonly ok: false; readonly reason: string }

const probes: Record<BackendName, () => Promise<Probe>> = {
  tensorflow: async () => {
    const load = loadTfjsNode()
    if (!load.available) return { ok: false, reason: load.reason }
    // our C++ ops (fused AdamW, ...): without them the backend works, on slower tfjs-op fallbacks
    const ops = loadNativeOps()
    const nativeOps = ops.available ? ops.ops.join(",") : `unavailable: ${ops.reason}`
    return { ok: true, details: { libtensorflow: load.libtensorflow, source: load.source, native_ops: nativeOps } }
  },
  wasm: async () => {
    const load = await loadWasm()
    return load.available
      ? { ok: true, details: { simd: String(load.simd), threads: "1", bridged_to_cpu: load.bridgedKernels.join(",") } }
      : { ok: false, reason: load.reason }
  },
  cpu: async () => ({ ok: true, details: {} })
}

const parseRequest = (raw: string, origin: string): BackendName | "auto" => {
  const value = raw.trim().toLowerCase()
  if (value === "" || value === "auto") return "auto"
  if (value === "native" || value === "tensorflow" || value === "tfjs-node") return "tensorflow"
  if (value === "wasm" || value === "cpu") return value
  throw new BackendError({
    message: `${origin}: unknown tfjs backend "${raw}"; expected auto, tensorflow (native), wasm or cpu`
  })
}

const activate = async (name: BackendName): Promise<void> => {
  const ok = await tf.setBackend(name)
  await tf.ready()
  if (!ok || tf.getBackend() !== name) {
    throw new BackendError({ message: `tfjs backend ${name} failed to initialise (active: ${tf.getBackend()})` })
  }
}

/**
 * Activates the requested backend (or the fastest available for `auto`) on the process-wide tfjs engine.
 * Rejects with BackendError when a forced backend is unavailable or the request is unknown.
 */
export const selectBackend = async (options: SelectBackendOptions = {}): Promise<BackendChoice> => {
  const env = options.env ?? process.env
  const origin = options.backend !== undefined ? "selectBackend({ backend })" : BACKEND_ENV_VAR
  const request = parseRequest(options.backend ?? env[BACKEND_ENV_VAR] ?? "auto", origin)
  const candidates: ReadonlyArray<BackendName> = request === "auto" ? backendNames : [request]
  const skipped: Array<string> = []
  for (const name of candidates) {
    const probe = await probes[name]()
    if (!probe.ok) {
      if (request !== "auto") {
        throw new BackendError({ message: `${origin}=${name} but it is unavailable: ${probe.reason}` })
      }
      skipped.push(`${name}: ${probe.reason}`)
      continue
    }
    await activate(name)
    const details: Record<string, string> = { requested: request, ...probe.details }
    if (skipped.length > 0) details["skipped"] = skipped.join(" | ")
    return { name, native: name === TFJS_NODE_BACKEND, details }
  }
  // cpu always probes ok, so `auto` cannot get here; keep the compiler and a future edit honest.
  throw new BackendError({ message: `no tfjs backend available: ${skipped.join(" | ")}` })
}

/** One line for logs and the plan header, e.g. `tensorflow (native, libtensorflow 2.21.0)`. */
export const describeBackend = (choice: BackendChoice): string => {
  const extra = choice.name === TFJS_NODE_BACKEND
    ? `native, libtensorflow ${choice.details["libtensorflow"] ?? "?"}`
    : choice.name === WASM_BACKEND
    ? "wasm SIMD, 1 thread"
    : "pure JS"
  return `${choice.name} (${extra})`
}
