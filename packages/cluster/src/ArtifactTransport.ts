/**
 * How a stage's input and output artifacts reach the Ray node that runs it (docs/ray.md, "Nodes without a
 * shared filesystem"):
 *   - "shared-path": workers read and write the driver's store paths; every node mounts VW2_HOME at the same
 *     path (NFS, Lustre, …). Nothing is copied.
 *   - "object-store": nothing shared but the checkout. The bridge (beside the driver's store) puts each input
 *     directory into Ray's object store as a tar; the task unpacks it into its node's own store
 *     ($VW2_RAY_NODE_STORE, once per node and artifact), runs the stage on node-local paths and returns the
 *     packed outputs as its result, which the bridge writes into the driver's staging dir before the driver
 *     verifies and publishes (python/vw2_ray_bridge/transport.py).
 * Ray's object store rather than MLflow artifacts: it is already on every node, moves bytes node-to-node
 * with locality and spilling, keeps a retried task's inputs alive (the bridge owns them), and needs no
 * tracking server or run for a stage's inputs (runs may be untracked, `--no-track`).
 */
import type { InvocationRequest } from "@vw2/core"
import { Schema } from "effect"

export const ArtifactTransport = Schema.Literals(["shared-path", "object-store"])
export type ArtifactTransport = typeof ArtifactTransport.Type

/** The transport a CLI flag or $VW2_RAY_TRANSPORT names; throws naming the choices otherwise. */
export const parseTransport = (text: string): ArtifactTransport => {
  if (Schema.is(ArtifactTransport)(text)) return text
  throw new Error(`ray transport ${JSON.stringify(text)}: expected ${ArtifactTransport.literals.join(" | ")} (docs/ray.md)`)
}

/** $VW2_RAY_TRANSPORT, else "shared-path". */
export const defaultTransport = (): ArtifactTransport => {
  const given = process.env.VW2_RAY_TRANSPORT
  return given === undefined || given === "" ? "shared-path" : parseTransport(given)
}

/**
 * A Ray resource name whose node an invocation should run on, if it can: a soft node affinity, so a retry
 * after that node died runs elsewhere. E.g. a custom resource a node was started with (`ray start
 * --resources '{"node2": 1}'`) or `node:__internal_head__` for the head.
 */
export type PreferNode = (request: InvocationRequest) => string | undefined

/** What a submit message carries for these settings (the fields protocol.ts declares on `submit`). */
export const submitFields = (
  transport: ArtifactTransport,
  preferNode: PreferNode | undefined,
  request: InvocationRequest
): { readonly transport?: ArtifactTransport; readonly preferNode?: string } => {
  const node = preferNode?.(request)
  return { ...(transport !== "shared-path" ? { transport } : {}), ...(node !== undefined ? { preferNode: node } : {}) }
}
