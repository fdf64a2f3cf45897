/** Drives the real `vw2` binary as a subprocess against a temp VW2_HOME and the core fixture experiment. */
import { afterAll } from "vitest"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
export const fixture = fileURLToPath(new URL("../../core/test/fixtures/experiment.ts", import.meta.url))

export interface Sandbox {
  readonly home: string
  readonly log: string
  readonly env: NodeJS.ProcessEnv
}

const created: Array<string> = []
// registered while the importing test file is collected, so it runs after that file's tests
afterAll(() => {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

/** A fresh VW2_HOME (removed after the test file) and the env that points vw2 at it. */
export const sandbox = (name: string): Sandbox => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `vw2-cli-${name}-`))
  created.push(home)
  const log = path.join(home, "exec.log")
  // these tests are about the engine; tracking has its own tests in packages/tracking
  return { home, log, env: { ...process.env, VW2_HOME: home, VW2_TEST_LOG: log, VW2_TRACKER: "none" } }
}

export interface CliResult {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

export const vw2 = (box: Sandbox, args: ReadonlyArray<string>): CliResult => {
  const r = spawnSync(process.execPath, [bin, ...args], { env: box.env, encoding: "utf8", timeout: 120_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Starts vw2 without waiting; the caller signals/awaits it. */
export const vw2Async = (box: Sandbox, args: ReadonlyArray<string>) => {
  const child = spawn(process.execPath, [bin, ...args], { env: box.env, stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d) => (stdout += String(d)))
  child.stderr.on("data", (d) => (stderr += String(d)))
  const done = new Promise<CliResult>((resolve) => child.on("close", (status) => resolve({ status, stdout, stderr })))
  return { child, done }
}

export { readLog, type LogLine } from "../../core/test/fixtures/executionLog.ts"

export const waitFor = async (what: string, predicate: () => boolean, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** file path → sha256 for every published file of every store entry (what "identical results" compares) */
export const storeContents = (home: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const storeDir = path.join(home, "store")
  for (const hash of fs.readdirSync(storeDir)) {
    const manifest = JSON.parse(fs.readFileSync(path.join(storeDir, hash, "manifest.json"), "utf8")) as { files: Array<{ path: string; sha256: string }> }
    for (const f of manifest.files) out[`${hash}/${f.path}`] = f.sha256
  }
  return out
}
