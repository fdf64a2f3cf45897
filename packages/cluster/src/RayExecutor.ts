/**
 * The `ray` executor: every stage invocation becomes one Ray task (python/vw2_ray_bridge/task.py) that
 * runs a Node worker on whichever node Ray picks, with the stage's num_cpus / num_gpus / memory and Ray's
 * CUDA_VISIBLE_DEVICES. The driver talks to Ray through the bridge (BridgeClient: ZeroMQ DEALER ↔ ROUTER);
 * by default it starts its own bridge (BridgeProcess) connected to `address`. The scheduler, store and
 * tracker stay in the driver: executors never publish or track.
 *
 * Artifacts: with `artifacts: "shared-path"` (default) workers read inputs and write outputs at the paths in
 * the request, so VW2_HOME must be a path every node sees; `artifacts: "object-store"` moves them through
 * Ray's object store instead, for nodes without a shared filesystem (ArtifactTransport.ts, docs/ray.md).
 */
import type { ExecutorShape, InvocationEvent, InvocationOutcome, InvocationRequest } from "@vw2/core"
import { decodeEventLine, Executor, InvocationFailed, invocationFields, LocalExecutor } from "@vw2/core"
import { Data, Effect, Layer } from "effect"
import type { ArtifactTransport, PreferNode } from "./ArtifactTransport.ts"
import { defaultTransport, submitFields } from "./ArtifactTransport.ts"
import { BridgeClient } from "./BridgeClient.ts"
import type { BridgeProcess, BridgeProcessOptions } from "./BridgeProcess.ts"
import { startBridgeProcess } from "./BridgeProcess.ts"
import type { ClusterNode } from "./protocol.ts"
import { repoRoot } from "./paths.ts"
import * as RayHead from "./RayHead.ts"

/** Bridge tuning the executor passes through unchanged (documented on BridgeProcessOptions). Defaults here:
 * timeoutMs 5000, hwm 1000, forwardEnv VW2_*, TF_*, TFJS_*; bindHost $VW2_RAY_BIND_HOST else 127.0.0.1
 * (multi-node clusters need 0.0.0.0 plus advertiseHost and a token); advertiseHost $VW2_RAY_ADVERTISE_HOST;
 * token $VW2_RAY_BRIDGE_TOKEN. */
type BridgeTuning = Pick<
  BridgeProcessOptions,
  "heartbeatMs" | "timeoutMs" | "hwm" | "killGraceMs" | "forwardEnv" | "bindHost" | "advertiseHost" | "token"
>

export interface RayExecutorOptions extends BridgeTuning {
  /** Ray cluster address: "auto" (a head on this machine), "host:port", "ray://host:port"; default: defaultAddress() */
  readonly address?: string
  /** an already running bridge ("tcp://host:port") instead of starting one */
  readonly bridgeEndpoint?: string
  /** Node 24 binary every node runs the worker with (default: this driver's, process.execPath) */
  readonly nodePath?: string
  /** Ray retries of an invocation whose node worker or Ray worker was lost (default 2) */
  readonly maxRetries?: number
  /** how artifacts reach the nodes: "shared-path" or "object-store" (default $VW2_RAY_TRANSPORT, else "shared-path"; docs/ray.md) */
  readonly artifacts?: ArtifactTransport
  /** the Ray resource whose node an invocation should run on if it can (soft: a retry may go elsewhere) */
  readonly preferNode?: PreferNode
}

export class RayExecutorError extends Data.TaggedError("RayExecutorError")<{ readonly message: string }> {}

export interface RayExecutorShape extends ExecutorShape {
  readonly client: BridgeClient
  /** the bridge process this executor started (undefined with `bridgeEndpoint`) */
  readonly bridge: BridgeProcess | undefined
  readonly close: () => Promise<void>
}

const defaultForwardEnv = ["VW2_*", "TF_*", "TFJS_*"]

/** $RAY_ADDRESS, else the head `vw2 ray up` started (if it still runs), else "auto". */
export const defaultAddress = (): string => {
  if (process.env.RAY_ADDRESS) return process.env.RAY_ADDRESS
  const head = RayHead.readState()
  return head !== undefined && RayHead.isRunning(head) ? head.address : "auto"
}

