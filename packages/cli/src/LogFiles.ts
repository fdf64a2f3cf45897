/**
 * Keeps every invocation's log lines (stage ctx.log, stdout, stderr) in
 * VW2_HOME/logs/<run id>/<step>-<hash>.log, so the live display can stay compact and failures can point
 * at the full log. An observer of the run-event stream (its `log` events). Lines are written with secrets
 * masked (URL passwords, the experiment's secret values; docs/engine.md, "Secrets").
 */
import { redactText, type RunObserver } from "@vw2/core"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { perInvocation } from "./Progress.ts"

export const logFileObserver = (dir: string): RunObserver & { readonly fileFor: (step: string, hash: string) => string | undefined } => {
  const fileFor = (step: string, hash: string) => path.join(dir, `${step}-${hash.slice(0, 12)}.log`)
  const written = new Set<string>()
  const handle = perInvocation((event, inv) => {
    if (event.type !== "log" || inv === undefined) return
    const file = fileFor(inv.step, inv.hash)
    if (!written.has(file)) {
      fs.mkdirSync(dir, { recursive: true })
      written.add(file)
    }
    fs.appendFileSync(file, `${new Date(event.timestamp).toISOString()} ${redactText(event.message)}\n`)
  })
  return {
    onEvent: (event) => Effect.sync(() => handle(event)),
    fileFor: (step, hash) => (written.has(fileFor(step, hash)) ? fileFor(step, hash) : undefined)
  }
}
