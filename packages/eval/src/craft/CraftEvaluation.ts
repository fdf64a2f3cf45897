/**
 * The CraftBench evaluation loop, independent of how videos are generated or judged: for every test
 * episode, generate a video from its instruction and initial frame, judge step completion on it, and
 * compare it with the ground-truth video (SSIM; LPIPS when a model is supplied). Aggregates into the
 * paper's step-wise success per task.
 */
import { type Availability, available, unavailable } from "../Availability.ts"
import { type OnnxImageModel, videoLpips } from "../OnnxModel.ts"
import { videoSsim } from "../Ssim.ts"
import { type EpisodeJudgement, stepwiseSuccess } from "../StepwiseSuccess.ts"
import type { TaskSuccess } from "../PaperTable.ts"
import type { RgbVideo } from "../Video.ts"

export interface TestEpisode {
  readonly id: string
  readonly task: string
  readonly instruction: string
  readonly steps: number
  readonly groundTruth: RgbVideo
}

export interface EpisodeOutcome {
  readonly id: string
  readonly task: string
  readonly completedPrefix: number
  readonly steps: number
  /** judge on the ground-truth video: a sanity check that the judge and data agree (expected = steps) */
  readonly groundTruthPrefix: number
  /** the diagnostic judge's verdicts (generated, ground truth), when one is given */
  readonly diagnosticPrefix?: number
  readonly diagnosticGroundTruthPrefix?: number
  readonly ssim: number
  readonly lpips: number | undefined
  readonly generatedFrames: number
  readonly generated: RgbVideo
}

export interface CraftEvaluationOptions {
  readonly episodes: ReadonlyArray<TestEpisode>
  readonly generate: (episode: TestEpisode) => Promise<RgbVideo>
  /** completed prefix of steps the judge finds in `video` for `episode` */
  readonly judge: (episode: TestEpisode, video: RgbVideo) => number
  /** a second judge reported beside the main one (e.g. the exact pixel judge next to the classifier judge) */
  readonly diagnosticJudge?: (episode: TestEpisode, video: RgbVideo) => number
  readonly lpips: Availability<OnnxImageModel>
  readonly onEpisode?: (outcome: EpisodeOutcome, index: number) => void
}

export interface CraftEvaluation {
  readonly outcomes: ReadonlyArray<EpisodeOutcome>
  readonly tasks: ReadonlyArray<TaskSuccess>
  readonly ssim: Availability<number>
  readonly lpips: Availability<number>
  /** step-wise success of the judge on the ground-truth videos (100 % when judge and data agree) */
  readonly groundTruthTasks: ReadonlyArray<TaskSuccess>
  /** the diagnostic judge's step-wise success on the generated and the ground-truth videos */
  readonly diagnostic?: { readonly tasks: ReadonlyArray<TaskSuccess>; readonly groundTruthTasks: ReadonlyArray<TaskSuccess> }
}

const mean = (xs: ReadonlyArray<number>) => xs.reduce((s, x) => s + x, 0) / xs.length

export const evaluateCraft = async (o: CraftEvaluationOptions): Promise<CraftEvaluation> => {
  if (o.episodes.length === 0) throw new Error("craft evaluation: no test episodes")
  const outcomes: Array<EpisodeOutcome> = []
  for (const [index, episode] of o.episodes.entries()) {
    const generated = await o.generate(episode)
    const diagnostic = o.diagnosticJudge
    const outcome: EpisodeOutcome = {
      id: episode.id,
      task: episode.task,
      steps: episode.steps,
      completedPrefix: o.judge(episode, generated),
      groundTruthPrefix: o.judge(episode, episode.groundTruth),
      ...(diagnostic === undefined ? {} : { diagnosticPrefix: diagnostic(episode, generated), diagnosticGroundTruthPrefix: diagnostic(episode, episode.groundTruth) }),
      ssim: videoSsim(episode.groundTruth, generated),
      lpips: o.lpips._tag === "available" ? await videoLpips(o.lpips.value, episode.groundTruth, generated) : undefined,
      generatedFrames: generated.frames,
      generated
    }
    outcomes.push(outcome)
    o.onEpisode?.(outcome, index)
  }
  const judged = (pick: (e: EpisodeOutcome) => number): ReadonlyArray<EpisodeJudgement> =>
    outcomes.map((e) => ({ episode: e.id, task: e.task, steps: e.steps, completedPrefix: pick(e) }))
  const lpipsValues = outcomes.flatMap((e) => (e.lpips === undefined ? [] : [e.lpips]))
  return {
    outcomes,
    tasks: stepwiseSuccess(judged((e) => e.completedPrefix)),
    groundTruthTasks: stepwiseSuccess(judged((e) => e.groundTruthPrefix)),
    ...(o.diagnosticJudge === undefined
      ? {}
      : { diagnostic: { tasks: stepwiseSuccess(judged((e) => e.diagnosticPrefix!)), groundTruthTasks: stepwiseSuccess(judged((e) => e.diagnosticGroundTruthPrefix!)) } }),
    ssim: available(mean(outcomes.map((e) => e.ssim))),
    lpips: o.lpips._tag === "available" ? available(mean(lpipsValues)) : unavailable(o.lpips.reason)
  }
}
