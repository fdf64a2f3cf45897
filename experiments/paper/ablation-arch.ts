/**
 * Ablation (a), dLDM architecture (step-7 paper / block success / LPIPS). One sweep point per row:
 *   +VDM                       the VDM supervises the codes; no low-fi branch; the decoder's reconstruction
 *                              gradient reaches the codes
 *   +decoder stop-grad         as above, with no reconstruction gradient into the codes
 *   +ControlNet (no stop-grad) low-fi video enters the VDM through the control branch, gradients flow back
 *   all three                  control branch fed by the low-fi video of detached codes, detached again
 * The "no VDM" row (VideoWorld 1-like) is the first branch of experiments/paper/baselines.ts.
 *
 *   [VW2_PRESET=paper] npx vw2 run experiments/paper/ablation-arch.ts
 */
import { defineExperiment } from "@vw2/core"
import { craftPipeline, craftPresets, presetFromEnv } from "@vw2/pipelines"

const preset = presetFromEnv()
const base = craftPresets[preset]
const dit = base.dldm.dit ?? {}
const control = (enabled: boolean, stopGradient: boolean) => ({ ...dit, control: { ...dit.control, enabled, stopGradient } })

export const architectureRows = [
  { ...base.dldm, dit: control(false, true), reconstructionWeight: 1 },
  { ...base.dldm, dit: control(false, true), reconstructionWeight: 0 },
  { ...base.dldm, dit: control(true, false), hintFromDetachedCodes: false },
  { ...base.dldm, dit: control(true, true), hintFromDetachedCodes: true }
]

export default defineExperiment({
  name: `paper-ablation-arch-${preset}`,
  pipeline: craftPipeline,
  config: base,
  sweep: { grid: { dldm: architectureRows } }
})
