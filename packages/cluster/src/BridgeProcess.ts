/**
 * Starts the Python bridge (`python -m vw2_ray_bridge`) as a child of the driver and waits for its ready
 * line. The bridge leads its own process group and holds our pipe as stdin: when the driver dies (even
 * kill -9) the bridge sees EOF, cancels its Ray tasks and exits.
 */
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import * as readline from "node:readline"
import { bridgePythonPath, rayPython, repoRoot } from "./paths.ts"

export interface BridgeProcessOptions {
  /** Ray address for ray.init: "auto", "host:port", or "ray://host:port" */
  readonly rayAddress: string
  readonly heartbeatMs?: number
  readonly timeoutMs?: number
  readonly hwm?: number
  readonly killGraceMs?: number
  /** variable names (NAME or PREFIX*) handed to every Ray task through runtime_env */
  readonly forwardEnv?: ReadonlyArray<string>
  /** interface to bind; anything but loopback requires `token` */
  readonly bindHost?: string
  /** host Ray tasks on other nodes use to reach the bridge's events socket (when bindHost is 0.0.0.0) */
  readonly advertiseHost?: string
  readonly token?: string
  /** seconds to wait for ray.init and the sockets (default 120: a loaded 2-core box is slow) */
  readonly readyTimeoutMs?: number
}

export interface BridgeProcess {
  readonly endpoint: string
  readonly pid: number
  readonly child: ChildProcess
  /** last lines of the bridge's stderr */
  readonly stderrTail: () => string
  /** resolves when the process is gone (with how it ended) */
  readonly exited: Promise<string>
  /** asks the bridge to stop (SIGTERM: it cancels its tasks first); SIGKILL after `graceMs` */
  readonly stop: (graceMs?: number) => Promise<void>
}

export const startBridgeProcess = (options: BridgeProcessOptions): Promise<BridgeProcess> =>
  new Promise((resolve, reject) => {
    const args = [
      "-m", "vw2_ray_bridge",
      "--ray-address", options.rayAddress,
      "--exit-on-stdin-eof",
      "--heartbeat-ms", String(options.heartbeatMs ?? 1000),
      "--timeout-ms", String(options.timeoutMs ?? 5000),
      "--hwm", String(options.hwm ?? 1000),
      "--kill-grace-ms", String(options.killGraceMs ?? 3000),
      "--forward-env", (options.forwardEnv ?? []).join(","),
      "--bind-host", options.bindHost ?? "127.0.0.1",
      ...(options.advertiseHost !== undefined ? ["--advertise-host", options.advertiseHost] : [])
    ]
    const child = spawn(rayPython(), args, {
      cwd: repoRoot,
      env: {
        ...process.env,
        PYTHONPATH: [bridgePythonPath, process.env.PYTHONPATH].filter((p) => p).join(":"),
        PYTHONUNBUFFERED: "1",
        ...(options.token !== undefined ? { VW2_RAY_BRIDGE_TOKEN: options.token } : {})
      },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true
    })
    const tail: Array<string> = []
    readline.createInterface({ input: child.stderr! }).on("line", (line) => {
      tail.push(line)
      if (tail.length > 40) tail.shift()
      if (process.env.VW2_RAY_BRIDGE_DEBUG) process.stderr.write(`[bridge] ${line}\n`)
    })
    child.stdin!.on("error", () => {})
    const exited = new Promise<string>((done) => {
      child.on("close", (code, signal) => done(signal !== null ? `killed by ${signal}` : `exited with status ${code}`))
    })
    let ready = false
    const timer = setTimeout(() => {
      if (ready) return
      try {
        process.kill(-child.pid!, "SIGKILL")
      } catch {}
      reject(new Error(`ray bridge: not ready after ${(options.readyTimeoutMs ?? 120_000) / 1000}s (ray.init ${options.rayAddress}); stderr:\n${tail.join("\n")}`))
    }, options.readyTimeoutMs ?? 120_000)
    child.on("error", (error) => {
      clearTimeout(timer)
      reject(new Error(`ray bridge: could not start ${rayPython()}: ${error.message}`))
    })
    void exited.then((how) => {
      clearTimeout(timer)
      if (!ready) reject(new Error(`ray bridge ${how} before it was ready (ray address ${options.rayAddress}):\n${tail.slice(-12).join("\n")}`))
    })
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      if (ready || !line.startsWith("{")) return
      let info: { ready?: unknown; endpoint?: unknown }
      try {
        info = JSON.parse(line) as typeof info
      } catch {
        return
      }
      if (info.ready !== true || typeof info.endpoint !== "string") return
      ready = true
      clearTimeout(timer)
      const stop = async (graceMs = 15_000) => {
        if (child.exitCode !== null || child.signalCode !== null) return
        const kill = (signal: NodeJS.Signals) => {
          try {
            process.kill(-child.pid!, signal)
          } catch {}
        }
        kill("SIGTERM")
        const escalate = setTimeout(() => kill("SIGKILL"), graceMs)
        await exited
        clearTimeout(escalate)
      }
      resolve({ endpoint: info.endpoint, pid: child.pid!, child, stderrTail: () => tail.join("\n"), exited, stop })
    })
  })
