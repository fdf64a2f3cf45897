/**
 * The VDM half of the mini quickstart, stage by stage, with wall times: vdm-pretrain → (warmup, or a given
 * warm-up checkpoint) → dldm, printing each stage's held-out log lines (x0 error vs repeat, code-drop gain).
 *   npx node scripts/vdm-pipeline.ts <video dataset> [warmup checkpoint dir | -] [vdm checkpoint dir | -] [json: {"pretrain":{…},"warmup":{…},"dldm":{…}}]
 * Prints wall and process CPU seconds per stage (CPU is the fairer number on a shared machine).
 */
import { runStageDirect } from "@vw2/core"
import { dldmStage, miniStageConfigs, warmupStage } from "@vw2/dldm"
import * as path from "node:path"
import { vdmPretrain } from "../src/VdmPretrainStage.ts"

const [data, warm, vdm, json] = process.argv.slice(2) as [string, string | undefined, string | undefined, string | undefined]
const over = JSON.parse(json ?? "{}") as Record<string, Record<string, unknown>>
const timed = async (name: string, f: () => Promise<{ logs: string[]; outputRoot: string; metrics: Array<{ values: Record<string, number> }> }>) => {
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const r = await f()
  const s = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  for (const l of r.logs) if (/held-out|loss|backend|DiT|clips/.test(l)) console.log(`  ${l}`)
  const stepMs = r.metrics.map((m) => m.values["step_ms"] ?? m.values["vdm/step_ms"]).filter((v) => v !== undefined) as number[]
  const mean = stepMs.length > 1 ? stepMs.slice(1).reduce((a, b) => a + b, 0) / (stepMs.length - 1) : NaN
  console.log(`${name}: ${s.toFixed(1)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU (${mean.toFixed(0)} ms/step logged) → ${r.outputRoot}`)
  return r
}
const vdmDir =
  vdm !== undefined && vdm !== "-"
    ? vdm
    : path.join((await timed("vdm-pretrain", () => runStageDirect(vdmPretrain, { ...over["pretrain"] }, { videos: data }))).outputRoot, "checkpoint")
const warmupDir =
  warm !== undefined && warm !== "-"
    ? warm
    : path.join((await timed("warmup", () => runStageDirect(warmupStage, { ...miniStageConfigs.warmup, ...over["warmup"] }, { dataset: data }))).outputRoot, "checkpoint")
await timed("dldm", () =>
  runStageDirect(dldmStage, { ...miniStageConfigs.dldm, ...over["dldm"] }, { dataset: data, warmup: warmupDir, vdm: vdmDir })
)
