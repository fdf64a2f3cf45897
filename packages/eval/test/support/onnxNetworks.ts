/**
 * Small ONNX networks the tests build themselves (protobuf via onnx-proto), so the ONNX metric path is
 * exercised against the real onnxruntime-node without any model file that is not in the repo.
 */
import * as fs from "node:fs"
import onnxProto from "onnx-proto"

const { onnx } = onnxProto
const FLOAT = onnx.TensorProto.DataType.FLOAT

const tensorInfo = (name: string, dims: ReadonlyArray<number | string>) => ({
  name,
  type: {
    tensorType: {
      elemType: FLOAT,
      shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) }
    }
  }
})

const initializer = (name: string, dims: ReadonlyArray<number>, values: ReadonlyArray<number>) => ({
  name,
  dims: [...dims],
  dataType: FLOAT,
  floatData: [...values]
})

const writeModel = (file: string, graph: Record<string, unknown>) => {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: "vw2-tests",
    opsetImport: [{ domain: "", version: 13 }],
    graph: onnx.GraphProto.create(graph)
  })
  fs.writeFileSync(file, onnx.ModelProto.encode(model).finish())
}

/**
 * An LPIPS-shaped network: a fixed 1×1 convolution (3 → 2 "features") applied to both images, then the
 * mean squared feature difference. distance(x, x) = 0; the exact value is computable by hand.
 */
export const lpipsLikeWeights = [0.5, -0.25, 1.0, /* feature 2: */ 0.1, 0.7, -0.3] as const

export const writeLpipsLikeModel = (file: string, height: number, width: number): void =>
  writeModel(file, {
    name: "lpips_like",
    input: [tensorInfo("reference", [1, 3, height, width]), tensorInfo("generated", [1, 3, height, width])],
    output: [tensorInfo("distance", [1])],
    initializer: [initializer("w", [2, 3, 1, 1], lpipsLikeWeights)],
    node: [
      { opType: "Conv", input: ["reference", "w"], output: ["fa"] },
      { opType: "Conv", input: ["generated", "w"], output: ["fb"] },
      { opType: "Sub", input: ["fa", "fb"], output: ["d"] },
      { opType: "Mul", input: ["d", "d"], output: ["sq"] },
      {
        opType: "ReduceMean",
        input: ["sq"],
        output: ["distance"],
        attribute: [
          { name: "axes", type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 2, 3] },
          { name: "keepdims", type: onnx.AttributeProto.AttributeType.INT, i: 0 }
        ]
      }
    ]
  })

/** A step classifier whose logits are the three channel means: argmax = the dominant colour channel. */
export const writeChannelClassifier = (file: string): void =>
  writeModel(file, {
    name: "channel_classifier",
    input: [tensorInfo("image", ["batch", 3, "height", "width"])],
    output: [tensorInfo("logits", ["batch", 3])],
    initializer: [initializer("eye", [3, 3], [1, 0, 0, 0, 1, 0, 0, 0, 1])],
    node: [
      { opType: "GlobalAveragePool", input: ["image"], output: ["pooled"] },
      { opType: "Flatten", input: ["pooled"], output: ["flat"] },
      { opType: "MatMul", input: ["flat", "eye"], output: ["logits"] }
    ]
  })
