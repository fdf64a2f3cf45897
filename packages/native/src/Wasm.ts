/**
 * Registers @tensorflow/tfjs-backend-wasm (XNNPACK, SIMD) with the kernels it lacks bridged to cpu.
 *
 * In Node, tfjs-backend-wasm 4.22 never uses its threaded build (its WASM_HAS_MULTITHREAD_SUPPORT flag is
 * false when IS_NODE), so it runs single-threaded SIMD: ~30 GFLOP/s on this machine's matmuls.
 */
import * as tf from "@tensorflow/tfjs"
import { bridgeMissingKernels } from "./KernelBridge.ts"

export const WASM_BACKEND = "wasm"

/** Kernels a train step can reach that tfjs-backend-wasm 4.22 does not implement. */
export const WASM_BRIDGED_KERNELS = [
  "UnsortedSegmentSum", // gradient of gather (embeddings)
  "Conv2DBackpropFilter", // weight gradient of conv2d
  "DepthwiseConv2dNativeBackpropFilter",
  "DepthwiseConv2dNativeBackpropInput",
  "Einsum"
]

export type WasmLoad =
  | { readonly available: true; readonly simd: boolean; readonly bridgedKernels: ReadonlyArray<string> }
  | { readonly available: false; readonly reason: string }

let loading: Promise<WasmLoad> | undefined

/** Imports the wasm backend once and bridges its missing kernels; never rejects. */
export const loadWasm = (): Promise<WasmLoad> => (loading ??= load())

const load = async (): Promise<WasmLoad> => {
  try {
    await import("@tensorflow/tfjs-backend-wasm")
  } catch (error) {
    return { available: false, reason: `@tensorflow/tfjs-backend-wasm: ${String(error)}` }
  }
  if (tf.findBackendFactory(WASM_BACKEND) === null) {
    return { available: false, reason: "@tensorflow/tfjs-backend-wasm registered into another tfjs-core copy" }
  }
  const bridgedKernels = bridgeMissingKernels(WASM_BACKEND, WASM_BRIDGED_KERNELS)
  const simd = (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) === true
  return { available: true, simd, bridgedKernels }
}
