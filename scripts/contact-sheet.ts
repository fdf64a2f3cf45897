/**
 * Writes a contact sheet PNG per MiniCraft task: for a train-domain and a test-domain episode, one row of
 * settled states (after 0..7 steps) and one row of mid-action frames; plus `all-tasks.png` with the state
 * rows of every task. Usage: npx node scripts/contact-sheet.ts --out <dir> [--size 32] [--seed 0]
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { minicraftContactSheets } from "../packages/data/src/minicraft/Sheets.ts"

const { values } = parseArgs({ options: { out: { type: "string" }, size: { type: "string", default: "32" }, seed: { type: "string", default: "0" } } })
if (values.out === undefined) {
  console.error("usage: npx node scripts/contact-sheet.ts --out <dir> [--size 32] [--seed 0]")
  process.exit(2)
}
const size = Number(values.size)
const seed = Number(values.seed)
fs.mkdirSync(values.out, { recursive: true })
const started = Date.now()
for (const sheet of minicraftContactSheets({ seed, width: size, height: size })) {
  const file = path.join(values.out, sheet.name)
  fs.writeFileSync(file, sheet.png)
  console.log(`${file}  ${sheet.description}`)
}
console.log(`done in ${((Date.now() - started) / 1000).toFixed(2)} s`)
