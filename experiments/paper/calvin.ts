/**
 * CALVIN (success at 1..5, Avg. Len.), with Open-X pretraining of the dLDM (co-training on Craft + the
 * Open-X data) before tokenizing the CALVIN demonstrations: 10 % of the demonstration data and all of it.
 * Mini: MiniCALVIN (train variants A–C, closed-loop protocol in D) with its multi-embodiment Open-X stand-in.
 *
 *   [VW2_PRESET=paper] npx vw2 run experiments/paper/calvin.ts
 */
import { defineExperiment } from "@vw2/core"
import { presetFromEnv, videoWorld2OpenXPipeline, videoWorld2OpenXPresets } from "@vw2/pipelines"

const preset = presetFromEnv()
const base = videoWorld2OpenXPresets[preset]
const calvinData = base["calvin-data"]

/** The demonstration data at a fraction: fewer play sequences (mini) or fewer imported episodes (paper). */
const fraction = (f: number) =>
  calvinData.source === "minicalvin"
    ? { ...calvinData, trainSequences: Math.max(1, Math.round((calvinData.trainSequences ?? 12) * f)) }
    : { ...calvinData, calvin: { ...calvinData.calvin, maxEpisodesPerSplit: f === 1 ? 0 : Math.round(22_966 * f) } }

export default defineExperiment({
  name: `paper-calvin-${preset}`,
  pipeline: videoWorld2OpenXPipeline,
  config: base,
  sweep: { grid: { "calvin-data": [fraction(0.1), fraction(1)] } }
})
