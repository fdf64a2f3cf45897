/**
 * Splits one logical log-batch into request bodies that each satisfy MLflow's limits (1000 metrics,
 * 100 params, 100 tags, 1000 entities, < 1 MB). Entities are serialised once and bodies are built by
 * concatenation, which keeps large metric streams cheap.
 */
import { encodeDouble } from "./json.ts"
import { limits } from "../Validation.ts"

export interface WireMetric {
  readonly key: string
  readonly value: number
  readonly timestamp: number
  readonly step: number
}

export interface KeyValue {
  readonly key: string
  readonly value: string
}

interface Chunk {
  metrics: Array<string>
  params: Array<string>
  tags: Array<string>
  bytes: number
}

const envelopeBytes = (runId: string) => Buffer.byteLength(`{"run_id":${JSON.stringify(runId)},"metrics":[],"params":[],"tags":[]}`)

export const serializeMetric = (m: WireMetric): string =>
  `{"key":${JSON.stringify(m.key)},"value":${JSON.stringify(encodeDouble(m.value))},"timestamp":${Math.trunc(m.timestamp)},"step":${Math.trunc(m.step)}}`

const serializeKeyValue = (kv: KeyValue): string => `{"key":${JSON.stringify(kv.key)},"value":${JSON.stringify(kv.value)}}`

/** Request bodies for `runs/log-batch`, in order: params first (MLflow checks them against existing
 * values), then tags, then metrics; each body within every limit. */
export const splitLogBatch = (
  runId: string,
  entities: { readonly metrics?: ReadonlyArray<WireMetric>; readonly params?: ReadonlyArray<KeyValue>; readonly tags?: ReadonlyArray<KeyValue> }
): Array<string> => {
  const base = envelopeBytes(runId)
  const chunks: Array<Chunk> = []
  let current: Chunk = { metrics: [], params: [], tags: [], bytes: base }
  const flush = () => {
    if (current.metrics.length + current.params.length + current.tags.length > 0) chunks.push(current)
    current = { metrics: [], params: [], tags: [], bytes: base }
  }
  const add = (kind: "metrics" | "params" | "tags", text: string) => {
    const size = Buffer.byteLength(text) + 1
    const list = current[kind]
    const cap = kind === "metrics" ? limits.metricsPerBatch : limits.paramsTagsPerBatch
    const entities = current.metrics.length + current.params.length + current.tags.length
    if (list.length >= cap || entities >= limits.entitiesPerBatch || current.bytes + size > limits.batchBytes) flush()
    current[kind].push(text)
    current.bytes += size
  }
  for (const p of entities.params ?? []) add("params", serializeKeyValue(p))
  for (const t of entities.tags ?? []) add("tags", serializeKeyValue(t))
  for (const m of entities.metrics ?? []) add("metrics", serializeMetric(m))
  flush()
  const runIdJson = JSON.stringify(runId)
  return chunks.map((c) => `{"run_id":${runIdJson},"metrics":[${c.metrics.join(",")}],"params":[${c.params.join(",")}],"tags":[${c.tags.join(",")}]}`)
}
