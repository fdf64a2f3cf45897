/**
 * Training frames for the craft judge (docs/paper.md "Evaluation"; "What the paper leaves open": the paper's
 * classifier saw generated frames, ours must not). Every frame is freshly rendered by the MiniCraft generator
 * under appearances drawn from both appearance samplers with the judge's own random stream — never a
 * dataset episode, never a model's output — and labelled with the state it shows:
 * - settled frames (idle, reach, release: no step under way) of a ground-truth prefix: their state k;
 * - settled frames whose completed steps are not a prefix (steps done out of order): `other`;
 * - mid-action frames (a flap turning, a block in the air, progress in [0.3, 0.7]): `other`, as the exact
 *   judge (packages/data/src/minicraft/Judge.ts) matches them to no state — a state counts once the step is
 *   done, so the hand's whole action falls between two states;
 * - frames just after a step starts (progress < 0.3) or just before it ends (> 0.7): not scored (they look
 *   like the state before / after; forcing `other` there taught the classifier to doubt true states).
 * Each frame also carries its hand mask (the pixels the hand changes: the same frame rendered without it
 * differs there), for the hand-motion rule. A share of frames puts the hand off its scripted path (frozen
 * where it starts, or anywhere), so the mask is read from the pixels, never guessed from the state shown.
 */
import { MiniCraft } from "@vw2/data"
import { Rng } from "@vw2/nn"

type Task = MiniCraft.Task
type Pose = MiniCraft.Pose
type SamplerRng = Parameters<typeof MiniCraft.sampleAppearance>[1]

export interface RenderSettings {
  readonly height: number
  readonly width: number
  readonly supersample: number
  readonly framesPerStep: number
  readonly idleFrames: number
}

export interface JudgeSampleOptions extends RenderSettings {
  readonly tasks: ReadonlyArray<string>
  readonly appearancesPerTask: number
  readonly framesPerAppearance: number
  /** the judge's own stream (appearances, scripts, frame picks) */
  readonly seed: number
  /** share of frames from a script with two steps swapped, and from a random step order (the rest: ground truth) */
  readonly swappedShare: number
  readonly shuffledShare: number
  /**
   * share of frames whose hand is moved off its scripted path (half at a random place, half frozen where the
   * script starts it): the hand mask must be read from the pixels, not guessed from the state shown
   */
  readonly freeHandShare: number
  /** share of appearances drawn from the test sampler (the rest: train), the domain every judged video shows */
  readonly testAppearanceShare: number
}

export interface JudgeSamples {
  readonly count: number
  readonly height: number
  readonly width: number
  /** uint8 [count, H, W, 3] */
  readonly frames: Uint8Array
  /** index into `tasks` */
  readonly task: Int32Array
  /** state shown (0..steps), `other`, or −1 (not scored) */
  readonly state: Int32Array
  /** hand mask, uint8 [count, H, W]: 1 where the hand changes the pixel */
  readonly hand: Uint8Array
}

/** Progress range of a step under way whose frames are scored as `other` (outside it they look like a state). */
export const ACTION_SCORED: readonly [number, number] = [0.3, 0.7]

/**
 * Which state a pose shows for the judge: k, `other`, or −1 (ambiguous, not scored). A settled pose whose
 * completed steps are {1..k} shows state k only if it also looks like it: folds done in another order can
 * leave a different sheet (`sameAsState` compares the renderings).
 */
export const poseLabel = (pose: Pose, other: number, sameAsState: (pose: Pose) => boolean): number => {
  if (pose.active !== undefined) return pose.active >= ACTION_SCORED[0] && pose.active <= ACTION_SCORED[1] ? other : -1
  const done = pose.order.slice(0, pose.completed)
  if (!done.every((step) => step < pose.completed)) return other
  return done.every((step, i) => step === i) || sameAsState(pose) ? pose.completed : other
}

/**
 * Whether a settled pose renders like the ground-truth state with as many steps done (noise-free, no hand,
 * under one plain appearance), cached per task and order prefix: scene geometry does not depend on appearance.
 */
export const sceneEquivalence = (task: Task, settings: Pick<RenderSettings, "height" | "width" | "supersample">, appearance: MiniCraft.Appearance) => {
  const renderer = new MiniCraft.Renderer(task, appearance, { width: settings.width, height: settings.height, supersample: settings.supersample })
  const order = task.steps.map((_, i) => i)
  const truth = new Map<number, Uint8Array>()
  const cache = new Map<string, boolean>()
  return (pose: Pose): boolean => {
    const key = `${pose.completed}:${pose.order.slice(0, pose.completed).join(",")}`
    const known = cache.get(key)
    if (known !== undefined) return known
    if (!truth.has(pose.completed)) truth.set(pose.completed, renderer.render(MiniCraft.sceneAt(task, { order, completed: pose.completed }), undefined, undefined))
    const a = truth.get(pose.completed)!
    const b = renderer.render(MiniCraft.sceneAt(task, { order: pose.order, completed: pose.completed }), undefined, undefined)
    let differing = 0
    for (let p = 0; p < a.length; p += 3) {
      if (Math.max(Math.abs(a[p]! - b[p]!), Math.abs(a[p + 1]! - b[p + 1]!), Math.abs(a[p + 2]! - b[p + 2]!)) > 24) differing++
    }
    const same = differing <= 1
    cache.set(key, same)
    return same
  }
}

