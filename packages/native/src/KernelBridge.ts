/**
 * Gives a backend the kernels it lacks by running the pure-JS cpu kernel on copies of the inputs.
 *
 * tfjs-backend-wasm 4.22 has no UnsortedSegmentSum (the gradient of gather, i.e. of every embedding),
 * no Conv2DBackpropFilter (the weight gradient of conv2d) and no Einsum, so training an embedding or a
 * conv layer on wasm fails with "kernel not registered". Copying through the cpu backend is slow but
 * these kernels are a small share of a train step; everything else stays on the fast backend.
 */
import * as tf from "@tensorflow/tfjs"

type KernelBackend = ReturnType<typeof tf.backend>
type TensorInfo = { readonly dataId: object; readonly shape: Array<number>; readonly dtype: tf.DataType }

/** Complex tensors are stored as (real, imag) pairs on cpu, which a byte copy cannot carry over. */
const NOT_BRIDGEABLE = new Set(["Complex", "ComplexAbs", "FFT", "IFFT", "Imag", "Real"])

/** Registers, for `target`, every cpu kernel it lacks (or just `only`); returns the bridged kernel names. */
export const bridgeMissingKernels = (target: string, only?: ReadonlyArray<string>): Array<string> => {
  const have = new Set(tf.getKernelsForBackend(target).map((k) => k.kernelName))
  const bridged: Array<string> = []
  for (const kernel of tf.getKernelsForBackend("cpu")) {
    const name = kernel.kernelName
    if (have.has(name) || NOT_BRIDGEABLE.has(name)) continue
    if (only !== undefined && !only.includes(name)) continue
    tf.registerKernel({
      kernelName: name,
      backendName: target,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const cpu = tf.findBackend("cpu")
        if (cpu === undefined) throw new Error(`kernel bridge ${target}/${name}: the cpu backend is not registered`)
        return runOnCpu(kernel.kernelFunc, name, inputs as Record<string, TensorInfo>, attrs, backend as KernelBackend, cpu)
      }
    })
    bridged.push(name)
  }
  return bridged
}

const runOnCpu = (
  cpuKernel: tf.KernelFunc,
  name: string,
  inputs: Record<string, TensorInfo>,
  attrs: tf.NamedAttrMap | undefined,
  source: KernelBackend,
  cpu: KernelBackend
) => {
  const copied: Record<string, TensorInfo> = {}
  for (const [key, info] of Object.entries(inputs)) {
    if (info === undefined) continue
    const values = source.readSync(info.dataId) as tf.BackendValues
    copied[key] = { dataId: cpu.write(values, info.shape, info.dtype), shape: info.shape, dtype: info.dtype }
  }
  const args = { inputs: copied, backend: cpu, ...(attrs === undefined ? {} : { attrs }) }
  const result = cpuKernel(args as Parameters<tf.KernelFunc>[0]) as TensorInfo | Array<TensorInfo>
  const outputs = Array.isArray(result) ? result : [result]
  const moved = outputs.map((out) => {
    const values = cpu.readSync(out.dataId) as tf.BackendValues
    return { dataId: source.write(values, out.shape, out.dtype), shape: out.shape, dtype: out.dtype }
  })
  for (const info of [...Object.values(copied), ...outputs]) cpu.disposeData(info.dataId, true)
  if (moved.length === 0) throw new Error(`kernel bridge: cpu kernel ${name} returned no output`)
  return Array.isArray(result) ? moved : moved[0]!
}
