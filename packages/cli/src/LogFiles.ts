/**
 * Keeps every invocation's log lines (stage ctx.log, stdout, stderr) in
 * VW2_HOME/logs/<run id>/<step>-<hash>.log, so the live display can stay compact and failures can point
 * at the full log. Lines are written with secrets masked (URL passwords, the experiment's secret values;
 * docs/engine.md, "Secrets").
 */
import { redactText, type SchedulerObserver } from "@vw2/core"
import * as fs from "node:fs"
import * as path from "node:path"

export const logFileObserver = (dir: string): SchedulerObserver & { readonly fileFor: (step: string, hash: string) => string | undefined } => {
  const fileFor = (step: string, hash: string) => path.join(dir, `${step}-${hash.slice(0, 12)}.log`)
  const written = new Set<string>()
  return {
    onLog: (inv, message) => {
      const file = fileFor(inv.step, inv.hash)
      if (!written.has(file)) {
        fs.mkdirSync(dir, { recursive: true })
        written.add(file)
      }
      fs.appendFileSync(file, `${new Date().toISOString()} ${redactText(message)}\n`)
    },
    fileFor: (step, hash) => (written.has(fileFor(step, hash)) ? fileFor(step, hash) : undefined)
  }
}
