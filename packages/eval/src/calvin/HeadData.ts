/**
 * Training pairs for the action head, from MiniCALVIN demonstrations tokenized by the dLDM: for every
 * transition j of every clip k, the N codes of that transition, the robot state at the transition's first
 * frame, and the demonstrated actions of the frames it spans.
 *
 * Clip k covers frames [k·stride, k·stride + T); its transitions split the T − 1 steps evenly, so
 * transition j spans `span = (T − 1) / transitions` frames starting at k·stride + j·span.
 */
import type { CodeDataset } from "@vw2/ar"
import type { Dataset } from "@vw2/data"
import { ACTION_DIM, PROPRIO_DIM } from "./CalvinHead.ts"

export interface HeadExamples {
  readonly count: number
  readonly codesPerTransition: number
  readonly actionsPerTransition: number
  /** int32 [count, N] */
  readonly codes: Int32Array
  /** float32 [count, 15] */
  readonly proprio: Float32Array
  /** float32 [count, span, 7] */
  readonly actions: Float32Array
}

export const transitionSpan = (codes: CodeDataset): number => {
  const { clipLength, transitionsPerClip } = codes.info
  const span = (clipLength - 1) / transitionsPerClip
  if (!Number.isInteger(span)) throw new Error(`${codes.dir}/codes.json: clipLength − 1 = ${clipLength - 1} is not a multiple of transitionsPerClip ${transitionsPerClip}`)
  return span
}

export const headExamples = (codes: CodeDataset, demos: Dataset): HeadExamples => {
  const span = transitionSpan(codes)
  const n = codes.info.queries
  const codeRows: Array<number> = []
  const proprioRows: Array<Float32Array> = []
  const actionRows: Array<Float32Array> = []
  for (const episode of codes.episodes) {
    const ref = demos.episode(episode.id)
    if (!ref.hasActions) throw new Error(`${demos.dir}: episode ${episode.id} has no actions.npy (is this a robot dataset?)`)
    for (let k = 0; k < episode.clips; k++) {
      for (let j = 0; j < codes.info.transitionsPerClip; j++) {
        const first = k * codes.info.clipStride + j * span
        if (first + span > ref.length) continue // the tokenizer may pad the last clip past the episode's end
        const frames = Array.from({ length: span }, (_, i) => first + i)
        const offset = (k * codes.info.transitionsPerClip + j) * n
        for (let q = 0; q < n; q++) codeRows.push(episode.codes[offset + q]!)
        proprioRows.push(demos.readFloatRows(episode.id, "robot_obs.npy", PROPRIO_DIM, [first]))
        actionRows.push(demos.readActions(episode.id, frames))
      }
    }
  }
  const count = proprioRows.length
  if (count === 0) throw new Error(`${codes.dir}: no transitions overlap the demonstrations in ${demos.dir}`)
  const proprio = new Float32Array(count * PROPRIO_DIM)
  const actions = new Float32Array(count * span * ACTION_DIM)
  proprioRows.forEach((p, i) => proprio.set(p, i * PROPRIO_DIM))
  actionRows.forEach((a, i) => actions.set(a, i * span * ACTION_DIM))
  return { count, codesPerTransition: n, actionsPerTransition: span, codes: Int32Array.from(codeRows), proprio, actions }
}
