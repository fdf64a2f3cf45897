/**
 * What a dLDM's codes carry, measured on held-out test-domain clips (issue 13 item 6; docs/paper.md "dLDM",
 * "What the paper leaves open": the paper's only evidence is a UMAP):
 * - reconstruction L1 (frames 1..T−1, [0, 1] units) with the clip's own codes, with another episode's codes
 *   (swapped), and with no motion at all (repeat): teacher-forced (each transition from the true previous
 *   frame; repeat = that previous frame) and chained (decodeLowFi from frame 0; repeat = frame 0);
 * - code usage: distinct FSQ indices and perplexity exp(H) over all test codes;
 * - linear probes from the code vectors to the ground-truth step (action-phase clips) and phase, fit on
 *   train-split clips, scored on test clips;
 * - with a judge: each test episode rolled out clip by clip with its own ground-truth codes (the best any AR
 *   can do with this dLDM), chained from the decoder's own last frame, and with random codes (a negative).
 */
import * as tf from "@tensorflow/tfjs"
import type { Dataset } from "@vw2/data"
import type { Dldm } from "@vw2/dldm"
import { Rng } from "@vw2/nn"
import { stepwiseSuccess } from "../StepwiseSuccess.ts"
import type { TaskSuccess } from "../PaperTable.ts"
import { fitLinearProbe, type ProbeFit } from "./LinearProbe.ts"

/** A step judge (the `craft-judge` classifier's CraftJudge fits; `episode` lets an exact, per-episode judge be used too). */
export interface ProbeJudge {
  readonly steps: (task: string, episode: string) => number
  readonly completedPrefix: (task: string, frames: Uint8Array, T: number, episode: string) => number
}

export interface DldmProbeOptions {
  readonly trainSplit: string
  readonly testSplit: string
  /** frames between clip starts */
  readonly clipStride: number
  /** at most this many fit-set clips for the probes (evenly spread) */
  readonly maxTrainClips: number
  readonly probeIterations: number
  /** test episodes per task rolled out under the judge (0 = all) */
  readonly rolloutEpisodesPerTask: number
  readonly seed: number
}

export interface L1Triple {
  readonly own: number
  readonly swapped: number
  readonly repeat: number
  /** (swapped / own − 1) in % */
  readonly swappedOverOwnPct: number
}

export interface Rollouts {
  readonly tasks: ReadonlyArray<TaskSuccess>
  /** share of episodes with ≥ 1 step found */
  readonly step1: number
  /** mean over episodes of found / steps */
  readonly meanFraction: number
  readonly perEpisode: ReadonlyArray<{ readonly id: string; readonly task: string; readonly found: number; readonly steps: number }>
}

export interface DldmProbeResult {
  readonly testClips: number
  readonly teacherForced: L1Triple
  readonly teacherForcedMoving: L1Triple
  readonly chained: L1Triple
  readonly codes: { readonly distinct: number; readonly perplexity: number; readonly total: number; readonly vocabulary: number }
  readonly stepProbe: ProbeFit
  readonly phaseProbe: ProbeFit
  readonly judged?: {
    readonly groundTruth: Rollouts
    /** own codes, every clip chained from the decoder's last frame */
    readonly oracle: Rollouts
    /** own codes, every clip started from the true frame */
    readonly oracleTrueStarts: Rollouts
    readonly randomCodes: Rollouts
  }
}

interface ClipSet {
  /** [n, T, H, W, 3] in [0, 1] */
  readonly frames: Float32Array
  readonly n: number
  readonly episode: ReadonlyArray<string>
  readonly step: ReadonlyArray<number>
  readonly phase: ReadonlyArray<string>
}

const PHASES = ["idle", "reach", "act", "release"] as const
const phaseClass = (p: string): number => PHASES.indexOf((p === "fold" || p === "carry" ? "act" : p) as (typeof PHASES)[number])

