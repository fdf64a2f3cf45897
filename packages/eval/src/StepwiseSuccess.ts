/**
 * Step-wise success (paper §4.1): step k of an episode succeeds only if steps 1..k all did, so an episode
 * contributes to steps 1..c where c is the length of the prefix of steps the judge found completed.
 * The rate at step k is the share of a task's episodes with c ≥ k.
 */
import type { TaskSuccess } from "./PaperTable.ts"

export interface EpisodeJudgement {
  readonly episode: string
  readonly task: string
  /** number of task steps, K */
  readonly steps: number
  /** steps 1..c were completed in order (0 ≤ c ≤ K) */
  readonly completedPrefix: number
}

/** Length of the leading run of `true` in per-step completion flags. */
export const completedPrefix = (stepDone: ReadonlyArray<boolean>): number => {
  const firstMiss = stepDone.indexOf(false)
  return firstMiss === -1 ? stepDone.length : firstMiss
}

export const stepwiseSuccess = (judgements: ReadonlyArray<EpisodeJudgement>): ReadonlyArray<TaskSuccess> => {
  const byTask = new Map<string, Array<EpisodeJudgement>>()
  for (const j of judgements) {
    if (j.completedPrefix < 0 || j.completedPrefix > j.steps) throw new Error(`episode ${j.episode}: completed prefix ${j.completedPrefix} outside 0..${j.steps}`)
    byTask.set(j.task, [...(byTask.get(j.task) ?? []), j])
  }
  return [...byTask.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([task, episodes]) => {
      const steps = Math.max(...episodes.map((e) => e.steps))
      return {
        task,
        episodes: episodes.length,
        stepSuccessPct: Array.from({ length: steps }, (_, k) => (100 * episodes.filter((e) => e.completedPrefix >= k + 1).length) / episodes.length)
      }
    })
}