/** Which node could ever hold this request; undefined when one can (cluster autoscaling is not assumed). */
export const unschedulable = (nodes: ReadonlyArray<ClusterNode>, r: { cpus: number; gpus: number; memoryMb: number }): string | undefined => {
  if (nodes.some((n) => n.cpus >= r.cpus && n.gpus >= r.gpus && n.memoryMb >= r.memoryMb)) return undefined
  const largest = nodes.map((n) => `${n.cpus} CPU/${n.gpus} GPU/${n.memoryMb} MB`).join(", ")
  return `needs ${r.cpus} CPU, ${r.gpus} GPU, ${r.memoryMb} MB on one node; the Ray cluster's nodes have ${largest || "nothing (no alive node)"}`
}

const runOnRay = (
  client: BridgeClient,
  settings: { nodePath: string; maxRetries: number; killGraceMs: number; transport: ArtifactTransport; preferNode: PreferNode | undefined },
  request: InvocationRequest,
  id: string,
  onEvent: (event: InvocationEvent) => void
): Effect.Effect<InvocationOutcome, InvocationFailed> =>
  Effect.callback<InvocationOutcome, InvocationFailed>((resume) => {
    const failed = (message: string, stderrTail?: string) =>
      new InvocationFailed({ invocationHash: request.invocationHash, step: request.step, message, ...(stderrTail ? { stderrTail } : {}) })
    let settled = false
    let onGone: (() => void) | undefined
    const uploads: Array<string> = []
    const finish = (result: Effect.Effect<InvocationOutcome, InvocationFailed> | undefined) => {
      client.release(id)
      if (onGone !== undefined) return onGone()
      if (settled || result === undefined) return
      settled = true
      resume(result)
    }
    client.open(id, (notice) => {
      if (notice._tag === "dead") return finish(Effect.fail(failed(notice.reason)))
      const { message, payload } = notice
      switch (message.type) {
        case "started":
          return onEvent({ type: "started", gpus: message.gpus })
        case "retry":
          uploads.length = 0
          return onEvent({ type: "log", timestamp: Date.now(), message: `ray: node worker lost; attempt ${message.attempt} on ${message.node} (GPUs ${message.gpus.join(",") || "none"})` })
        case "event": {
          // the node worker's event line, verbatim (the bridge's own started/done/failed messages settle the invocation)
          const event = payload === undefined ? undefined : decodeEventLine(payload.toString("utf8"))
          if (event === undefined || event.type === "started" || event.type === "done" || event.type === "failed") return
          if (event.type === "upload") uploads.push(event.path)
          return onEvent(event)
        }
        case "done":
          return finish(Effect.succeed({ gpus: message.gpus, uploads: message.uploads.length > 0 ? message.uploads : uploads }))
        case "failed":
          return finish(Effect.fail(failed(message.message, message.stderrTail)))
        case "cancelled":
          return finish(Effect.fail(failed("cancelled")))
        case "error":
          return finish(Effect.fail(failed(`ray bridge rejected the invocation: ${message.message}`)))
        default:
          return
      }
    })
    const { resources } = request
    client.send({
      type: "submit",
      id,
      spec: {
        protocol: 1,
        experimentFile: request.experimentFile,
        ...invocationFields(request),
        cpus: Math.ceil(resources.cpus)
      },
      resources: { cpus: resources.cpus, gpus: resources.gpus, memoryMb: resources.memoryMb },
      maxRetries: settings.maxRetries,
      node: settings.nodePath,
      entry: LocalExecutor.workerEntry,
      cwd: repoRoot,
      ...submitFields(settings.transport, settings.preferNode, request)
    }).catch((error: unknown) => finish(Effect.fail(failed(`could not send to the ray bridge: ${error instanceof Error ? error.message : String(error)}`))))

    // Interruption: ask the bridge to cancel the Ray task (it kills the worker's process group) and
    // complete once it confirms, the bridge is gone, or the grace period plus a margin ran out.
    return Effect.callback<void>((done) => {
      settled = true
      if (client.deadReason !== undefined) return done(Effect.void)
      const timer = setTimeout(() => {
        client.release(id)
        done(Effect.void)
      }, settings.killGraceMs + 15_000)
      onGone = () => {
        clearTimeout(timer)
        done(Effect.void)
      }
      void client.send({ type: "cancel", id }).catch(() => onGone?.())
    })
  })

