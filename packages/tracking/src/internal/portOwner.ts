/**
 * Which processes listen on a local TCP port (Linux /proc). A freshly started MLflow server that lost the
 * race for its port (another server bound it between our free-port probe and its own bind) exits, but
 * until it does, /health on that port is answered by the OTHER server; this tells the two apart.
 * Hand-written: no maintained npm package reads socket ownership without shelling out to lsof/ss.
 */
import * as fs from "node:fs"

const listeningInodes = (port: number): Set<string> => {
  const inodes = new Set<string>()
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0")
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string
    try {
      text = fs.readFileSync(table, "utf8")
    } catch {
      continue
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/)
      // cols: sl local_address rem_address st ... inode (10th)
      if (cols.length < 10 || cols[3] !== "0A") continue // 0A = LISTEN
      if (cols[1]!.split(":")[1] === hexPort) inodes.add(cols[9]!)
    }
  }
  return inodes
}

/** Pids with a listening socket on `port`; undefined where that cannot be known (no /proc, no permission). */
export const listeningPids = (port: number): Set<number> | undefined => {
  if (!fs.existsSync("/proc/net/tcp")) return undefined
  const inodes = listeningInodes(port)
  if (inodes.size === 0) return undefined
  const pids = new Set<number>()
  let readable = false
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    let fds: Array<string>
    try {
      fds = fs.readdirSync(`/proc/${entry}/fd`)
    } catch {
      continue
    }
    readable = true
    for (const fd of fds) {
      try {
        const link = fs.readlinkSync(`/proc/${entry}/fd/${fd}`)
        const m = /^socket:\[(\d+)\]$/.exec(link)
        if (m !== null && inodes.has(m[1]!)) pids.add(Number(entry))
      } catch {
        // fd closed meanwhile
      }
    }
  }
  // nobody we can see holds it (another pid namespace, no permission): ownership unknown
  return readable && pids.size > 0 ? pids : undefined
}

const parentOf = (pid: number): number | undefined => {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces and parentheses
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
  } catch {
    return undefined
  }
}

/** Whether `pid` is `root` or one of its descendants. */
export const isInTree = (pid: number, root: number): boolean => {
  for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; p = parentOf(p), hops++) {
    if (p === root) return true
  }
  return false
}

/**
 * "ours" when a process of `root`'s tree listens on `port`, "other" when only other processes do, and
 * "unknown" where ownership cannot be read (then callers trust /health as before).
 */
export const portOwnership = (port: number, root: number): "ours" | "other" | "unknown" => {
  const pids = listeningPids(port)
  if (pids === undefined) return "unknown"
  return [...pids].some((pid) => isInTree(pid, root)) ? "ours" : "other"
}
