/**
 * MiniCALVIN demonstrations: play sequences of expert-solved subtask chains, written one subtask per
 * episode into the shared dataset layout (frames + 7-d rel_actions + robot_obs + scene_obs), and
 * optionally exported as
 *   - a CALVIN-layout copy (episode_XXXXXXX.npz, ep_start_end_ids.npy, auto_lang_ann.npy), and
 *   - Open-X-style RLDS shards for several "embodiments" (cameras and action conventions differ), the
 *     stand-in for Open-X co-training.
 * Train and test use disjoint scene variants (CALVIN's environment split, e.g. ABC → D).
 * Deterministic: the same options give byte-identical files.
 */
import * as path from "node:path"
import { DatasetWriter, type EpisodeWriter } from "../dataset/DatasetWriter.ts"
import type { DatasetManifest } from "../dataset/Manifest.ts"
import { SeededRandom } from "../dataset/Random.ts"
import { CalvinWriter } from "../formats/calvin.ts"
import { encodePng } from "../formats/image.ts"
import { RldsDatasetWriter, type RldsDatasetInfo } from "../formats/rlds.ts"
import { CHAIN_LENGTH, sampleChain } from "./Protocol.ts"
import { gripperCamera, render, STATIC_CAMERA, type Camera } from "./Render.ts"
import { completedTasks, taskSpec } from "./Tasks.ts"
import { ExpertController } from "./Expert.ts"
import { cloneState, robotObs, sceneObs, step, type WorldState } from "./World.ts"

/** An Open-X stand-in "embodiment": its own camera and action convention. */
export interface Embodiment {
  readonly name: string
  readonly camera: (s: WorldState) => Camera
  /** maps MiniCALVIN's rel_action to this embodiment's 7-d action */
  readonly action: (a: Float32Array) => Float32Array
  readonly description: string
}

export const EMBODIMENTS: ReadonlyArray<Embodiment> = [
  { name: "minicalvin_static", camera: () => STATIC_CAMERA, action: (a) => a, description: "static camera, CALVIN rel_actions" },
  { name: "minicalvin_wrist", camera: (s) => gripperCamera(s, 2.5), action: (a) => a, description: "wrist camera following the gripper, CALVIN rel_actions" },
  {
    name: "minicalvin_closeup",
    camera: () => ({ cx: 0.5, cy: 0.45, zoom: 1.4 }),
    // metric deltas (table units per step) and a 0/1 gripper, as several Open-X datasets use
    action: (a) => Float32Array.from([a[0]! * 0.03, a[1]! * 0.03, a[2]! * 0.03, 0, 0, a[5]! * 0.15, a[6]! > 0 ? 1 : 0]),
    description: "zoomed camera, metric delta actions, 0/1 gripper"
  }
]

export interface GenerateMiniCalvinOptions {
  readonly output: string
  readonly name?: string
  readonly seed: number
  /** play sequences (each a chain of `chainLength` subtasks, one episode per subtask) per split */
  readonly trainSequences: number
  readonly testSequences: number
  readonly trainVariants?: ReadonlyArray<string>
  readonly testVariants?: ReadonlyArray<string>
  readonly chainLength?: number
  /** frame size (square) */
  readonly size?: number
  /** also write the CALVIN layout here (training/ and validation/) */
  readonly calvinDir?: string
  /** also write RLDS shards (one TFDS dataset per embodiment) here */
  readonly rldsDir?: string
  readonly embodiments?: ReadonlyArray<string>
  readonly onSequence?: (done: number, total: number) => void
}

export interface GenerateMiniCalvinResult {
  readonly manifest: DatasetManifest
  readonly rlds: ReadonlyArray<RldsDatasetInfo>
}

/** A deterministic 384-d bag-of-words embedding (CALVIN stores MiniLM sentence embeddings there). */
const hashedEmbedding = (text: string, dim = 384): Float32Array => {
  const v = new Float32Array(dim)
  for (const word of text.toLowerCase().split(/\W+/).filter((w) => w.length > 0)) {
    let h = 0x811c9dc5
    for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193) >>> 0
    v[h % dim]! += (h & 0x10000) !== 0 ? 1 : -1
  }
  const norm = Math.hypot(...v) || 1
  return v.map((x) => x / norm)
}