/** A pixel belongs to the hand when the hand changes it by more than this (uint8, largest channel): its anti-aliased fringe counts. */
const HAND_PIXEL = 24

/** The MiniCraft samplers' random interface over an @vw2/nn stream. */
export const samplerRng = (rng: Rng): SamplerRng => ({
  next: () => rng.next(),
  uniform: (lo: number, hi: number) => lo + (hi - lo) * rng.next(),
  int: (n: number) => Math.min(n - 1, rng.int(n)),
  pick: <A>(items: ReadonlyArray<A>): A => items[Math.min(items.length - 1, rng.int(items.length))] as A
})

/** A step order with steps `i` and `i + 1` exchanged (a counterfactual the judge must not accept past `i`). */
export const swappedOrder = (steps: number, i: number): number[] => {
  const order = Array.from({ length: steps }, (_, k) => k)
  order[i] = i + 1
  order[i + 1] = i
  return order
}

const shuffled = (steps: number, rng: Rng): number[] => {
  const order = Array.from({ length: steps }, (_, k) => k)
  for (let i = steps - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  return order
}

/** Renders the judge's training frames (a pure function of the options). */
export const renderJudgeSamples = (o: JudgeSampleOptions, other: number): JudgeSamples => {
  const count = o.tasks.length * o.appearancesPerTask * o.framesPerAppearance
  const frameSize = o.height * o.width * 3
  const frames = new Uint8Array(count * frameSize)
  const task = new Int32Array(count)
  const state = new Int32Array(count)
  const pixels = o.height * o.width
  const hand = new Uint8Array(count * pixels)
  const bare = new Uint8Array(frameSize)
  const rng = new Rng(o.seed ^ 0x6a0d6e)
  let n = 0
  o.tasks.forEach((name, taskIndex) => {
    const t: Task = MiniCraft.getTask(name)
    const steps = t.steps.length
    let same: ((pose: Pose) => boolean) | undefined
    for (let a = 0; a < o.appearancesPerTask; a++) {
      // both domains' samplers: the judge must read the unseen test appearances as well as the train ones
      // spread evenly: appearance a is a test draw when the running share of test draws falls below the target
      const testDraw = Math.floor((a + 1) * o.testAppearanceShare) > Math.floor(a * o.testAppearanceShare)
      const appearance = MiniCraft.sampleAppearance(testDraw ? "test" : "train", samplerRng(rng.fork()))
      const renderer = new MiniCraft.Renderer(t, appearance, { width: o.width, height: o.height, supersample: o.supersample })
      same ??= sceneEquivalence(t, o, appearance)
      const timing = { framesPerStep: o.framesPerStep, idleFrames: o.idleFrames }
      const scripts = [
        MiniCraft.timeline(t, MiniCraft.groundTruthScript(t), timing),
        MiniCraft.timeline(t, { order: swappedOrder(steps, rng.int(steps - 1)) }, timing),
        MiniCraft.timeline(t, { order: shuffled(steps, rng) }, timing)
      ]
      for (let f = 0; f < o.framesPerAppearance; f++) {
        const u = rng.next()
        const specs = scripts[u < o.swappedShare ? 1 : u < o.swappedShare + o.shuffledShare ? 2 : 0]!
        const index = rng.int(specs.length)
        const spec = specs[index]!
        const free = rng.next() < o.freeHandShare
        // the arm comes in from the spec's anchor (MiniCraft v2: along each step's line); free hands keep that arm
        const arm = !free
          ? { tip: spec.hand, anchor: spec.anchor }
          : rng.next() < 0.5
            ? { tip: specs[0]!.hand, anchor: specs[0]!.anchor }
            : { tip: { x: 1.8 * rng.next() - 0.9, y: 1.8 * rng.next() - 0.9 }, anchor: spec.anchor }
        const scene = MiniCraft.sceneAt(t, spec.pose)
        const frame = renderer.render(scene, arm, index, frames.subarray(n * frameSize, (n + 1) * frameSize))
        renderer.render(scene, undefined, index, bare) // same sensor noise: only the hand differs
        for (let p = 0; p < pixels; p++) {
          const i = 3 * p
          const d = Math.max(Math.abs(frame[i]! - bare[i]!), Math.abs(frame[i + 1]! - bare[i + 1]!), Math.abs(frame[i + 2]! - bare[i + 2]!))
          hand[n * pixels + p] = d > HAND_PIXEL ? 1 : 0
        }
        task[n] = taskIndex
        state[n] = poseLabel(spec.pose, other, same)
        n++
      }
    }
  })
  return { count, height: o.height, width: o.width, frames, task, state, hand }
}
