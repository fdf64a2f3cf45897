/**
 * Judging generated MiniCraft videos with the exact judge of @vw2/data: the judge knows the task and the
 * episode's appearance (from its meta.json) and renders every state under it, so it needs no learned model.
 */
import { type Appearance, getTask, MiniCraftJudge } from "../internal/minicraft.ts"
import type { RgbVideo } from "../Video.ts"

export interface JudgeableEpisode {
  readonly task: string
  readonly appearance: Readonly<Record<string, unknown>>
}

/** One judge per episode (its references depend on the appearance); reuse it for GT and generated videos. */
export const makeEpisodeJudge = (episode: JudgeableEpisode, height: number, width: number, supersample: number | undefined) => {
  const judge = new MiniCraftJudge({
    task: getTask(episode.task),
    appearance: episode.appearance as unknown as Appearance,
    height,
    width,
    ...(supersample !== undefined ? { supersample } : {})
  })
  return {
    steps: judge.steps,
    completedPrefix: (video: RgbVideo): number => judge.judge(video.data, video.frames).completed
  }
}
