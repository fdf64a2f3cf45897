/**
 * Reproduces the craft judge's calibration table: generates a MiniCraft dataset (the mini preset's
 * generator settings, test episodes only), runs stage `craft-judge` on it, and prints the table with the
 * exact pixel judge's numbers beside it (diagnostic).
 *
 *   npx node packages/eval/scripts/judge-calibration.ts [size=32] [testEpisodesPerTask=1] [exact=1] [key=value config overrides...]
 *   e.g. ... 64 2 1 train.steps=900
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runStageDirect } from "@vw2/core"
import { Dataset, MiniCraft } from "@vw2/data"
import { type CalibrationRow, calibrate, calibrationMarkdown } from "../src/judge/Calibration.ts"
import { craftJudge, testEpisodes } from "../src/judge/CraftJudgeStage.ts"

const [sizeArg = "32", perTaskArg = "1", exactArg = "1", ...overrides] = process.argv.slice(2)
const size = Number(sizeArg)
const perTask = Number(perTaskArg)
const config: Record<string, Record<string, number>> = {}
for (const o of overrides) {
  const [key, value] = o.split("=")
  const [group, field] = key!.split(".")
  config[group!] = { ...config[group!], [field!]: Number(value) }
}
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-judge-calib-"))
const generator = { ...MiniCraft.defaultMiniCraftConfig, height: size, width: size, episodesPerTask: { train: 0, test: perTask } }
MiniCraft.generateMiniCraft(dataDir, generator)
const started = performance.now()
const run = await runStageDirect(craftJudge, config, { dataset: dataDir })
const seconds = (performance.now() - started) / 1000
console.log(run.logs.filter((l) => l.startsWith("craft-judge:") || l.startsWith("tfjs")).join("\n"))
const calibration = JSON.parse(fs.readFileSync(path.join(run.outputRoot, "judge", "calibration.json"), "utf8")) as { rows: CalibrationRow[] }
let exact: CalibrationRow[] | undefined
if (exactArg === "1") {
  const dataset = Dataset.open(dataDir)
  const episodes = testEpisodes(dataset, 0)
  const judges = new Map(episodes.map((e) => [e.id, new MiniCraft.MiniCraftJudge({ task: MiniCraft.getTask(e.task), appearance: e.appearance, width: size, height: size, supersample: generator.supersample })]))
  exact = calibrate(episodes, { ...generator, seed: generator.seed + 7919 }, (e, frames, length) => judges.get(e.id)!.judge(frames, length).completed)
}
console.log(calibrationMarkdown(calibration.rows, `craft judge at ${size} px, ${perTask} test episode(s) per task; stage wall time ${seconds.toFixed(1)} s`, exact))
for (const r of calibration.rows) console.log(`${r.row}: ${r.perEpisode.map((p) => `${p.id} ${p.judged}/${p.expected}`).join(", ")}`)
