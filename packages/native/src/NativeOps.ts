/**
 * Our own TensorFlow ops (packages/native/ops/*.cc) on the native `tensorflow` backend, and how JS calls them.
 *
 * The C++ library (built by infra/setup.d/41-native-ops.sh) registers its ops with TensorFlow when it is
 * loaded; tfjs-node's eager `executeOp(name, attrs, inputs, numOutputs)` then runs them like built-in ops.
 * `defineNativeOp` turns one into a tfjs op: a kernel (and optional gradient) on the `tensorflow` backend, and
 * a pure-tfjs fallback on every other backend, so callers never branch on the backend themselves.
 * How-to for new ops: docs/native-compute.md ("Custom ops").
 */
import * as tf from "@tensorflow/tfjs"
import { existsSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { opsBuildDir, opsLibraryPath, opsSourceHash } from "./OpsSource.ts"
import { loadTfjsNode, TFJS_NODE_BACKEND, vendoredTfjsNodePath } from "./TfjsNode.ts"

export type NativeOpsLoad =
  | { readonly available: true; readonly path: string; readonly ops: ReadonlyArray<string> }
  | { readonly available: false; readonly reason: string }

const REBUILD = "run `bash infra/setup.d/41-native-ops.sh` (or `npm run setup`)"

let cached: NativeOpsLoad | undefined

/**
 * Loads vw2_ops.node into the process once (after tfjs-node: its ops land in the libtensorflow the binding
 * uses). Never throws; says why the ops are unavailable: no native backend, a binding that is not ours (npm
 * tfjs-node ships libtensorflow 2.9, whose C++ ABI our ops are not built for), not built, or stale sources.
 */
export const loadNativeOps = (): NativeOpsLoad => (cached ??= load())

const load = (): NativeOpsLoad => {
  const native = loadTfjsNode()
  if (!native.available) return { available: false, reason: `no native tensorflow backend: ${native.reason}` }
  if (!native.source.includes(vendoredTfjsNodePath)) {
    return { available: false, reason: `the tensorflow backend is ${native.source}, not the wheel build our ops are compiled against` }
  }
  if (!existsSync(opsLibraryPath)) return { available: false, reason: `${opsLibraryPath} is not built: ${REBUILD}` }
  const hashFile = join(opsBuildDir, "source-hash")
  if (!existsSync(hashFile)) return { available: false, reason: `${hashFile} is missing (an interrupted build?): ${REBUILD}` }
  const built = readFileSync(hashFile, "utf8").trim()
  const current = opsSourceHash()
  if (built !== current) {
    return { available: false, reason: `${opsLibraryPath} is stale (built from sources ${built}, packages/native/ops is now ${current}): ${REBUILD}` }
  }
  let library: { readonly ops: ReadonlyArray<{ name: string; cpuKernel: boolean }>; readonly sourceHash: string }
  try {
    library = createRequire(import.meta.url)(opsLibraryPath)
  } catch (error) {
    return { available: false, reason: `${opsLibraryPath} does not load: ${(error as Error).message.split("\n")[0]}` }
  }
  return { available: true, path: opsLibraryPath, ops: library.ops.filter((op) => op.cpuKernel).map((op) => op.name) }
}

/** True when `op` (a REGISTER_OP name) can run now: the active backend is `tensorflow` and the library has it. */
export const nativeOpAvailable = (op: string): boolean => {
  if (tf.getBackend() !== TFJS_NODE_BACKEND) return false
  const ops = loadNativeOps()
  return ops.available && ops.ops.includes(op)
}

// ---- calling an op ----

/** One TensorFlow attr of an op call, as tfjs-node's binding takes it (`type` is a TF_AttrType). */
export interface NativeAttr {
  readonly name: string
  readonly type: number
  readonly value: unknown
}

interface NodeBinding {
  readonly TF_ATTR_INT: number
  readonly TF_ATTR_FLOAT: number
  readonly TF_ATTR_BOOL: number
  readonly TF_ATTR_TYPE: number
  readonly TF_ATTR_STRING: number
  readonly TF_FLOAT: number
  readonly TF_INT32: number
  readonly TF_BOOL: number
}
interface NodeBackend {
  readonly binding: NodeBinding
  executeMultipleOutputs(name: string, attrs: ReadonlyArray<NativeAttr>, inputs: ReadonlyArray<tf.TensorInfo>, numOutputs: number): Array<tf.Tensor>
}

const nodeBackend = (): NodeBackend => {
  const backend = tf.findBackend(TFJS_NODE_BACKEND) as unknown as NodeBackend | undefined
  if (backend?.binding === undefined) throw new Error("native op: the tensorflow backend is not registered (loadTfjsNode() first)")
  return backend
}

const dtypeCode = (binding: NodeBinding, dtype: tf.DataType): number => {
  switch (dtype) {
    case "float32": return binding.TF_FLOAT
    case "int32": return binding.TF_INT32
    case "bool": return binding.TF_BOOL
    default: throw new Error(`native op: dtype ${dtype} has no TF attr mapping here`)
  }
}

/** Attr constructors (REGISTER_OP's `.Attr("N: int")` → `nativeAttr.int("N", n)`, `T: type` → `.dtype("T", "float32")`). */
export const nativeAttr = {
  int: (name: string, value: number | ReadonlyArray<number>): NativeAttr => ({ name, type: nodeBackend().binding.TF_ATTR_INT, value }),
  float: (name: string, value: number | ReadonlyArray<number>): NativeAttr => ({ name, type: nodeBackend().binding.TF_ATTR_FLOAT, value }),
  bool: (name: string, value: boolean | ReadonlyArray<boolean>): NativeAttr => ({ name, type: nodeBackend().binding.TF_ATTR_BOOL, value }),
  string: (name: string, value: string): NativeAttr => ({ name, type: nodeBackend().binding.TF_ATTR_STRING, value }),
  dtype: (name: string, dtype: tf.DataType): NativeAttr => {
    const binding = nodeBackend().binding
    return { name, type: binding.TF_ATTR_TYPE, value: dtypeCode(binding, dtype) }
  }
}

/**
 * Runs op `name` on the tensorflow backend: `inputs` in REGISTER_OP order, list inputs flattened (their
 * length attr, e.g. `N`, must be among `attrs`: tfjs-node adds inputs one by one, so TensorFlow does not infer
 * list attrs). Returns new tensors tracked by the tfjs engine (tf.tidy disposes them like any op's output).
 */
export const executeNativeOp = (
  name: string,
  inputs: ReadonlyArray<tf.TensorInfo>,
  attrs: ReadonlyArray<NativeAttr>,
  numOutputs: number
): Array<tf.Tensor> => {
  const ops = loadNativeOps()
  if (!ops.available) throw new Error(`native op ${name}: ${ops.reason}`)
  if (!ops.ops.includes(name)) throw new Error(`native op ${name}: not in ${ops.path} (has ${ops.ops.join(", ")}); add it to packages/native/ops and ${REBUILD}`)
  return nodeBackend().executeMultipleOutputs(name, attrs, inputs, numOutputs)
}

// ---- a tfjs op with a native kernel and a JS fallback ----

export interface NativeOpDefinition<Inputs extends string> {
  /** REGISTER_OP name; also the tfjs kernel name */
  readonly name: string
  /** input names in REGISTER_OP order (tfjs passes inputs by name) */
  readonly inputs: ReadonlyArray<Inputs>
  readonly numOutputs: number
  /** TF attrs of one call, from its inputs and tfjs attrs (e.g. `[nativeAttr.dtype("T", x.dtype)]`) */
  readonly attrs?: (inputs: Record<Inputs, tf.TensorInfo>, attrs: tf.NamedAttrMap) => ReadonlyArray<NativeAttr>
  /** the same computation in tfjs ops: runs on every other backend, and autodiff goes through it there */
  readonly fallback: (inputs: Record<Inputs, tf.Tensor>, attrs: tf.NamedAttrMap) => Array<tf.Tensor>
  /** gradient of the native kernel (tfjs GradConfig; may call other native ops); omit for non-differentiable ops */
  readonly gradient?: Omit<tf.GradConfig, "kernelName">
}

/**
 * Registers `definition` as tfjs kernel `name` on the tensorflow backend (with its gradient) and returns
 * the op: native kernel when nativeOpAvailable(name), else the fallback. Call once per op, at module load.
 */
export const defineNativeOp = <Inputs extends string>(
  definition: NativeOpDefinition<Inputs>
): ((inputs: Record<Inputs, tf.Tensor>, attrs?: tf.NamedAttrMap) => Array<tf.Tensor>) => {
  const { name, numOutputs } = definition
  if (tf.getKernel(name, TFJS_NODE_BACKEND) === undefined) {
    tf.registerKernel({
      kernelName: name,
      backendName: TFJS_NODE_BACKEND,
      kernelFunc: ({ inputs, attrs }) => {
        const named = inputs as Record<Inputs, tf.TensorInfo>
        const ordered = definition.inputs.map((input) => {
          const info = named[input]
          if (info === undefined) throw new Error(`native op ${name}: input "${input}" missing`)
          return info
        })
        return executeNativeOp(name, ordered, definition.attrs?.(named, attrs ?? {}) ?? [], numOutputs)
      }
    })
    if (definition.gradient !== undefined) tf.registerGradient({ kernelName: name, ...definition.gradient })
  }
  return (inputs, attrs = {}) => {
    if (!nativeOpAvailable(name)) return definition.fallback(inputs, attrs)
    const out = tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs)
    return Array.isArray(out) ? out : [out as tf.Tensor]
  }
}
