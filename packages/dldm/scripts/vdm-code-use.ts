/**
 * Does the VDM read its codes? Runs the real `dldm` (joint) stage alone, from the warm-up dLDM, the
 * pretrained VDM and the MiniCraft dataset of a quickstart store, and prints the stage's own held-out probe
 * (issue 13 "VDM" check; packages/dldm/src/stages/JointStage.ts `heldOutProbe`, metrics `dldm/…`) before and after training:
 *   code_drop_gain   x0 mse with the codes dropped (hint kept) ÷ with the codes − 1     (target ≥ 5 % at σ = 1)
 *   cond_drop_gain   the same with codes and hint dropped
 *   x0 mse / l1      with codes and hint, against repeat-the-first-frame (target: below)
 * and the stage's wall time. One variant per run; `--config` is merged (deeply) over the mini preset's dldm
 * config, so each row of a comparison is one command:
 *
 *   VW2_HOME=/tmp/h5 npx vw2 run experiments/quickstart.ts          # once: the store this script reads
 *   nice -n 5 npx node packages/dldm/scripts/vdm-code-use.ts --store /tmp/h5 --label hint-dropout-0.5 \
 *     --config '{"hintDropout":0.5}' [--seed 0] [--out /tmp/vdm-code-use.jsonl]
 *
 * Oracle decompositions are configs too, e.g. `{"dit":{"control":{"enabled":false}}}`: codes without any hint
 * (then code_drop_gain is what the cross-attention/FiLM path alone learns), `{"probe":{"split":"train"}}`.
 *
 * Findings (2026-12-07, quickstart store of that day, 16 test clips, load 4–16 on the 2-core machine; every run in
 * the issue-13 report): with the old mini defaults the DiT read neither its codes nor its hint after 150 steps
 * (code_drop_gain 0.4 %, codes + hint 0.0 %); without any hint the codes alone gave 1.2 %. What moved it: training
 * at the authors' σ distribution (p_mean 0: the codes matter where the noisy frames hide the motion), a slower dLDM
 * (dldmLrScale 0.1), hint dropout 0.5, colour augmentation, and weighting the moving pixels (motionWeight 1): 9.6 %
 * on seed 0 but 0.3 % on seed 1 at batch 2; at batch 4 (now the default) 2.5 % / 7.5 %, x0 mse .00296 / .00302
 * against repeat .00397. A higher learning rate on the code path alone (codePathLrScale 3–10) made it worse.
 */
import { runStageDirect } from "@vw2/core"
import * as fs from "node:fs"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { dldmStage, miniStageConfigs } from "../src/index.ts"
import { deepMerge, type Json } from "./internal/json.ts"

const { values: args } = parseArgs({
  options: {
    store: { type: "string", default: process.env["VW2_HOME"] ?? "/tmp/h5" },
    config: { type: "string", default: "{}" },
    label: { type: "string", default: "preset" },
    seed: { type: "string", default: "0" },
    out: { type: "string" }
  }
})

/** The published output folder `output` of the store entry whose pipeline step is `step` (newest if several). */
function storeOutput(store: string, step: string, output: string): string {
  const root = path.join(store, "store")
  const hits = fs
    .readdirSync(root)
    .map((h) => path.join(root, h))
    .filter((d) => fs.existsSync(path.join(d, "manifest.json")))
    .filter((d) => (JSON.parse(fs.readFileSync(path.join(d, "manifest.json"), "utf8")) as { step?: string }).step === step)
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)
  if (hits.length === 0) throw new Error(`no "${step}" entry in ${root}: run the quickstart with VW2_HOME=${store} first`)
  return path.join(hits[0]!, output)
}

const inputs = {
  dataset: storeOutput(args.store, "craft-data", "dataset"),
  warmup: storeOutput(args.store, "warmup", "checkpoint"),
  vdm: storeOutput(args.store, "vdm-pretrain", "checkpoint")
}
const config = deepMerge(miniStageConfigs.dldm as Json, JSON.parse(args.config) as Json)
const t0 = performance.now()
const run = await runStageDirect(dldmStage, config, inputs, { seed: Number(args.seed) })
const seconds = (performance.now() - t0) / 1000

/** The probe's metrics at its first (step 0) and last logging step, keyed without the stage prefix (`dldm/`). */
const probeAt = (which: "first" | "last"): Record<string, number> => {
  const rows = run.metrics.filter((m) => Object.keys(m.values).some((k) => k.includes("/cond_drop_gain_sigma")))
  if (rows.length === 0) throw new Error("the stage logged no held-out probe (dldm probe.clips = 0, or no test episodes?)")
  const steps = rows.map((r) => r.step)
  const step = which === "first" ? Math.min(...steps) : Math.max(...steps)
  const values = rows.filter((r) => r.step === step).flatMap((r) => Object.entries(r.values))
  return Object.fromEntries(values.map(([k, v]) => [k.slice(k.indexOf("/") + 1), v]))
}
const before = probeAt("first")
const after = probeAt("last")
const pct = (v: number | undefined) => (v === undefined ? "—" : `${(100 * v).toFixed(1)} %`)
const row = {
  label: args.label,
  config: JSON.parse(args.config) as Json,
  seed: Number(args.seed),
  seconds,
  before,
  after
}
for (const line of run.logs.filter((l) => l.includes("held-out") || l.includes("loss "))) console.log(line)
console.log(
  `${args.label}: code_drop_gain σ=1 ${pct(after["code_drop_gain"])} (before ${pct(before["code_drop_gain"])}), ` +
    `σ=3 ${pct(after["code_drop_gain_sigma3"])}; cond_drop_gain σ=1 ${pct(after["cond_drop_gain_sigma1"])}; ` +
    `x0 mse σ=1 ${after["x0_mse_sigma1"]?.toFixed(5)} vs repeat ${after["repeat_mse"]?.toFixed(5)}, ` +
    `l1 ${after["x0_err_sigma1"]?.toFixed(4)} vs repeat ${after["repeat_err"]?.toFixed(4)}; stage ${seconds.toFixed(0)} s`
)
if (args.out !== undefined) fs.appendFileSync(args.out, JSON.stringify(row) + "\n")