/** Clips of T frames every `stride` frames of a split; labels = the clip's last frame's step and phase. */
const readClips = (dataset: Dataset, split: string, T: number, stride: number, limit: number): ClipSet => {
  const refs: Array<{ id: string; start: number }> = []
  for (const ep of dataset.episodes({ split })) for (let s = 0; s + T <= ep.length; s += stride) refs.push({ id: ep.id, start: s })
  if (refs.length === 0) throw new Error(`${dataset.dir}: no clip of ${T} frames in split "${split}"`)
  const n = Math.min(refs.length, limit)
  const chosen = Array.from({ length: n }, (_, i) => refs[Math.floor((i * refs.length) / n)]!)
  const size = dataset.height * dataset.width * 3
  const frames = new Float32Array(n * T * size)
  const step: number[] = []
  const phase: string[] = []
  const metas = new Map<string, ReturnType<Dataset["meta"]>>()
  chosen.forEach((r, i) => {
    const bytes = dataset.readFrames(r.id, Array.from({ length: T }, (_, t) => r.start + t))
    for (let k = 0; k < bytes.length; k++) frames[i * T * size + k] = bytes[k]! / 255
    const meta = metas.get(r.id) ?? dataset.meta(r.id)
    metas.set(r.id, meta)
    const label = meta.frames[r.start + T - 1]!
    step.push(label.step)
    phase.push(label.phase)
  })
  return { frames, n, episode: chosen.map((r) => r.id), step, phase }
}

const perplexityOf = (indices: ArrayLike<number>): { distinct: number; perplexity: number } => {
  const counts = new Map<number, number>()
  for (let i = 0; i < indices.length; i++) counts.set(indices[i]!, (counts.get(indices[i]!) ?? 0) + 1)
  let h = 0
  for (const c of counts.values()) h -= (c / indices.length) * Math.log(c / indices.length)
  return { distinct: counts.size, perplexity: Math.exp(h) }
}

const triple = (own: number[], swapped: number[], repeat: number[], pick?: number[]): L1Triple => {
  const m = (xs: number[]) => {
    const v = pick === undefined ? xs : pick.map((i) => xs[i]!)
    return v.reduce((a, b) => a + b, 0) / v.length
  }
  return { own: m(own), swapped: m(swapped), repeat: m(repeat), swappedOverOwnPct: 100 * (m(swapped) / m(own) - 1) }
}

/** Per-clip mean |a − b| over frames 1..T−1 of [n, T, H, W, 3]. */
const clipL1 = (a: tf.Tensor, b: tf.Tensor): number[] =>
  tf.tidy(() => {
    const t = a.shape[1]!
    const d = tf.abs(tf.sub(tf.slice(a, [0, 1], [-1, t - 1]), tf.slice(b, [0, 1], [-1, t - 1])))
    return Array.from(tf.mean(tf.reshape(d, [a.shape[0]!, -1]), 1).dataSync())
  })

const BATCH = 32

/** Codes of a clip set, in batches: vectors [n, J·N·levels] and indices. */
const encodeSet = (model: Dldm, set: ClipSet): { vectors: number[][]; indices: Int32Array } => {
  const { frames: T, height: H, width: W } = model.config
  const size = T * H * W * 3
  const vectors: number[][] = []
  const indices = new Int32Array(set.n * model.geo.codesPerClip)
  for (let i = 0; i < set.n; i += BATCH) {
    const n = Math.min(BATCH, set.n - i)
    const [v, idx] = tf.tidy(() => {
      const video = tf.tensor5d(set.frames.subarray(i * size, (i + n) * size), [n, T, H, W, 3])
      const c = model.codesOf(video)
      return [c.codes.reshape([n, -1]).arraySync() as number[][], c.indices.dataSync() as Int32Array]
    })
    vectors.push(...v)
    indices.set(idx, i * model.geo.codesPerClip)
  }
  return { vectors, indices }
}

/** Own / swapped / repeat reconstruction over a clip set (partner: half the set away, another episode). */
const reconstruction = (model: Dldm, set: ClipSet) => {
  const { frames: T, height: H, width: W, temporalCompression: tc } = model.config
  const size = T * H * W * 3
  const partner = set.episode.map((e, i) => {
    for (let k = 0; k < set.n; k++) {
      const j = (i + Math.floor(set.n / 2) + k) % set.n
      if (set.episode[j] !== e) return j
    }
    return (i + 1) % set.n
  })
  const all = encodeSet(model, set)
  const prevOf = Array.from({ length: T }, (_, t) => (t === 0 ? 0 : tc * Math.floor((t - 1) / tc))) // frame t's transition start
  const out = { tfOwn: [] as number[], tfSwapped: [] as number[], tfRepeat: [] as number[], chOwn: [] as number[], chSwapped: [] as number[], chRepeat: [] as number[] }
  for (let i = 0; i < set.n; i += BATCH) {
    const n = Math.min(BATCH, set.n - i)
    tf.tidy(() => {
      const video = tf.tensor5d(set.frames.subarray(i * size, (i + n) * size), [n, T, H, W, 3])
      const own = model.codesOf(video).codes
      const swapped = tf.tensor4d(
        Array.from({ length: n }, (_, k) => all.vectors[partner[i + k]!]!).flat(),
        own.shape as [number, number, number, number]
      )
      const first = tf.slice(video, [0, 0], [-1, 1])
      out.tfOwn.push(...clipL1(model.reconstruct(video, own), video))
      out.tfSwapped.push(...clipL1(model.reconstruct(video, swapped), video))
      out.tfRepeat.push(...clipL1(tf.gather(video, prevOf, 1), video))
      out.chOwn.push(...clipL1(model.decodeLowFi(first, own), video))
      out.chSwapped.push(...clipL1(model.decodeLowFi(first, swapped), video))
      out.chRepeat.push(...clipL1(tf.tile(first, [1, T, 1, 1, 1]), video))
    })
  }
  // the moving half: clips whose repeat error is above the median (idle clips dilute the mean)
  const order = out.tfRepeat.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0])
  const moving = order.slice(Math.floor(order.length / 2)).map(([, i]) => i)
  return {
    teacherForced: triple(out.tfOwn, out.tfSwapped, out.tfRepeat),
    teacherForcedMoving: triple(out.tfOwn, out.tfSwapped, out.tfRepeat, moving),
    chained: triple(out.chOwn, out.chSwapped, out.chRepeat),
    indices: all.indices,
    vectors: all.vectors
  }
}

