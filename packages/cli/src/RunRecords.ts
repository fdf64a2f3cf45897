/**
 * One JSON record per `vw2 run` under VW2_HOME/runs, written when the run starts and rewritten when it
 * ends; `vw2 status` lists them. A record still "running" whose process is gone is reported as crashed.
 * The command line is stored with its secrets masked (docs/engine.md, "Secrets").
 */
import { redactText } from "@vw2/core"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export interface RunRecord {
  readonly id: string
  readonly experiment: string
  readonly file: string
  /** the command line, secrets masked: build it with `redactCommandLine` (structured `--set` masking) */
  readonly command: string
  readonly host: string
  readonly pid: number
  readonly executor: string
  readonly configHash: string
  readonly startedAt: string
  readonly endedAt?: string
  readonly status: "running" | "succeeded" | "failed" | "interrupted" | "crashed"
  readonly counts?: Readonly<Record<string, number>>
  readonly trackingRunId?: string
}

const writeAtomic = (file: string, text: string) => {
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, text)
  fs.renameSync(tmp, file)
}

export const newRunId = (): string => `${new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "")}-${process.pid}`

export const writeRunRecord = (runsDir: string, record: RunRecord): void => {
  fs.mkdirSync(runsDir, { recursive: true })
  // masked again as free text: a caller that passed the raw argv still leaks no remembered secret or URL password
  writeAtomic(path.join(runsDir, `${record.id}.json`), JSON.stringify({ ...record, command: redactText(record.command) }, null, 2))
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Most recent first. */
export const listRunRecords = (runsDir: string, limit: number): Array<RunRecord> => {
  if (!fs.existsSync(runsDir)) return []
  const records: Array<RunRecord> = []
  for (const name of fs.readdirSync(runsDir)) {
    if (!name.endsWith(".json")) continue
    try {
      const record = JSON.parse(fs.readFileSync(path.join(runsDir, name), "utf8")) as RunRecord
      const crashed = record.status === "running" && record.host === os.hostname() && !alive(record.pid)
      records.push(crashed ? { ...record, status: "crashed" } : record)
    } catch {
      // a record being rewritten right now: skip it this time
    }
  }
  return records.sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1)).slice(0, limit)
}
