/**
 * An AR learning-rate sweep with early stopping (ASHA) on the VideoWorld 2 pipeline: 8 AR trials share one
 * dLDM (data, VDM pre-training, warm-up, dLDM and tokenisation run once: they are ordinary cached invocations);
 * the AR trials pause at each rung, and only the best half by held-out teacher-forced NLL go on, resuming from
 * their rung checkpoint. The 1 survivor trains to the end and is evaluated on CraftBench; the stopped trials
 * are `stopped`, never published. docs/engine.md, "Early stopping".
 *
 *   npx vw2 plan experiments/paper/ar-sweep.ts                 # the rung schedule: 8 → 4 → 2 → 1
 *   npx vw2 run experiments/paper/ar-sweep.ts                  # mini: MiniCraft, rungs at AR steps 25, 50, 100 of 200
 *   npx vw2 run experiments/paper/ar-sweep.ts --preset paper   # paper sizes: rungs at 5k, 10k, 20k of 50k steps
 *
 * The rungs are multiples of `ar.eval.every` so the metric (`ar/heldout/nll`, as `vw2 runs` names it: the AR stage
 * reports it at each evaluation and at a pause) has a value at every rung. Rerunning the command replays the recorded decisions
 * (<VW2_HOME>/sweeps/<config hash>/decisions.json) instead of retraining.
 */
import { defineExperiment } from "@vw2/core"
import { craftPipeline, craftPresets } from "@vw2/pipelines"

/** learning rates around the paper's 3e-4 (mini: around the mini preset's 2e-3) */
const paperLrs = [3e-5, 6e-5, 1e-4, 2e-4, 3e-4, 6e-4, 1e-3, 2e-3]
const miniLrs = [2e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 8e-3, 1.2e-2]

const mini = craftPresets.mini
const paper = craftPresets.paper

export default defineExperiment({
  name: "paper-ar-sweep",
  pipeline: craftPipeline,
  presets: {
    mini: {
      config: { ...mini, ar: { ...mini.ar, train: { ...mini.ar.train, steps: 200 }, eval: { every: 25 } } },
      sweep: {
        grid: { "ar.train.lr": miniLrs },
        scheduler: { kind: "asha", metric: "ar/heldout/nll", mode: "min", rungs: [25, 50, 100], reductionFactor: 2 }
      },
      // a killed worker resumes from its last checkpoint; a stuck AR trial is stopped after an hour
      steps: { ar: { retries: 2, timeout: "1h" } }
    },
    paper: {
      config: { ...paper, ar: { ...paper.ar, eval: { every: 2500 } } },
      sweep: {
        grid: { "ar.train.lr": paperLrs },
        scheduler: { kind: "asha", metric: "ar/heldout/nll", mode: "min", rungs: [5000, 10_000, 20_000], reductionFactor: 2 }
      },
      // paper scale: lost nodes are retried from the last checkpoint; one AR attempt is bounded by 3 days
      steps: { ar: { retries: 3, timeout: "3d" }, dldm: { retries: 3 }, "vdm-pretrain": { retries: 3 } }
    }
  },
  defaultPreset: "mini"
})