/** Starts (or connects to) the bridge and returns the executor; `close` says bye and stops our bridge. */
export const makeRayExecutor = (options: RayExecutorOptions = {}): Effect.Effect<RayExecutorShape, RayExecutorError> =>
  Effect.tryPromise({
    try: async () => {
      const transport = options.artifacts ?? defaultTransport()
      const address = options.address ?? defaultAddress()
      const token = options.token ?? process.env.VW2_RAY_BRIDGE_TOKEN
      const timeoutMs = options.timeoutMs ?? 5000
      const heartbeatMs = options.heartbeatMs ?? 1000
      const killGraceMs = options.killGraceMs ?? 3000
      const bindHost = options.bindHost ?? process.env.VW2_RAY_BIND_HOST
      const advertiseHost = options.advertiseHost ?? process.env.VW2_RAY_ADVERTISE_HOST
      const bridge = options.bridgeEndpoint === undefined
        ? await startBridgeProcess({
          ...(bindHost ? { bindHost } : {}),
          ...(advertiseHost ? { advertiseHost } : {}),
          rayAddress: address,
          heartbeatMs,
          timeoutMs,
          killGraceMs,
          forwardEnv: options.forwardEnv ?? defaultForwardEnv,
          ...(options.hwm !== undefined ? { hwm: options.hwm } : {}),
          ...(token !== undefined ? { token } : {})
        })
        : undefined
      const endpoint = options.bridgeEndpoint ?? bridge!.endpoint
      let client: BridgeClient
      try {
        client = await BridgeClient.connect({ endpoint, heartbeatMs, timeoutMs, connectTimeoutMs: Math.max(timeoutMs, 10_000), ...(token !== undefined ? { token } : {}), ...(options.hwm !== undefined ? { hwm: options.hwm } : {}) })
      } catch (error) {
        await bridge?.stop()
        throw error
      }
      // our own bridge exiting is known at once, without waiting for the heartbeat timeout
      void bridge?.exited.then((how) => client.declareDead(`ray bridge process (pid ${bridge.pid}) ${how}; last stderr: ${bridge.stderrTail().split("\n").at(-1) ?? ""}`))
      const settings = { nodePath: options.nodePath ?? process.execPath, maxRetries: options.maxRetries ?? 2, killGraceMs, transport, preferNode: options.preferNode }
      let next = 0
      const gpus = client.nodes.reduce((n, node) => n + node.gpus, 0)
      const cpus = client.nodes.reduce((n, node) => n + node.cpus, 0)
      const shape: RayExecutorShape = {
        name: "ray",
        describe: () => `ray: ${address} via bridge ${endpoint}, ${client.nodes.length} node(s), ${cpus} CPUs, ${gpus} GPUs, artifacts ${transport}`,
        canRun: (resources) => unschedulable(client.nodes, resources),
        run: (request, onEvent) => runOnRay(client, settings, request, `${request.invocationHash.slice(0, 16)}-${++next}`, onEvent),
        client,
        bridge,
        close: async () => {
          client.close()
          await bridge?.stop()
        }
      }
      return shape
    },
    catch: (error) => new RayExecutorError({ message: `ray executor: ${error instanceof Error ? error.message : String(error)}` })
  })

/** The executor as a layer; the bridge is stopped when the layer's scope ends. A bridge that cannot start is a defect with its reason. */
export const layer = (options?: RayExecutorOptions): Layer.Layer<Executor> =>
  Layer.effect(
    Executor,
    Effect.map(
      Effect.acquireRelease(
        makeRayExecutor(options).pipe(Effect.mapError((e) => new Error(e.message)), Effect.orDie),
        (executor) => Effect.promise(() => executor.close())
      ),
      (executor): ExecutorShape => executor
    )
  )
