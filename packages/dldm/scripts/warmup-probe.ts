/**
 * Trains the mini warm-up (the quickstart's `warmup` stage config, or --config merged over it) on a MiniCraft
 * dataset and runs the `dldm-probe` stage on its checkpoint: own / swapped / repeat reconstruction on the
 * held-out test episodes, code usage, linear step / phase probes, and — with a judge — oracle-code and
 * random-code rollouts. Prints the warm-up's wall and CPU time and the probe report (issue 13 targets:
 * swapped ≥ 10 % above own, step probe ≥ 1.7× chance, perplexity ≥ 20, oracle step 1 ≥ 50 %).
 *
 *   nice npx node packages/dldm/scripts/warmup-probe.ts [--steps 400] [--config '{"optim":{"lr":3e-3}}']
 *     [--train-episodes 4] [--test-episodes 1] [--data DIR] [--seed 0] [--judge DIR | --judge train]
 *     [--keep DIR]
 *
 * --judge DIR: a `craft-judge` checkpoint (its `judge` output); --judge train: runs the craft-judge stage on
 * the dataset first (its default config). --keep DIR: copy the warm-up checkpoint there.
 */
import { runStageDirect } from "@vw2/core"
import { generateMiniCraftStage } from "@vw2/data"
import { craftJudge } from "../../eval/src/judge/CraftJudgeStage.ts"
import { dldmProbe, dldmProbeNoJudge } from "../../eval/src/probe/DldmProbeStage.ts"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { miniStageConfigs, warmupStage } from "../src/index.ts"
import { deepMerge, type Json } from "./internal/json.ts"

const { values: args } = parseArgs({
  options: {
    steps: { type: "string" },
    config: { type: "string", default: "{}" },
    "train-episodes": { type: "string", default: "4" },
    "test-episodes": { type: "string", default: "1" },
    data: { type: "string" },
    seed: { type: "string", default: "0" },
    judge: { type: "string" },
    keep: { type: "string" }
  }
})


const seed = Number(args.seed)
const trainEps = Number(args["train-episodes"])
const testEps = Number(args["test-episodes"])
const dataDir = args.data ?? path.join(os.tmpdir(), `vw2-warmup-probe-minicraft-${trainEps}-${testEps}`)
if (!fs.existsSync(path.join(dataDir, "dataset", "dataset.json"))) {
  fs.rmSync(dataDir, { recursive: true, force: true })
  const generated = await runStageDirect(generateMiniCraftStage, { trainEpisodesPerTask: trainEps, testEpisodesPerTask: testEps }, {}, { seed: 0 })
  fs.mkdirSync(dataDir, { recursive: true })
  fs.renameSync(path.join(generated.outputRoot, "dataset"), path.join(dataDir, "dataset")) // kept for the next run
}
const dataset = path.join(dataDir, "dataset")

let config = deepMerge(structuredClone(miniStageConfigs.warmup) as Json, JSON.parse(args.config) as Json)
if (args.steps !== undefined) config = { ...config, steps: Number(args.steps) }

const cpu0 = process.cpuUsage()
const t0 = performance.now()
const warm = await runStageDirect(warmupStage, config, { dataset }, { seed })
const wallS = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
const checkpoint = path.join(warm.outputRoot, "checkpoint")
console.log(`warmup config ${JSON.stringify(config)}`)
console.log(warm.logs.filter((l) => l.startsWith("warmup:") || l.startsWith("tfjs backend")).join("\n"))
console.log(`warmup: ${wallS.toFixed(1)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU (load ${os.loadavg().map((x) => x.toFixed(1)).join(" ")})`)
if (args.keep !== undefined) fs.cpSync(checkpoint, args.keep, { recursive: true })

let judgeDir = args.judge
if (judgeDir === "train") {
  const j0 = performance.now()
  const judged = await runStageDirect(craftJudge, {}, { dataset }, { seed: 0 })
  judgeDir = path.join(judged.outputRoot, "judge")
  console.log(`craft-judge: ${((performance.now() - j0) / 1000).toFixed(1)} s`)
}
const p0 = performance.now()
const probe =
  judgeDir === undefined
    ? await runStageDirect(dldmProbeNoJudge, {}, { dataset, dldm: checkpoint }, { seed })
    : await runStageDirect(dldmProbe, {}, { dataset, dldm: checkpoint, judge: judgeDir }, { seed })
console.log(fs.readFileSync(path.join(probe.outputRoot, "report", "probe.md"), "utf8"))
console.log(`dldm-probe: ${((performance.now() - p0) / 1000).toFixed(1)} s`)
const m = probe.metrics.at(-1)?.values ?? {}
const check = (name: string, value: number, target: number, unit = "") => console.log(`${value >= target ? "MET " : "MISS"} ${name}: ${value.toFixed(2)}${unit} (target ≥ ${target}${unit})`)
check("swapped over own, teacher-forced", m["probe/teacher_forced/swapped_over_own_pct"]!, 10, " %")
check("swapped over own, chained", m["probe/chained/swapped_over_own_pct"]!, 10, " %")
check("step probe ÷ chance", m["probe/step/over_chance"]!, 1.7)
check("code perplexity", m["probe/codes/perplexity"]!, 20)
if (m["probe/rollout/oracle/step_1"] !== undefined) check("oracle rollout step 1", 100 * m["probe/rollout/oracle/step_1"]!, 50, " %")