/**
 * Roll an episode out clip by clip (clip c covers frames c·(T−1) .. c·(T−1)+T−1, the tail held on the last
 * frame, as tokenize does): codes from `codesFor`, each clip decoded from the previous clip's last decoded
 * frame (quantised to 8 bits, as a video file would hold it) or, with `trueStarts`, from the true frame.
 * Returns uint8 [L, H, W, 3].
 */
const rolloutEpisode = (model: Dldm, episode: Uint8Array, L: number, codes: tf.Tensor3D, trueStarts: boolean): Uint8Array => {
  const { frames: T, height: H, width: W } = model.config
  const size = H * W * 3
  const out = new Uint8Array(L * size)
  out.set(episode.subarray(0, size), 0)
  let cur = Float32Array.from(episode.subarray(0, size), (b) => b / 255)
  for (let c = 0; c < codes.shape[0]; c++) {
    const s = c * (T - 1)
    if (trueStarts) cur = Float32Array.from(episode.subarray(s * size, (s + 1) * size), (b) => b / 255)
    const clip = tf.tidy(() => {
      const video = model.decodeLowFi(tf.tensor4d(cur, [1, H, W, 3]), tf.slice(codes, [c, 0, 0], [1, -1, -1]))
      return tf.round(tf.mul(tf.clipByValue(video, 0, 1), 255)).dataSync()
    })
    for (let t = 1; t < T && s + t < L; t++) out.set(Uint8Array.from(clip.subarray(t * size, (t + 1) * size)), (s + t) * size)
    cur = Float32Array.from(clip.subarray((T - 1) * size, T * size), (b) => b / 255)
  }
  return out
}

/** Codes of every clip of an episode (tail clip held on the last frame): [C, J, N] int32. */
const episodeCodes = (model: Dldm, episode: Uint8Array, L: number): tf.Tensor3D => {
  const { frames: T, height: H, width: W } = model.config
  const size = H * W * 3
  const clips = Math.max(1, Math.ceil((L - 1) / (T - 1)))
  const frames = new Float32Array(clips * T * size)
  for (let c = 0; c < clips; c++)
    for (let t = 0; t < T; t++) {
      const f = Math.min(L - 1, c * (T - 1) + t)
      for (let k = 0; k < size; k++) frames[(c * T + t) * size + k] = episode[f * size + k]! / 255
    }
  return tf.tidy(() => model.encode(tf.tensor5d(frames, [clips, T, H, W, 3])))
}

const summarise = (per: Rollouts["perEpisode"]): Rollouts => ({
  tasks: stepwiseSuccess(per.map((e) => ({ episode: e.id, task: e.task, steps: e.steps, completedPrefix: e.found }))),
  step1: per.filter((e) => e.found >= 1).length / per.length,
  meanFraction: per.reduce((a, e) => a + e.found / e.steps, 0) / per.length,
  perEpisode: per
})

