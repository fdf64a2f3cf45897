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

/** A set of tasks reported together, one column per step (the paper: "paper folding" = plane + boat). */
export interface StepwiseGroup {
  readonly label: string
  readonly tasks: ReadonlyArray<string>
}

/** Which task groups get one column per step and which tasks one column of final success (blocks). */
export interface PaperLayout {
  readonly stepwise: ReadonlyArray<StepwiseGroup>
  readonly final: ReadonlyArray<string>
}

/**
 * Default layout, as the paper's Table 1: the folding tasks (`fold-*`) pooled into step-wise columns,
 * every other task one final-success column. Without folding tasks, every task is its own step-wise group.
 */
export const defaultLayout = (tasks: ReadonlyArray<TaskSuccess>): PaperLayout => {
  const folds = tasks.filter((t) => t.task.startsWith("fold")).map((t) => t.task)
  if (folds.length === 0) return { stepwise: tasks.map((t) => ({ label: t.task, tasks: [t.task] })), final: [] }
  return { stepwise: [{ label: "paper folding", tasks: folds }], final: tasks.filter((t) => !folds.includes(t.task)).map((t) => t.task) }
}

/** Episode-weighted mean success at each step over the group's tasks present in `row`. */
const pooled = (row: TableRow, group: StepwiseGroup): ReadonlyArray<number> | undefined => {
  const members = row.tasks.filter((t) => group.tasks.includes(t.task) && t.episodes > 0)
  if (members.length === 0) return undefined
  const steps = Math.max(...members.map((t) => t.stepSuccessPct.length))
  const episodes = members.reduce((n, t) => n + t.episodes, 0)
  return Array.from({ length: steps }, (_, k) => members.reduce((s, t) => s + (t.stepSuccessPct[k] ?? 0) * t.episodes, 0) / episodes)
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
  const stepCounts = resolved.stepwise.map((group) => Math.max(0, ...rows.map((r) => pooled(r, group)?.length ?? 0)))
  const columns = [
    ...resolved.stepwise.flatMap((group, i) =>
      Array.from({ length: stepCounts[i]! }, (_, k) => (resolved.stepwise.length > 1 ? `${group.label} ${k + 1}` : `${k + 1}`))
    ),
    ...resolved.final,
    "SSIM",
    "LPIPS"
  ]
  const notes: Array<string> = []
  const tableRows = rows.map((row) => {
    const values: Array<number | null> = []
    resolved.stepwise.forEach((group, i) => {
      const found = pooled(row, group)
      for (let k = 0; k < stepCounts[i]!; k++) values.push(found?.[k] ?? null)
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
  const groups = table.layout.stepwise.map((g) => `${g.label} (${g.tasks.join(" + ")})`)
  const layoutLine = `step-wise columns: ${groups.join(", ") || "none"}; final-success columns: ${table.layout.final.join(", ") || "none"}`
  return [header, rule, ...lines, "", layoutLine, ...notes, ""].join("\n")
}
