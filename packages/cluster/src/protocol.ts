/**
 * Wire protocol v1 between the driver (ZeroMQ DEALER, this package) and the Ray bridge (ROUTER,
 * python/vw2_ray_bridge/protocol.py mirrors this file). Every message is multipart:
 *   frame 0: a JSON object header with `v` (protocol version) and `type` (+ `token` when the bridge has one)
 *   frame 1: optional binary payload; `event` carries one worker event line verbatim (an invocation event of the
 *            run-event stream, `{"vw2":1,"type":…}`: core's RunEvent.ts, decodeEventLine).
 * The bridge answers anything malformed with `{ type: "error", message }` and carries on.
 */
import type { WorkerSpec } from "@vw2/core"

export const protocolVersion = 1

export interface ClusterNode {
  readonly node: string
  readonly cpus: number
  readonly gpus: number
  readonly memoryMb: number
}

/** Driver → bridge. */
export type DriverMessage =
  | { readonly type: "hello"; readonly driver: string }
  | { readonly type: "ping"; readonly t: number }
  | { readonly type: "bye" }
  | {
    readonly type: "submit"
    readonly id: string
    /** the worker spec without `gpus` / `eventsFd`, which the Ray task fills in */
    readonly spec: Omit<WorkerSpec, "gpus" | "eventsFd">
    readonly resources: { readonly cpus: number; readonly gpus: number; readonly memoryMb: number }
    readonly maxRetries: number
    /** absolute path of the Node 24 binary and of worker/main.ts, as every node sees them */
    readonly node: string
    readonly entry: string
    readonly cwd: string
    /** how artifacts travel (ArtifactTransport.ts); absent: "shared-path" */
    readonly transport?: "shared-path" | "object-store"
    /** a Ray resource name: soft affinity to the alive node offering it */
    readonly preferNode?: string
  }
  | { readonly type: "cancel"; readonly id: string }

/** Bridge → driver. */
export type BridgeMessage =
  | {
    readonly type: "welcome"
    readonly bridge: { readonly pid: number; readonly rayAddress: string; readonly heartbeatMs: number; readonly timeoutMs: number }
    readonly nodes: ReadonlyArray<ClusterNode>
  }
  | { readonly type: "ping"; readonly t: number }
  | { readonly type: "accepted"; readonly id: string; readonly submitMs: number }
  | { readonly type: "started"; readonly id: string; readonly gpus: ReadonlyArray<string>; readonly node: string; readonly attempt: number; readonly queuedMs: number }
  | { readonly type: "retry"; readonly id: string; readonly gpus: ReadonlyArray<string>; readonly node: string; readonly attempt: number }
  | { readonly type: "event"; readonly id: string }
  | { readonly type: "done"; readonly id: string; readonly gpus: ReadonlyArray<string>; readonly uploads: ReadonlyArray<string>; readonly node?: string }
  | { readonly type: "failed"; readonly id: string; readonly message: string; readonly stderrTail?: string }
  | { readonly type: "cancelled"; readonly id: string }
  | { readonly type: "error"; readonly message: string; readonly id?: string }

const bridgeTypes = new Set(["welcome", "ping", "accepted", "started", "retry", "event", "done", "failed", "cancelled", "error"])

export const encode = (message: DriverMessage, token: string | undefined): Array<Buffer> => [
  Buffer.from(JSON.stringify({ v: protocolVersion, ...(token !== undefined ? { token } : {}), ...message }))
]

/** Parses a bridge message; throws with what is wrong (the driver treats that as a broken bridge). */
export const decode = (frames: ReadonlyArray<Buffer>): { readonly message: BridgeMessage; readonly payload: Buffer | undefined } => {
  if (frames.length < 1 || frames.length > 2) throw new Error(`expected 1–2 frames, got ${frames.length}`)
  const header: unknown = JSON.parse(frames[0]!.toString("utf8"))
  if (typeof header !== "object" || header === null) throw new Error("header frame is not a JSON object")
  const { v, type } = header as { v?: unknown; type?: unknown }
  if (v !== protocolVersion) throw new Error(`bridge speaks protocol v${String(v)}, this driver v${protocolVersion}`)
  if (typeof type !== "string" || !bridgeTypes.has(type)) throw new Error(`unknown message type ${JSON.stringify(type)}`)
  return { message: header as BridgeMessage, payload: frames[1] }
}
