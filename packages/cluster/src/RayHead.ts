/**
 * A local Ray head for development and tests (`vw2 ray up|down`, the test suite's globalSetup).
 *
 * Every port the head opens comes from the project's range 6300–6399: head slot s uses 6300+10s … 6308+10s
 * for its services and 6340+30s … 6369+30s for worker processes (slots 0 and 1); bridges bind 6320–6339.
 * `ray start` is launched as a process-group leader and every Ray daemon inherits that group, so stopping
 * a head kills exactly that group (SIGTERM, then SIGKILL) — never `ray stop`, which would end every Ray
 * process of every user on the machine.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { rayCli } from "./paths.ts"

export interface HeadOptions {
  readonly cpus?: number
  /** logical GPUs: Ray schedules them without any device present */
  readonly gpus?: number
  /** plasma store size; kept small, the machine is shared */
  readonly objectStoreMb?: number
  /** 0 or 1; default: the first whose ports are free */
  readonly slot?: number
}

export interface HeadInfo {
  /** GCS address for ray.init / RAY_ADDRESS */
  readonly address: string
  readonly slot: number
  /** process group of every daemon of this head */
  readonly pgid: number
  readonly tempDir: string
  readonly cpus: number
  readonly gpus: number
}

const slots = [0, 1] as const

const portFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = net.createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "0.0.0.0", () => server.close(() => resolve(true)))
  })

const portsOf = (slot: number) => {
  const base = 6300 + 10 * slot
  return {
    gcs: base,
    args: [
      `--port=${base}`,
      `--node-manager-port=${base + 1}`,
      `--object-manager-port=${base + 2}`,
      `--ray-client-server-port=${base + 3}`,
      `--dashboard-port=${base + 4}`,
      `--dashboard-agent-listen-port=${base + 5}`,
      `--dashboard-agent-grpc-port=${base + 6}`,
      `--metrics-export-port=${base + 7}`,
      `--runtime-env-agent-port=${base + 8}`,
      `--min-worker-port=${6340 + 30 * slot}`,
      `--max-worker-port=${6369 + 30 * slot}`
    ],
    all: [...Array.from({ length: 9 }, (_, i) => base + i)]
  }
}

const freeSlot = async (wanted: number | undefined): Promise<number> => {
  for (const slot of wanted === undefined ? slots : [wanted]) {
    const free = await Promise.all(portsOf(slot).all.map(portFree))
    if (free.every((f) => f)) return slot
  }
  throw new Error(`no free Ray head slot: ports ${wanted === undefined ? "6300–6318" : `${6300 + 10 * wanted}–${6308 + 10 * wanted}`} are in use (a head already running? \`vw2 ray down\`)`)
}

/** Starts a head and resolves once `ray start` returned (its daemons keep running in their own group). */
export const startHead = async (options: HeadOptions = {}): Promise<HeadInfo> => {
  const slot = await freeSlot(options.slot)
  const ports = portsOf(slot)
  // short path: Ray puts unix sockets under it (108-byte limit)
  const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), `vw2ray${slot}-`))
  const cpus = options.cpus ?? 2
  const gpus = options.gpus ?? 0
  const args = [
    "start", "--head", "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats",
    `--num-cpus=${cpus}`, `--num-gpus=${gpus}`, `--temp-dir=${tempDir}`,
    `--object-store-memory=${(options.objectStoreMb ?? 128) * 1024 * 1024}`,
    ...ports.args
  ]
  const child = spawn(rayCli(), args, { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RAY_USAGE_STATS_ENABLED: "0" } })
  let output = ""
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()))
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (c) => resolve(c))
  })
  const info: HeadInfo = { address: `127.0.0.1:${ports.gcs}`, slot, pgid: child.pid!, tempDir, cpus, gpus }
  if (code !== 0) {
    await stopHead(info)
    throw new Error(`ray start failed (status ${code}):\n${output.split("\n").slice(-15).join("\n")}`)
  }
  return info
}

const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

/** Stops every daemon of the head (its process group) and removes its temp dir. */
export const stopHead = async (head: Pick<HeadInfo, "pgid" | "tempDir">, graceMs = 8000): Promise<void> => {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-head.pgid, s)
    } catch {}
  }
  signal("SIGTERM")
  const deadline = Date.now() + graceMs
  while (groupAlive(head.pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
  if (groupAlive(head.pgid)) signal("SIGKILL")
  while (groupAlive(head.pgid) && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 100))
  fs.rmSync(head.tempDir, { recursive: true, force: true })
}

/** Where `vw2 ray up` records the head it started: `<VW2_HOME>/ray/head.json`. */
export const stateFile = (home = process.env.VW2_HOME ?? ".vw2"): string => path.resolve(home, "ray", "head.json")

export const readState = (file = stateFile()): HeadInfo | undefined =>
  fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as HeadInfo) : undefined

export const writeState = (head: HeadInfo, file = stateFile()): void => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, JSON.stringify(head, null, 2) + "\n")
}

export const isRunning = (head: HeadInfo): boolean => groupAlive(head.pgid)