const judgedRollouts = (model: Dldm, dataset: Dataset, judge: ProbeJudge, o: DldmProbeOptions, onEpisode: (id: string) => void): NonNullable<DldmProbeResult["judged"]> => {
  const perTask = new Map<string, number>()
  const episodes = dataset.episodes({ split: o.testSplit }).filter((e) => {
    const n = perTask.get(e.task) ?? 0
    perTask.set(e.task, n + 1)
    return o.rolloutEpisodesPerTask === 0 || n < o.rolloutEpisodesPerTask
  })
  const rng = new Rng(o.seed * 7919 + 17)
  const rows = { gt: [] as Array<Rollouts["perEpisode"][number]>, oracle: [] as Array<Rollouts["perEpisode"][number]>, trueStarts: [] as Array<Rollouts["perEpisode"][number]>, random: [] as Array<Rollouts["perEpisode"][number]> }
  for (const ep of episodes) {
    const L = ep.length
    const bytes = dataset.readFrames(ep.id, Array.from({ length: L }, (_, t) => t))
    const steps = judge.steps(ep.task, ep.id)
    const judged = (video: Uint8Array) => ({ id: ep.id, task: ep.task, steps, found: judge.completedPrefix(ep.task, video, L, ep.id) })
    const own = episodeCodes(model, bytes, L)
    const random = tf.tensor3d(Array.from({ length: own.size }, () => Math.floor(rng.next() * model.geo.vocabulary)), own.shape, "int32")
    try {
      rows.gt.push(judged(bytes))
      rows.oracle.push(judged(rolloutEpisode(model, bytes, L, own, false)))
      rows.trueStarts.push(judged(rolloutEpisode(model, bytes, L, own, true)))
      rows.random.push(judged(rolloutEpisode(model, bytes, L, random, false)))
    } finally {
      own.dispose()
      random.dispose()
    }
    onEpisode(ep.id)
  }
  return { groundTruth: summarise(rows.gt), oracle: summarise(rows.oracle), oracleTrueStarts: summarise(rows.trueStarts), randomCodes: summarise(rows.random) }
}

export const probeDldm = (
  model: Dldm,
  dataset: Dataset,
  judge: ProbeJudge | undefined,
  o: DldmProbeOptions,
  log: (message: string) => void = () => {}
): DldmProbeResult => {
  const T = model.config.frames
  if (dataset.height !== model.config.height || dataset.width !== model.config.width) {
    throw new Error(`${dataset.dir}: frames are ${dataset.height}×${dataset.width}, the dLDM expects ${model.config.height}×${model.config.width}`)
  }
  const test = readClips(dataset, o.testSplit, T, o.clipStride, Number.MAX_SAFE_INTEGER)
  const rec = reconstruction(model, test)
  log(`dldm-probe: ${test.n} ${o.testSplit} clips reconstructed`)
  const usage = perplexityOf(rec.indices)
  const train = readClips(dataset, o.trainSplit, T, o.clipStride, o.maxTrainClips)
  const trainCodes = encodeSet(model, train)
  const probe = { iterations: o.probeIterations, lr: 0.05, l2: 1e-3 }
  // step: on action-phase clips, where the motion is the step's own (as the reference probe does)
  const acting = (set: ClipSet) => set.phase.map((p, i) => (p === "fold" || p === "carry" ? i : -1)).filter((i) => i >= 0)
  const [aTrain, aTest] = [acting(train), acting(test)]
  const stepProbe = fitLinearProbe(
    aTrain.map((i) => trainCodes.vectors[i]!),
    aTrain.map((i) => train.step[i]!),
    aTest.map((i) => rec.vectors[i]!),
    aTest.map((i) => test.step[i]!),
    probe
  )
  const phaseProbe = fitLinearProbe(trainCodes.vectors, train.phase.map(phaseClass), rec.vectors, test.phase.map(phaseClass), probe)
  log(`dldm-probe: probes fit on ${train.n} ${o.trainSplit} clips`)
  const judged = judge === undefined ? undefined : judgedRollouts(model, dataset, judge, o, (id) => log(`dldm-probe: rolled out ${id}`))
  return {
    testClips: test.n,
    teacherForced: rec.teacherForced,
    teacherForcedMoving: rec.teacherForcedMoving,
    chained: rec.chained,
    codes: { ...usage, total: rec.indices.length, vocabulary: model.geo.vocabulary },
    stepProbe,
    phaseProbe,
    ...(judged === undefined ? {} : { judged })
  }
}

