/**
 * Reproduces the craft judge's calibration table: generates a MiniCraft dataset (the mini preset's
 * generator settings, test episodes only), runs stage `craft-judge` on it, and prints the table with the
 * exact pixel judge's numbers beside it (diagnostic).
 *
 *   npx node packages/eval/scripts/judge-calibration.ts [size=32] [testEpisodesPerTask=1] [exact=1] [key=value config overrides...]
 *   e.g. ... 64 2 1 train.steps=900, or ... 32 5 0 seedOffset=104729 (a second judge seed)
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runStageDirect } from "@vw2/core"
import { Dataset, MiniCraft } from "@vw2/data"
import { type CalibrationRow, calibrate, calibrationMarkdown } from "../src/judge/Calibration.ts"
import { loadCraftJudge } from "../src/judge/CraftJudge.ts"
import { craftJudge, testEpisodes } from "../src/judge/CraftJudgeStage.ts"

const [sizeArg = "32", perTaskArg = "1", exactArg = "1", ...overrides] = process.argv.slice(2)
const size = Number(sizeArg)
const perTask = Number(perTaskArg)
const config: Record<string, number | Record<string, number>> = {}
for (const o of overrides) {
  const [key, value] = o.split("=")
  const [group, field] = key!.split(".")
  // "train.steps=1200" sets a field of a group; "seedOffset=1" a top-level field
  config[group!] = field === undefined ? Number(value) : { ...(config[group!] as Record<string, number> | undefined), [field]: Number(value) }
}
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-judge-calib-"))
const generator = { ...MiniCraft.defaultMiniCraftConfig, height: size, width: size, episodesPerTask: { train: 0, test: perTask } }
MiniCraft.generateMiniCraft(dataDir, generator)
const started = performance.now()
const run = await runStageDirect(craftJudge, config, { dataset: dataDir })
const seconds = (performance.now() - started) / 1000
console.log(run.logs.filter((l) => l.startsWith("craft-judge:") || l.startsWith("tfjs")).join("\n"))
console.log(run.metrics.filter((m) => m.values["judge/ce"] !== undefined).map((m) => `step ${m.step}: ce ${m.values["judge/ce"]!.toFixed(3)} hand ${m.values["judge/hand_bce"]!.toFixed(3)}`).join("; "))
const calibration = JSON.parse(fs.readFileSync(path.join(run.outputRoot, "judge", "calibration.json"), "utf8")) as { rows: CalibrationRow[] }
let exact: CalibrationRow[] | undefined
if (exactArg === "1") {
  const dataset = Dataset.open(dataDir)
  const episodes = testEpisodes(dataset, 0)
  const judges = new Map(episodes.map((e) => [e.id, new MiniCraft.MiniCraftJudge({ task: MiniCraft.getTask(e.task), appearance: e.appearance, width: size, height: size, supersample: generator.supersample })]))
  exact = calibrate(episodes, { ...generator, seed: generator.seed + 7919 }, (e, frames, length) => judges.get(e.id)!.judge(frames, length).completed)
}
console.log(calibrationMarkdown(calibration.rows, `craft judge at ${size} px, ${perTask} test episode(s) per task; stage wall time ${seconds.toFixed(1)} s`, exact))
for (const r of calibration.rows.filter((r) => !r.pass)) console.log(`${r.row}: ${r.perEpisode.map((p) => `${p.id} ${p.judged}/${p.expected}`).join(", ")}`)

// decomposition: why each ground-truth episode falls short (the rule that stopped it, and each frame's reading)
const judge = await loadCraftJudge(path.join(run.outputRoot, "judge"))
try {
  for (const e of testEpisodes(Dataset.open(dataDir), perTask)) {
    const v = judge.verdict(e.task, e.frames, e.length)
    if (v.completed === e.steps) continue
    const labels = MiniCraft.timeline(MiniCraft.getTask(e.task), MiniCraft.groundTruthScript(MiniCraft.getTask(e.task)), generator).map((f) => f.label)
    console.log(`\n${e.id}: ${v.completed}/${e.steps}: ${v.failure}`)
    console.log(
      v.frames
        .map((r, t) => `${t}:${labels[t]!.phase[0]}${labels[t]!.state.completed}→${r.state ?? "-"}(${r.confidence.toFixed(2)})${r.hand === null ? "" : `@${r.hand.x.toFixed(2)},${r.hand.y.toFixed(2)}`}`)
        .join(" ")
    )
  }
} finally {
  judge.dispose()
}
console.log(`judge checkpoint: ${path.join(run.outputRoot, "judge")}; dataset: ${dataDir}`)
