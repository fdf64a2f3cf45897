/**
 * A real `mlflow server` for the tests (the embedded default: SQLite store + proxied artifacts in a temp dir), startable again on
 * the same port and backend after being killed (the outage tests do exactly that).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { defaultWorkers, findFreePort, findMlflowBin, resolveApp, resolveStore, serverArgs, serverEnv, waitForHealth } from "../../src/LocalServer.ts"
import { isProcessAlive } from "../../src/Spool.ts"

export interface TestServer {
  readonly url: string
  readonly port: number
  readonly dir: string
}

const pidFile = (dir: string) => path.join(dir, "server.pid")

/** Starts the server for `dir` on `port` (detached process group, pid recorded in dir/server.pid). */
export const startServer = async (dir: string, port: number): Promise<TestServer> => {
  fs.mkdirSync(dir, { recursive: true })
  const log = path.join(dir, "server.log")
  const fd = fs.openSync(log, "a")
  // the embedded server's default configuration (store, app, workers), so the suite tests what users get
  const bin = findMlflowBin()
  const child = spawn(bin, serverArgs(dir, port, defaultWorkers(), resolveStore(bin), resolveApp(bin)), { cwd: dir, detached: true, stdio: ["ignore", fd, fd], env: serverEnv() })
  fs.closeSync(fd)
  child.unref()
  fs.writeFileSync(pidFile(dir), String(child.pid))
  const url = `http://127.0.0.1:${port}`
  await waitForHealth(url, child.pid, 180_000, log)
  // the first API call initialises the store (seconds on a busy machine): pay it here, not in a test
  await fetch(`${url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=warm-up`)
  return { url, port, dir }
}

/** Kills the server of `dir` hard (SIGKILL to its process group): the outage the tracker must survive. */
export const killServer = async (dir: string): Promise<void> => {
  let pid: number
  try {
    pid = Number(fs.readFileSync(pidFile(dir), "utf8"))
  } catch {
    return
  }
  try {
    process.kill(-pid, "SIGKILL")
  } catch {
    // already gone
  }
  for (let i = 0; i < 100 && isProcessAlive(pid); i++) await new Promise((r) => setTimeout(r, 50))
  fs.rmSync(pidFile(dir), { force: true })
}

export const freeTestPort = () => findFreePort([5501, 5599])
