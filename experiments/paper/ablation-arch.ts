/**
 * Ablation (a), dLDM architecture (step-7 paper / block success / LPIPS). One sweep point per row:
 *   +VDM                       the VDM supervises the codes; no low-fi branch; the decoder's reconstruction
 *                              gradient reaches the codes
 *   +decoder stop-grad         as above, with no reconstruction gradient into the codes
 *   +ControlNet (no stop-grad) low-fi video enters the VDM through the control branch, gradients flow back
 *   all three                  control branch fed by the low-fi video of detached codes, detached again
 * The "no VDM" row (VideoWorld 1-like) is the first branch of experiments/paper/baselines.ts.
 *
 *   npx vw2 run experiments/paper/ablation-arch.ts [--preset paper]
 */
import { defineExperiment, type ExperimentPreset } from "@vw2/core"
import { byPreset, craftPipeline, craftPresets, type PresetName } from "@vw2/pipelines"

/** The four rows, each a whole dLDM config built from the preset's base. */
export const architectureRows = (preset: PresetName) => {
  const base = craftPresets[preset]
  const dit = base.dldm.dit ?? {}
  const control = (enabled: boolean, stopGradient: boolean) => ({ ...dit, control: { ...dit.control, enabled, stopGradient } })
  return [
    { ...base.dldm, dit: control(false, true), reconstructionWeight: 1 },
    { ...base.dldm, dit: control(false, true), reconstructionWeight: 0 },
    { ...base.dldm, dit: control(true, false), hintFromDetachedCodes: false },
    { ...base.dldm, dit: control(true, true), hintFromDetachedCodes: true }
  ]
}

export default defineExperiment({
  name: "paper-ablation-arch",
  pipeline: craftPipeline,
  presets: byPreset((preset): ExperimentPreset<typeof craftPipeline> => ({ config: craftPresets[preset], sweep: { grid: { dldm: architectureRows(preset) } } })),
  defaultPreset: "mini"
})
