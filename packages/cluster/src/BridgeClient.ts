/**
 * The driver's end of the bridge: one ZeroMQ DEALER, a hello/welcome handshake, heartbeats both ways and
 * per-invocation message routing. Sends are serialised (zeromq allows one in flight) and wait while the
 * socket is at its high-water mark: back-pressure reaches the caller instead of dropping messages.
 *
 * Liveness: we ping every `heartbeatMs`; if nothing at all arrived from the bridge for `timeoutMs`, the
 * bridge is declared dead: every open invocation gets a `dead` notice (→ InvocationFailed) and later
 * submits fail at once. The bridge does the same for silent drivers (it cancels their Ray tasks).
 */
import { Dealer } from "zeromq"
import * as os from "node:os"
import type { BridgeMessage, ClusterNode, DriverMessage } from "./protocol.ts"
import { decode, encode } from "./protocol.ts"

export type InvocationNotice =
  | { readonly _tag: "message"; readonly message: BridgeMessage; readonly payload: Buffer | undefined }
  | { readonly _tag: "dead"; readonly reason: string }

export interface BridgeClientOptions {
  readonly endpoint: string
  readonly token?: string
  readonly heartbeatMs?: number
  readonly timeoutMs?: number
  readonly hwm?: number
  /** how long to wait for the welcome (default: timeoutMs) */
  readonly connectTimeoutMs?: number
}

export class BridgeClient {
  readonly endpoint: string
  readonly timeoutMs: number
  nodes: ReadonlyArray<ClusterNode> = []
  bridgePid = 0
  /** why the bridge is considered gone, once it is */
  deadReason: string | undefined
  private readonly socket: Dealer
  private readonly token: string | undefined
  private readonly handlers = new Map<string, (notice: InvocationNotice) => void>()
  private readonly onUnrouted: (message: string) => void
  private sendChain: Promise<void> = Promise.resolve()
  private lastHeard = Date.now()
  private heartbeat: NodeJS.Timeout | undefined
  private welcome: ((message: BridgeMessage & { type: "welcome" }) => void) | undefined
  private closed = false

  private constructor(options: BridgeClientOptions, onUnrouted: (message: string) => void) {
    this.endpoint = options.endpoint
    this.token = options.token
    this.timeoutMs = options.timeoutMs ?? 5000
    this.onUnrouted = onUnrouted
    this.socket = new Dealer({
      sendHighWaterMark: options.hwm ?? 1000,
      receiveHighWaterMark: options.hwm ?? 1000,
      linger: 0
    })
  }

  /** Connects, says hello and waits for the welcome (cluster nodes) or fails after the timeout. */
  static async connect(options: BridgeClientOptions, onUnrouted: (message: string) => void = (m) => process.stderr.write(`vw2 ray: ${m}\n`)): Promise<BridgeClient> {
    const client = new BridgeClient(options, onUnrouted)
    client.socket.connect(options.endpoint)
    void client.receiveLoop()
    const welcome = new Promise<BridgeMessage & { type: "welcome" }>((resolve) => (client.welcome = resolve))
    await client.send({ type: "hello", driver: `${os.hostname()}:${process.pid}` })
    const timeout = options.connectTimeoutMs ?? client.timeoutMs
    let timer: NodeJS.Timeout | undefined
    const result = await Promise.race([welcome, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), timeout)))])
    clearTimeout(timer)
    if (result === undefined) {
      client.close()
      throw new Error(`ray bridge at ${options.endpoint}: no welcome within ${timeout} ms (is it running? same token?)`)
    }
    client.nodes = result.nodes
    client.bridgePid = result.bridge.pid
    client.lastHeard = Date.now()
    const every = options.heartbeatMs ?? 1000
    client.heartbeat = setInterval(() => client.beat(), every)
    client.heartbeat.unref()
    return client
  }

  /** Registers the handler for an invocation id; it gets every message about it, or a dead notice. */
  open(id: string, handler: (notice: InvocationNotice) => void): void {
    if (this.deadReason !== undefined) return handler({ _tag: "dead", reason: this.deadReason })
    this.handlers.set(id, handler)
  }

  release(id: string): void {
    this.handlers.delete(id)
  }

  /** Queues a message; resolves once ZeroMQ accepted it (waits at the high-water mark). */
  send(message: DriverMessage): Promise<void> {
    const frames = encode(message, this.token)
    const next = this.sendChain.then(() => (this.closed ? undefined : this.socket.send(frames)))
    this.sendChain = next.catch(() => {})
    return next
  }

  close(): void {
    if (this.closed) return
    clearInterval(this.heartbeat)
    const bye = this.deadReason === undefined ? this.send({ type: "bye" }).catch(() => {}) : Promise.resolve()
    this.closed = true
    void bye.finally(() => this.socket.close())
    // a socket whose bye cannot go out (bridge gone) must not keep the process alive
    setTimeout(() => this.socket.closed || this.socket.close(), 200).unref()
  }

  private beat(): void {
    const silent = Date.now() - this.lastHeard
    if (silent > this.timeoutMs) {
      this.declareDead(`ray bridge at ${this.endpoint} (pid ${this.bridgePid}) silent for ${(silent / 1000).toFixed(1)} s (heartbeat timeout ${(this.timeoutMs / 1000).toFixed(1)} s): presumed dead`)
      return
    }
    void this.send({ type: "ping", t: Date.now() }).catch(() => {})
  }

  /** Fails every open invocation; also used when the driver knows the bridge process exited. */
  declareDead(reason: string): void {
    if (this.deadReason !== undefined) return
    this.deadReason = reason
    clearInterval(this.heartbeat)
    for (const [id, handler] of [...this.handlers]) {
      this.handlers.delete(id)
      handler({ _tag: "dead", reason })
    }
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        this.lastHeard = Date.now()
        let decoded
        try {
          decoded = decode(frames)
        } catch (error) {
          this.onUnrouted(`bridge sent a message this driver cannot read: ${error instanceof Error ? error.message : String(error)}`)
          continue
        }
        const { message, payload } = decoded
        if (message.type === "welcome") {
          this.welcome?.(message)
          continue
        }
        if (message.type === "ping") continue
        const id = "id" in message ? message.id : undefined
        const handler = id === undefined ? undefined : this.handlers.get(id)
        if (handler !== undefined) handler({ _tag: "message", message, payload })
        else if (message.type === "error") this.onUnrouted(`bridge rejected a message: ${message.message}`)
      }
    } catch (error) {
      if (!this.closed) this.declareDead(`ray bridge socket failed: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
}
