/**
 * The closed-loop CALVIN policy of VideoWorld 2 (paper §4.3): the AR transformer predicts a clip's latent
 * codes from the instruction and the current camera frame (plus the codes already executed for this
 * subtask); the action head turns each transition's codes, with the robot state at that moment, into the
 * actions of the frames the transition spans; the environment executes them; then the AR plans again
 * from the new frame. No video is decoded in the loop.
 */
import * as tf from "@tensorflow/tfjs"
import { type ArTransformer, encodeInstruction, historyStream, type InstructionVocabulary, sampleClip, type SamplingOptions } from "@vw2/ar"
import type { Rng } from "@vw2/nn"
import type { CalvinHead } from "./CalvinHead.ts"

export interface PolicyObservation {
  /** camera frame [H, W, 3], uint8 */
  readonly rgb: Uint8Array
  /** robot_obs [15] */
  readonly robotObs: Float32Array
}

export class CodePolicy {
  private readonly ar: ArTransformer
  private readonly head: CalvinHead
  private readonly vocabulary: InstructionVocabulary
  private readonly sampling: SamplingOptions
  private readonly rng: Rng
  /** codes executed so far in this subtask, clip by clip */
  private executed: Array<Int32Array> = []
  /** transitions of the current clip still to execute, each N codes */
  private pendingTransitions: Array<Int32Array> = []
  private pendingActions: Array<Float32Array> = []
  private instruction = ""
  /** AR calls made (one per planned clip) — reported as the policy's planning cost */
  plans = 0

  constructor(o: { ar: ArTransformer; head: CalvinHead; vocabulary: InstructionVocabulary; sampling: SamplingOptions; rng: Rng }) {
    if (o.ar.arch.codeVocab !== o.head.arch.codeVocab) throw new Error(`AR vocabulary ${o.ar.arch.codeVocab} ≠ head vocabulary ${o.head.arch.codeVocab}`)
    if (o.ar.arch.codesPerClip % o.head.arch.codesPerTransition !== 0) {
      throw new Error(`AR codes per clip ${o.ar.arch.codesPerClip} is not a multiple of the head's codes per transition ${o.head.arch.codesPerTransition}`)
    }
    this.ar = o.ar
    this.head = o.head
    this.vocabulary = o.vocabulary
    this.sampling = o.sampling
    this.rng = o.rng
  }

  /** Start a new subtask: forget the executed codes and any queued actions. */
  reset(instruction: string): void {
    this.instruction = instruction
    this.executed = []
    this.pendingTransitions = []
    this.pendingActions = []
  }

  private plan(observation: PolicyObservation): void {
    const { codesPerClip, codeVocab, historyClips, height, width } = this.ar.arch
    if (observation.rgb.length !== height * width * 3) throw new Error(`policy: frame has ${observation.rgb.length} bytes, the AR expects ${height}×${width}×3`)
    const frame = Float32Array.from(observation.rgb, (b) => b / 255)
    const history = new Int32Array(this.executed.length * codesPerClip)
    this.executed.forEach((c, j) => history.set(c, j * codesPerClip))
    const stream = historyStream(history, codesPerClip, this.executed.length, historyClips, codeVocab)
    const clip = sampleClip(this.ar, { text: encodeInstruction(this.vocabulary, this.instruction), frame, stream }, this.sampling, this.rng)
    this.plans++
    this.executed.push(clip.codes)
    const n = this.head.arch.codesPerTransition
    for (let i = 0; i < codesPerClip; i += n) this.pendingTransitions.push(clip.codes.slice(i, i + n))
  }

  private decodeTransition(codes: Int32Array, robotObs: Float32Array): void {
    const actions = tf.tidy(() => {
      const c = tf.tensor2d(codes, [1, codes.length], "int32")
      const p = this.head.arch.useProprio ? tf.tensor2d(robotObs, [1, robotObs.length]) : undefined
      return this.head.call(c, p).dataSync() as Float32Array
    })
    for (let a = 0; a < this.head.arch.actionsPerTransition; a++) this.pendingActions.push(actions.slice(a * 7, (a + 1) * 7))
  }

  /** The next 7-d action for this observation. */
  act(observation: PolicyObservation): Float32Array {
    if (this.pendingActions.length === 0) {
      if (this.pendingTransitions.length === 0) this.plan(observation)
      this.decodeTransition(this.pendingTransitions.shift()!, observation.robotObs)
    }
    return this.pendingActions.shift()!
  }
}
