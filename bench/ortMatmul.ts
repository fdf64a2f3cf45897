/**
 * Square float32 matmul throughput of onnxruntime-node (MLAS) on this CPU: the number that decides
 * route 2 of the native-compute issue (tfjs kernels sent to ORT sessions). A one-node ONNX graph
 * (MatMul of two graph inputs) is built in memory with onnx-proto, so nothing is downloaded or stored.
 */
import onnxProto from "onnx-proto"
import * as ort from "onnxruntime-node"
import os from "node:os"

const { onnx } = onnxProto

const matmulModel = (n: number): Uint8Array => {
  const input = (name: string) => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: n }, { dimValue: n }] } } }
  })
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: "vw2-bench",
    opsetImport: [{ domain: "", version: 13 }],
    graph: onnx.GraphProto.create({
      name: "matmul",
      input: [input("a"), input("b")],
      output: [input("c")],
      node: [{ opType: "MatMul", input: ["a", "b"], output: ["c"] }]
    })
  })
  return onnx.ModelProto.encode(model).finish()
}

/** GFLOP/s of the median of `reps` session runs (inputs prepared once, as a kernel bridge would cache them). */
export const ortMatmulGflops = async (n: number, reps = 5): Promise<number> => {
  const session = await ort.InferenceSession.create(matmulModel(n), {
    intraOpNumThreads: os.availableParallelism(),
    graphOptimizationLevel: "all"
  })
  const data = (seed: number) => Float32Array.from({ length: n * n }, (_, i) => Math.sin(i * 0.37 + seed))
  const feeds = { a: new ort.Tensor("float32", data(1), [n, n]), b: new ort.Tensor("float32", data(2), [n, n]) }
  await session.run(feeds) // warm-up: first run allocates and picks kernels
  const times: Array<number> = []
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now()
    await session.run(feeds)
    times.push(performance.now() - t0)
  }
  await session.release()
  const median = times.sort((x, y) => x - y)[Math.floor(reps / 2)]!
  return (2 * n ** 3) / (median / 1000) / 1e9
}
