/**
 * The processes a command started, read from Linux `/proc`: what a process stage kills on interruption
 * beyond its own process group. `torchrun` starts each rank with `start_new_session=True`, so killing the
 * launcher's group alone would orphan the ranks once the launcher itself is SIGKILLed. Elsewhere (no
 * `/proc`) every function here returns nothing and process-group kills are all there is.
 */
import * as fs from "node:fs"

export interface ProcessInfo {
  readonly pid: number
  readonly ppid: number
  readonly pgrp: number
  /** clock ticks since boot: tells a process from a later one that reuses its pid */
  readonly start: number
  readonly zombie: boolean
}

/** /proc/<pid>/stat, or undefined when the process is gone. The command name may hold spaces and ")". */
export const processInfo = (pid: number): ProcessInfo | undefined => {
  let text: string
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  } catch {
    return undefined
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
  // after "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
  // cutime cstime priority nice threads itrealvalue starttime
  return { pid, ppid: Number(fields[1]), pgrp: Number(fields[2]), start: Number(fields[19]), zombie: fields[0] === "Z" || fields[0] === "X" }
}

const allProcesses = (): Array<ProcessInfo> => {
  let entries: Array<string>
  try {
    entries = fs.readdirSync("/proc")
  } catch {
    return []
  }
  return entries.filter((e) => /^\d+$/.test(e)).flatMap((e) => processInfo(Number(e)) ?? [])
}

/** Live descendants of `root` (children, their children, ...), and members of process group `root`. */
export const descendantsOf = (root: number): Array<ProcessInfo> => {
  const all = allProcesses().filter((p) => !p.zombie)
  const children = new Map<number, Array<ProcessInfo>>()
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p])
  const found = new Map<number, ProcessInfo>()
  const queue = [root]
  while (queue.length > 0) {
    for (const child of children.get(queue.pop()!) ?? []) {
      if (found.has(child.pid) || child.pid === root) continue
      found.set(child.pid, child)
      queue.push(child.pid)
    }
  }
  for (const p of all) if (p.pgrp === root && p.pid !== root) found.set(p.pid, p)
  return [...found.values()]
}

/** Live members of process group `pgid` (other than a leader that is gone). */
export const groupMembers = (pgid: number): Array<ProcessInfo> => allProcesses().filter((p) => !p.zombie && p.pgrp === pgid)

/** true while `p` (the very process, not a later one with its pid) runs; zombies count as gone. */
export const stillRunning = (p: Pick<ProcessInfo, "pid" | "start">): boolean => {
  const now = processInfo(p.pid)
  return now !== undefined && !now.zombie && now.start === p.start
}

/** Sends `signal` to `pid` (or to a group, for a negative number); false when there was nothing to signal. */
export const signalProcess = (pid: number, signal: NodeJS.Signals): boolean => {
  try {
    process.kill(pid, signal)
    return true
  } catch {
    return false
  }
}