export const generateMiniCalvin = (options: GenerateMiniCalvinOptions): GenerateMiniCalvinResult => {
  const size = options.size ?? 64
  const chainLength = options.chainLength ?? CHAIN_LENGTH
  const trainVariants = options.trainVariants ?? ["A", "B", "C"]
  const testVariants = options.testVariants ?? ["D"]
  const writer = new DatasetWriter(options.output, { name: options.name ?? "minicalvin", source: "minicalvin", height: size, width: size, fps: 15 })
  const calvin = options.calvinDir === undefined
    ? undefined
    : { train: new CalvinWriter(path.join(options.calvinDir, "training")), test: new CalvinWriter(path.join(options.calvinDir, "validation")) }
  const embodiments = (options.embodiments ?? EMBODIMENTS.map((e) => e.name)).map((name) => {
    const e = EMBODIMENTS.find((x) => x.name === name)
    if (e === undefined) throw new RangeError(`unknown embodiment ${JSON.stringify(name)} (known: ${EMBODIMENTS.map((x) => x.name).join(", ")})`)
    return e
  })
  const rlds = options.rldsDir === undefined
    ? []
    : embodiments.map((e) => ({
      embodiment: e,
      writer: new RldsDatasetWriter(options.rldsDir!, { name: e.name, version: "1.0.0", description: e.description, imageShape: [size, size, 3], actionDim: 7 })
    }))

  const plan = [
    ...Array.from({ length: options.trainSequences }, (_, i) => ({ split: "train" as const, i, variant: trainVariants[i % trainVariants.length]! })),
    ...Array.from({ length: options.testSequences }, (_, i) => ({ split: "test" as const, i, variant: testVariants[i % testVariants.length]! }))
  ]
  const stats = { subtasks: 0, steps: 0 }
  plan.forEach(({ split, i, variant }, done) => {
    const chainSeed = SeededRandom.derive(options.seed, `minicalvin:${split}:${i}`).nextUint32()
    const chain = sampleChain(chainSeed, variant, chainLength)
    const rng = SeededRandom.derive(chainSeed, "minicalvin:instructions")
    const state = cloneState(chain.initial)
    chain.tasks.forEach((task, k) => {
      const spec = taskSpec(task)
      // training annotations vary like CALVIN's; test episodes carry the evaluation instruction
      const instruction = split === "train" ? rng.pick(spec.instructions) : spec.instructions[0]!
      const episode: EpisodeWriter = writer.beginEpisode({
        id: `${split}-${variant}-${String(i).padStart(5, "0")}-${k}-${task}`,
        split,
        task,
        instruction,
        domain: variant,
        appearance: { variant, sceneSeed: chain.seed, chainIndex: k, chain: [...chain.tasks] },
        robot: true
      })
      const start = cloneState(state)
      const controller = new ExpertController(task, state)
      const images: Record<string, Uint8Array[]> = {}
      const actions: Record<string, number[]> = {}
      const calvinWriter = calvin?.[split]
      const calvinStart = calvinWriter?.nextIndex ?? 0
      const record = (action: Float32Array, t: number): void => {
        const frame = render(state, size)
        const label = { step: t, phase: task, state: { held: state.robot.held ?? null, drawer: state.drawer, slider: state.slider, lightbulb: state.lightbulb, led: state.led } }
        episode.appendFrame(frame, label, { action, robotObs: robotObs(state), sceneObs: sceneObs(state) })
        calvinWriter?.appendStep({
          rgbStatic: { data: frame, height: size, width: size },
          rgbGripper: { data: render(state, Math.max(8, size >> 1), Math.max(8, size >> 1), gripperCamera(state)), height: Math.max(8, size >> 1), width: Math.max(8, size >> 1) },
          actions: [state.robot.x, state.robot.y, state.robot.z, 0, 0, state.robot.yaw, action[6]! >= 0 ? 1 : -1],
          relActions: action,
          robotObs: robotObs(state),
          sceneObs: sceneObs(state)
        })
        for (const { embodiment } of rlds) {
          const image = embodiment.camera === EMBODIMENTS[0]!.camera ? frame : render(state, size, size, embodiment.camera(state))
          ;(images[embodiment.name] ??= []).push(encodePng({ width: size, height: size, data: image }))
          ;(actions[embodiment.name] ??= []).push(...embodiment.action(action))
        }
      }
      let t = 0
      while (!controller.done && t < 200) {
        const action = controller.act(state)
        record(action, t)
        step(state, action)
        t++
      }
      if (!completedTasks(start, state).has(task)) throw new Error(`MiniCALVIN expert failed ${task} in sequence ${split}/${i} (seed ${chain.seed}); this is a bug`)
      // the final frame, with a no-op action keeping the gripper as it is
      record(Float32Array.from([0, 0, 0, 0, 0, 0, state.robot.gripperAction]), t)
      episode.close()
      stats.subtasks++
      stats.steps += t + 1
      if (calvinWriter !== undefined) calvinWriter.annotate(calvinStart, calvinWriter.nextIndex - 1, instruction, task, hashedEmbedding(instruction))
      for (const { embodiment, writer: shard } of rlds) {
        if (split === "train") shard.write({ images: images[embodiment.name]!, actions: actions[embodiment.name]!, instruction, metadata: { episode_id: `${variant}-${i}-${k}` } })
      }
    })
    calvin?.[split].endEpisode()
    options.onSequence?.(done + 1, plan.length)
  })
  calvin?.train.close()
  calvin?.test.close()
  const rldsInfo = rlds.map((r) => r.writer.close())
  const manifest = writer.finish({ subtasks: stats.subtasks, steps: stats.steps, trainVariants: [...trainVariants], testVariants: [...testVariants], chainLength })
  return { manifest, rlds: rldsInfo }
}
