/**
 * Parent of a detached embedded MLflow server: runs `mlflow server` and stops it (and itself) when no vw2
 * process has used it for a while (the lease file is not touched), when its VW2_HOME disappears, or when
 * mlflow exits. Without it, every temp VW2_HOME (tests, scripts) would leave a server behind forever.
 *   node serverKeeper.ts <dir> <idleMinutes> <mlflow> <args...>
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const [dir, idleMinutes, bin, ...args] = process.argv.slice(2) as [string, string, string, ...Array<string>]
const lease = path.join(dir, "lease")
const idleMs = Number(idleMinutes) * 60_000
const child = spawn(bin, args, { cwd: dir, stdio: "inherit", env: process.env })

const stop = (why: string) => {
  process.stdout.write(`[vw2 keeper] stopping the MLflow server: ${why}\n`)
  child.kill("SIGTERM")
  setTimeout(() => child.kill("SIGKILL"), 10_000).unref()
}
child.once("exit", (code) => process.exit(code ?? 0))
process.once("SIGTERM", () => stop("SIGTERM"))
process.once("SIGINT", () => stop("SIGINT"))
setInterval(() => {
  if (!fs.existsSync(dir)) return stop(`${dir} is gone`)
  if (idleMs <= 0) return
  let last = 0
  try {
    last = fs.statSync(lease).mtimeMs
  } catch {
    // no lease yet: counts from now
    fs.writeFileSync(lease, "")
    return
  }
  if (Date.now() - last > idleMs) stop(`unused for ${idleMinutes} minutes`)
}, Math.min(30_000, Math.max(1000, idleMs / 4)))