/** Flat `probe/...` metrics of a result. */
export const probeMetrics = (r: DldmProbeResult): Record<string, number> => {
  const m: Record<string, number> = {}
  const l1 = (name: string, t: L1Triple) => {
    m[`probe/${name}/own_l1`] = t.own
    m[`probe/${name}/swapped_l1`] = t.swapped
    m[`probe/${name}/repeat_l1`] = t.repeat
    m[`probe/${name}/swapped_over_own_pct`] = t.swappedOverOwnPct
  }
  l1("teacher_forced", r.teacherForced)
  l1("teacher_forced_moving", r.teacherForcedMoving)
  l1("chained", r.chained)
  m["probe/codes/distinct"] = r.codes.distinct
  m["probe/codes/perplexity"] = r.codes.perplexity
  for (const [name, p] of [["step", r.stepProbe], ["phase", r.phaseProbe]] as const) {
    m[`probe/${name}/accuracy`] = p.testAccuracy
    m[`probe/${name}/train_accuracy`] = p.trainAccuracy
    m[`probe/${name}/chance`] = p.chance
    m[`probe/${name}/over_chance`] = p.testAccuracy / p.chance
  }
  if (r.judged !== undefined) {
    for (const [name, ro] of [["ground_truth", r.judged.groundTruth], ["oracle", r.judged.oracle], ["oracle_true_starts", r.judged.oracleTrueStarts], ["random_codes", r.judged.randomCodes]] as const) {
      m[`probe/rollout/${name}/step_1`] = ro.step1
      m[`probe/rollout/${name}/mean_fraction`] = ro.meanFraction
      const steps = Math.max(...ro.tasks.map((t) => t.stepSuccessPct.length))
      for (let k = 0; k < steps; k++) {
        const rates = ro.tasks.filter((t) => k < t.stepSuccessPct.length).map((t) => t.stepSuccessPct[k]! / 100)
        m[`probe/rollout/${name}/step_${k + 1}`] = rates.reduce((a, b) => a + b, 0) / rates.length
      }
    }
  }
  return m
}

/** The markdown report. */
export const probeMarkdown = (r: DldmProbeResult): string => {
  const f = (x: number) => x.toFixed(4)
  const row = (name: string, t: L1Triple) => `| ${name} | ${f(t.own)} | ${f(t.swapped)} | ${f(t.repeat)} | ${t.swappedOverOwnPct.toFixed(1)} % |`
  const p = (name: string, q: ProbeFit) =>
    `| ${name} | ${(100 * q.testAccuracy).toFixed(1)} % | ${(100 * q.chance).toFixed(1)} % | ${(q.testAccuracy / q.chance).toFixed(2)}× | ${(100 * q.trainAccuracy).toFixed(1)} % | ${q.trainSize} / ${q.testSize} |`
  const lines = [
    `# dLDM probe (${r.testClips} held-out test clips)`,
    "",
    "Reconstruction L1 over frames 1..T−1 ([0, 1] units). Repeat: the previous frame (teacher-forced) or frame 0 (chained).",
    "",
    "| decode | own | swapped | repeat | swapped / own − 1 |",
    "|---|---|---|---|---|",
    row("teacher-forced", r.teacherForced),
    row("teacher-forced, moving half", r.teacherForcedMoving),
    row("chained from frame 0", r.chained),
    "",
    `Codes: ${r.codes.distinct} distinct of ${r.codes.vocabulary}, perplexity ${r.codes.perplexity.toFixed(1)} over ${r.codes.total} test codes.`,
    "",
    "| linear probe (codes →) | test accuracy | chance | ÷ chance | train accuracy | fit / test clips |",
    "|---|---|---|---|---|---|",
    p("step (action-phase clips)", r.stepProbe),
    p("phase (idle / reach / act / release)", r.phaseProbe)
  ]
  if (r.judged !== undefined) {
    lines.push("", "Judged rollouts of whole test episodes (share of episodes with ≥ k steps, averaged over tasks):", "")
    const rows = [["ground truth", r.judged.groundTruth], ["own codes, chained (oracle AR)", r.judged.oracle], ["own codes, true clip starts", r.judged.oracleTrueStarts], ["random codes, chained", r.judged.randomCodes]] as const
    const steps = Math.max(...rows.flatMap(([, ro]) => ro.tasks.map((t) => t.stepSuccessPct.length)))
    lines.push(`| video | ${Array.from({ length: steps }, (_, k) => `step ${k + 1}`).join(" | ")} | mean found / steps |`)
    lines.push(`|---|${"---|".repeat(steps + 1)}`)
    for (const [name, ro] of rows) {
      const at = (k: number) => {
        const rates = ro.tasks.filter((t) => k < t.stepSuccessPct.length).map((t) => t.stepSuccessPct[k]!)
        return rates.length === 0 ? "—" : `${(rates.reduce((a, b) => a + b, 0) / rates.length).toFixed(0)} %`
      }
      lines.push(`| ${name} | ${Array.from({ length: steps }, (_, k) => at(k)).join(" | ")} | ${(100 * ro.meanFraction).toFixed(1)} % |`)
    }
  }
  return lines.join("\n") + "\n"
}
