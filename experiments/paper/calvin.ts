/**
 * CALVIN (success at 1..5, Avg. Len.), with Open-X pretraining of the dLDM (co-training on Craft + the
 * Open-X data) before tokenizing the CALVIN demonstrations: 10 % of the demonstration data and all of it.
 * Mini: MiniCALVIN (train variants A–C, closed-loop protocol in D) with its multi-embodiment Open-X stand-in.
 *
 *   npx vw2 run experiments/paper/calvin.ts [--preset paper]
 */
import { defineExperiment, type ExperimentPreset } from "@vw2/core"
import { byPreset, videoWorld2OpenXPipeline, videoWorld2OpenXPresets } from "@vw2/pipelines"

/** Each size sweeps its own demonstration data at a fraction: fewer play sequences (mini) or fewer imported episodes (paper). */
const fractions = (config: (typeof videoWorld2OpenXPresets)["mini"]): ExperimentPreset<typeof videoWorld2OpenXPipeline> => {
  const calvinData = config["calvin-data"]
  const fraction = (f: number) =>
    calvinData.source === "minicalvin"
      ? { ...calvinData, trainSequences: Math.max(1, Math.round((calvinData.trainSequences ?? 12) * f)) }
      : { ...calvinData, calvin: { ...calvinData.calvin, maxEpisodesPerSplit: f === 1 ? 0 : Math.round(22_966 * f) } }
  return { config, sweep: { grid: { "calvin-data": [fraction(0.1), fraction(1)] } } }
}

export default defineExperiment({
  name: "paper-calvin",
  pipeline: videoWorld2OpenXPipeline,
  presets: byPreset((preset) => fractions(videoWorld2OpenXPresets[preset])),
  defaultPreset: "mini"
})
