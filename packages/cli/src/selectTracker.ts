/**
 * THE place where the CLI picks its Tracker implementation: MLflow by default (MLFLOW_TRACKING_URI, or
 * the embedded local server under VW2_HOME, reused or started in the background: the first stages run
 * while it starts, their records spooled and delivered once it answers); `--no-track` (or
 * VW2_TRACKER=none) records nothing. Everything else gets the Tracker service from the layer this returns.
 */
import type { Layer } from "effect"
import { Tracker } from "@vw2/core"
import { layerFromEnv } from "@vw2/tracking"

export interface TrackerFlags {
  /** `--no-track`: record nothing */
  readonly noTrack: boolean
  /** where the tracker's status and warnings go (default stderr) */
  readonly log?: ((line: string) => void) | undefined
}

export const selectTracker = (flags: TrackerFlags): Layer.Layer<Tracker.Tracker> => {
  if (flags.noTrack || process.env.VW2_TRACKER === "none") return Tracker.layerNoop
  return layerFromEnv(flags.log === undefined ? {} : { log: flags.log })
}
