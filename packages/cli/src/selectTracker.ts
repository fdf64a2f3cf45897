/**
 * THE place where the CLI picks its Tracker implementation. `@vw2/tracking` plugs its MLflow tracker in
 * here (e.g. when `--tracking-uri`/`MLFLOW_TRACKING_URI` is set); everything else gets the Tracker service
 * from the layer this returns.
 */
import type { Layer } from "effect"
import { Tracker } from "@vw2/core"

export interface TrackerFlags {
  /** `--no-track`: record nothing */
  readonly noTrack: boolean
}

export const selectTracker = (flags: TrackerFlags): Layer.Layer<Tracker.Tracker> => {
  if (flags.noTrack) return Tracker.layerNoop
  return Tracker.layerNoop
}
