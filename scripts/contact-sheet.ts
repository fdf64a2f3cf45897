/**
 * Writes a contact sheet PNG per MiniCraft task: for a train-domain and a test-domain episode, one row of
 * settled states (after 0..7 steps) and one row of mid-action frames; plus `all-tasks.png` with the state
 * rows of every task; one folder per size (32 px: the quickstart, 64 px: the fidelity preset).
 * Usage: npx node scripts/contact-sheet.ts --out <dir> [--size 32,64] [--seed 0]  → <dir>/<size>px/*.png
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { minicraftContactSheets } from "../packages/data/src/minicraft/Sheets.ts"

const { values } = parseArgs({ options: { out: { type: "string" }, size: { type: "string", default: "32,64" }, seed: { type: "string", default: "0" } } })
if (values.out === undefined) {
  console.error("usage: npx node scripts/contact-sheet.ts --out <dir> [--size 32,64] [--seed 0]")
  process.exit(2)
}
const sizes = values.size.split(",").map(Number)
const seed = Number(values.seed)
const started = Date.now()
for (const size of sizes) {
  const dir = path.join(values.out, `${size}px`)
  fs.mkdirSync(dir, { recursive: true })
  for (const sheet of minicraftContactSheets({ seed, width: size, height: size })) {
    const file = path.join(dir, sheet.name)
    fs.writeFileSync(file, sheet.png)
    console.log(`${file}  ${sheet.description}`)
  }
}
console.log(`done in ${((Date.now() - started) / 1000).toFixed(2)} s`)
