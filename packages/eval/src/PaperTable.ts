/**
 * The eval table in the paper's layout (Table 1 of VideoWorld 2): per method row, step-wise success of
 * the folding task at steps 1..K, final success of each building task, then SSIM↑ and LPIPS↓.
 * Rendered as markdown and as JSON (the JSON is what tools and the MLflow artifact consumers read).
 */
import type { Availability } from "./Availability.ts"

export interface TaskSuccess {
  readonly task: string
  /** step-wise success in % for step 1..K (step k counts only if steps 1..k succeeded) */
  readonly stepSuccessPct: ReadonlyArray<number>
  readonly episodes: number
}

export interface TableRow {
  readonly method: string
  readonly training: string
  readonly tasks: ReadonlyArray<TaskSuccess>
  readonly ssim: Availability<number>
  readonly lpips: Availability<number>
}

/** Which tasks get one column per step (the paper: folding) and which one column of final success (blocks). */
export interface PaperLayout {
  readonly stepwise: ReadonlyArray<string>
  readonly final: ReadonlyArray<string>
}

/** Default layout: tasks with the most steps are step-wise (folding, 7 steps), the others final-only. */
export const defaultLayout = (tasks: ReadonlyArray<TaskSuccess>): PaperLayout => {
  const most = Math.max(0, ...tasks.map((t) => t.stepSuccessPct.length))
  return {
    stepwise: tasks.filter((t) => t.stepSuccessPct.length === most).map((t) => t.task),
    final: tasks.filter((t) => t.stepSuccessPct.length !== most).map((t) => t.task)
  }
}

export interface PaperTable {
  readonly format: "vw2-eval-table/1"
  readonly layout: PaperLayout
  readonly columns: ReadonlyArray<string>
  /** one entry per row; `null` where a metric is unavailable (the reason is in `notes`) */
  readonly rows: ReadonlyArray<{ readonly method: string; readonly training: string; readonly values: ReadonlyArray<number | null> }>
  readonly notes: ReadonlyArray<string>
  readonly detail: ReadonlyArray<TableRow>
}

const finalOf = (t: TaskSuccess | undefined): number | null =>
  t === undefined || t.stepSuccessPct.length === 0 ? null : t.stepSuccessPct[t.stepSuccessPct.length - 1]!

export const buildPaperTable = (rows: ReadonlyArray<TableRow>, layout?: PaperLayout): PaperTable => {
  if (rows.length === 0) throw new Error("buildPaperTable: no rows")
  const resolved = layout ?? defaultLayout(rows[0]!.tasks)
  const stepCounts = resolved.stepwise.map((task) =>
    Math.max(0, ...rows.map((r) => r.tasks.find((t) => t.task === task)?.stepSuccessPct.length ?? 0))
  )
  const columns = [
    ...resolved.stepwise.flatMap((task, i) => Array.from({ length: stepCounts[i]! }, (_, k) => resolved.stepwise.length > 1 ? `${task} ${k + 1}` : `${k + 1}`)),
    ...resolved.final,
    "SSIM",
    "LPIPS"
  ]
  const notes: Array<string> = []
  const tableRows = rows.map((row) => {
    const values: Array<number | null> = []
    resolved.stepwise.forEach((task, i) => {
      const found = row.tasks.find((t) => t.task === task)
      for (let k = 0; k < stepCounts[i]!; k++) values.push(found?.stepSuccessPct[k] ?? null)
    })
    for (const task of resolved.final) values.push(finalOf(row.tasks.find((t) => t.task === task)))
    for (const [name, metric] of [["SSIM", row.ssim], ["LPIPS", row.lpips]] as const) {
      if (metric._tag === "available") values.push(metric.value)
      else {
        values.push(null)
        notes.push(`${row.method} (${row.training}): ${name} unavailable — ${metric.reason}`)
      }
    }
    return { method: row.method, training: row.training, values }
  })
  return { format: "vw2-eval-table/1", layout: resolved, columns, rows: tableRows, notes, detail: rows }
}

const cell = (column: string, v: number | null) =>
  v === null ? "n/a" : column === "SSIM" || column === "LPIPS" ? v.toFixed(3).replace(/^0\./, ".") : v.toFixed(1)

export const tableMarkdown = (table: PaperTable): string => {
  const header = `| method | training | ${table.columns.join(" | ")} |`
  const rule = `|${"---|".repeat(table.columns.length + 2)}`
  const lines = table.rows.map((r) => `| ${r.method} | ${r.training} | ${r.values.map((v, i) => cell(table.columns[i]!, v)).join(" | ")} |`)
  const notes = table.notes.length > 0 ? ["", ...table.notes.map((n) => `- ${n}`)] : []
  const layoutLine = `step-wise columns: ${table.layout.stepwise.join(", ") || "none"}; final-success columns: ${table.layout.final.join(", ") || "none"}`
  return [header, rule, ...lines, "", layoutLine, ...notes, ""].join("\n")
}
