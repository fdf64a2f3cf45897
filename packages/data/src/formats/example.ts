/**
 * `tf.train.Example` and `tf.train.SequenceExample` (tensorflow/core/example/{feature,example}.proto),
 * encoded and decoded with protobufjs. The schema below restates those messages' fields, numbers and
 * types exactly (proto3, packed float/int64 lists), so bytes are interchangeable with TensorFlow's.
 */
import protobuf from "protobufjs"
import { formatError } from "./errors.ts"

const TF_EXAMPLE_PROTO = `
syntax = "proto3";
package tensorflow;
message BytesList { repeated bytes value = 1; }
message FloatList { repeated float value = 1 [packed = true]; }
message Int64List { repeated int64 value = 1 [packed = true]; }
message Feature {
  oneof kind {
    BytesList bytes_list = 1;
    FloatList float_list = 2;
    Int64List int64_list = 3;
  }
}
message Features { map<string, Feature> feature = 1; }
message FeatureList { repeated Feature feature = 1; }
message FeatureLists { map<string, FeatureList> feature_list = 1; }
message Example { Features features = 1; }
message SequenceExample {
  Features context = 1;
  FeatureLists feature_lists = 2;
}
`

const root = protobuf.parse(TF_EXAMPLE_PROTO, { keepCase: false }).root
const ExampleType = root.lookupType("tensorflow.Example")
const SequenceExampleType = root.lookupType("tensorflow.SequenceExample")

export type Feature =
  | { readonly kind: "bytes"; readonly value: ReadonlyArray<Uint8Array> }
  | { readonly kind: "float"; readonly value: Float32Array }
  | { readonly kind: "int64"; readonly value: BigInt64Array }

export type Features = Readonly<Record<string, Feature>>

export const bytesFeature = (value: ReadonlyArray<Uint8Array | string>): Feature => ({
  kind: "bytes",
  value: value.map((v) => (typeof v === "string" ? new TextEncoder().encode(v) : v))
})
export const floatFeature = (value: ArrayLike<number>): Feature => ({ kind: "float", value: Float32Array.from(value) })
export const int64Feature = (value: ArrayLike<number | bigint>): Feature => ({
  kind: "int64",
  value: BigInt64Array.from(Array.from(value, (v) => BigInt(v)))
})

/** protobufjs message object for one Feature. */
const toMessage = (feature: Feature): Record<string, unknown> => {
  switch (feature.kind) {
    case "bytes":
      return { bytesList: { value: feature.value } }
    case "float":
      return { floatList: { value: Array.from(feature.value) } }
    case "int64":
      // protobufjs takes int64 as decimal strings without precision loss
      return { int64List: { value: Array.from(feature.value, (v) => v.toString()) } }
  }
}

interface LongLike {
  toString(): string
}

interface FeatureMessage {
  bytesList?: { value?: Uint8Array[] }
  floatList?: { value?: number[] }
  int64List?: { value?: Array<number | LongLike> }
}

const fromMessage = (message: FeatureMessage): Feature => {
  if (message.bytesList !== undefined && message.bytesList !== null) {
    // protobufjs hands out Node Buffers; expose plain Uint8Array views of the same bytes
    return { kind: "bytes", value: (message.bytesList.value ?? []).map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)) }
  }
  if (message.floatList !== undefined && message.floatList !== null) return { kind: "float", value: Float32Array.from(message.floatList.value ?? []) }
  if (message.int64List !== undefined && message.int64List !== null) {
    return { kind: "int64", value: BigInt64Array.from((message.int64List.value ?? []).map((v) => BigInt(typeof v === "number" ? v : v.toString()))) }
  }
  // a Feature with no kind set is an empty list (the proto allows it); treat it as empty bytes
  return { kind: "bytes", value: [] }
}

const featuresToMessage = (features: Features): Record<string, unknown> => ({
  feature: Object.fromEntries(Object.entries(features).map(([k, f]) => [k, toMessage(f)]))
})

const featuresFromMessage = (message: { feature?: Record<string, FeatureMessage> } | null | undefined): Record<string, Feature> =>
  Object.fromEntries(Object.entries(message?.feature ?? {}).map(([k, f]) => [k, fromMessage(f)]))

export const encodeExample = (features: Features): Uint8Array =>
  ExampleType.encode(ExampleType.fromObject({ features: featuresToMessage(features) })).finish()

export const decodeExample = (bytes: Uint8Array, source = "<buffer>", offset?: number): Record<string, Feature> => {
  let message: { features?: { feature?: Record<string, FeatureMessage> } }
  try {
    message = ExampleType.decode(bytes) as unknown as typeof message
  } catch (e) {
    throw formatError(source, offset, `record is not a tf.train.Example: ${(e as Error).message}`)
  }
  return featuresFromMessage(message.features)
}

export interface SequenceExample {
  readonly context: Features
  readonly featureLists: Readonly<Record<string, ReadonlyArray<Feature>>>
}

export const encodeSequenceExample = (example: SequenceExample): Uint8Array =>
  SequenceExampleType.encode(
    SequenceExampleType.fromObject({
      context: featuresToMessage(example.context),
      featureLists: {
        featureList: Object.fromEntries(Object.entries(example.featureLists).map(([k, list]) => [k, { feature: list.map(toMessage) }]))
      }
    })
  ).finish()

export const decodeSequenceExample = (bytes: Uint8Array, source = "<buffer>", offset?: number): SequenceExample => {
  let message: {
    context?: { feature?: Record<string, FeatureMessage> }
    featureLists?: { featureList?: Record<string, { feature?: FeatureMessage[] }> }
  }
  try {
    message = SequenceExampleType.decode(bytes) as unknown as typeof message
  } catch (e) {
    throw formatError(source, offset, `record is not a tf.train.SequenceExample: ${(e as Error).message}`)
  }
  return {
    context: featuresFromMessage(message.context),
    featureLists: Object.fromEntries(
      Object.entries(message.featureLists?.featureList ?? {}).map(([k, list]) => [k, (list.feature ?? []).map(fromMessage)])
    )
  }
}
