/**
 * Fidelity (issue 13 "Presets"; docs/paper.md "Ablations", architecture): MiniCraft at 64×64, the full dLDM (VDM +
 * stop-grad + ControlNet) against a reconstruction-only continuation of the same warm-up (VideoWorld 1-like), each
 * probed on held-out test-domain clips by the same judge (`dldm-probe` vs `dldm-probe-recon`: swapped-code margin,
 * step probe, code usage, oracle-code rollout success), over 3 seeds. The experiment run's `rollup.json` artifact
 * and its `…/mean|std|ci_low|ci_high` metrics hold mean ± std and bootstrap 95 % CIs over the seeds.
 *
 *   npx vw2 run experiments/fidelity.ts
 */
import { defineExperiment } from "@vw2/core"
import { fidelityPipeline, fidelityPresets } from "@vw2/pipelines"

export default defineExperiment({
  name: "fidelity",
  pipeline: fidelityPipeline,
  config: fidelityPresets.mini,
  seeds: [0, 1, 2]
})
