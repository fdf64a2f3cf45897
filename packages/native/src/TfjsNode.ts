/**
 * Loads @tensorflow/tfjs-node, the native `tensorflow` backend, into the repository's tfjs engine.
 *
 * Two places are tried, in order: the binding that infra/setup.d/40-native-tfjs.sh builds against the
 * PyPI TensorFlow wheel (packages/native/.tfjs-node), then a regular npm install of @tensorflow/tfjs-node
 * (machines that can reach its libtensorflow download). Either must register into the same tfjs-core
 * module as `import * as tf from "@tensorflow/tfjs"`, or models would silently keep running on cpu.
 */
import * as tf from "@tensorflow/tfjs"
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { bridgeMissingKernels } from "./KernelBridge.ts"

export const TFJS_NODE_BACKEND = "tensorflow"

/** Where the setup script installs the locally built tfjs-node (see infra/setup.d/40-native-tfjs.sh). */
export const vendoredTfjsNodePath = fileURLToPath(
  new URL("../.tfjs-node/node_modules/@tensorflow/tfjs-node", import.meta.url)
)

/** Numeric kernels tfjs-node 4.22 does not implement (the rest of its gaps are string/ragged/sparse ops). */
export const TFJS_NODE_BRIDGED_KERNELS = ["SearchSorted", "DenseBincount", "BitwiseAnd", "MaxPoolWithArgmax"]

export type NativeLoad =
  | { readonly available: true; readonly source: string; readonly libtensorflow: string }
  | { readonly available: false; readonly reason: string }

let cached: NativeLoad | undefined

interface TfjsNodeBinding {
  readonly TF_Version?: unknown
}

const describeError = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "unknown error"

/**
 * Registers the `tensorflow` backend if a working binding exists. Never throws: the reason it is
 * unavailable is part of the result. Loading it makes `tensorflow` tfjs's default backend (tfjs-node does
 * that on import), so callers pick the backend they want explicitly afterwards.
 */
export const loadTfjsNode = (): NativeLoad => {
  if (cached !== undefined) return cached
  // TensorFlow prints oneDNN/CPU-feature notices at INFO level on load; keep warnings and errors.
  process.env["TF_CPP_MIN_LOG_LEVEL"] ??= "2"
  const require = createRequire(import.meta.url)
  const attempts: Array<string> = []
  const candidates = [
    { source: `built from the TensorFlow wheel (${vendoredTfjsNodePath})`, id: vendoredTfjsNodePath },
    { source: "npm @tensorflow/tfjs-node", id: "@tensorflow/tfjs-node" }
  ]
  for (const candidate of candidates) {
    if (candidate.id === vendoredTfjsNodePath && !existsSync(candidate.id)) {
      attempts.push("not built (run `npm run setup`: infra/setup.d/40-native-tfjs.sh)")
      continue
    }
    try {
      require(candidate.id)
    } catch (error) {
      attempts.push(`${candidate.id}: ${describeError(error)}`)
      continue
    }
    if (tf.findBackend(TFJS_NODE_BACKEND) === undefined) {
      attempts.push(`${candidate.id} loaded but registered into another @tensorflow/tfjs-core copy`)
      continue
    }
    const binding = (tf.findBackend(TFJS_NODE_BACKEND) as unknown as { binding?: TfjsNodeBinding }).binding
    bridgeMissingKernels(TFJS_NODE_BACKEND, TFJS_NODE_BRIDGED_KERNELS)
    const version = typeof binding?.TF_Version === "string" ? binding.TF_Version : "unknown"
    cached = { available: true, source: candidate.source, libtensorflow: version }
    return cached
  }
  cached = { available: false, reason: attempts.join("; ") }
  return cached
}
