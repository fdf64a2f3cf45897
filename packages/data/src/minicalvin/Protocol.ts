/**
 * CALVIN's long-horizon evaluation protocol on MiniCALVIN: seeded chains of 5 language-instructed
 * subtasks (no category repeated, each feasible from the state the previous ones leave), EP_LEN steps per
 * subtask, the chain stops at the first failure. Reports success rates for 1..5 consecutive subtasks and
 * Avg. Len. (the mean number completed), as in Mees et al. (2022), for any policy.
 *
 * Feasibility is decided by running the scripted expert on a copy of the world (the oracle must confirm
 * each subtask), so every sampled chain is solvable and the expert scores 100 %.
 */
import { SeededRandom } from "../dataset/Random.ts"
import { ExpertController, type Observation, type Policy } from "./Expert.ts"
import { render } from "./Render.ts"
import { completedTasks, feasibleTasks, taskSpec } from "./Tasks.ts"
import { cloneState, robotObs, sampleScene, sceneObs, step, type WorldState } from "./World.ts"

export const CHAIN_LENGTH = 5
/** steps allowed per subtask (the scripted expert needs at most ~45) */
export const DEFAULT_EP_LEN = 90
const EXPERT_MAX_STEPS = 200

export interface Chain {
  readonly seed: number
  readonly variant: string
  readonly initial: WorldState
  readonly tasks: ReadonlyArray<string>
}

/** Runs the expert for one subtask on `state` (mutated); returns the steps taken or undefined if it failed. */
export const solveWithExpert = (state: WorldState, task: string, onStep?: (action: Float32Array, before: WorldState) => void): number | undefined => {
  const start = cloneState(state)
  const controller = new ExpertController(task, state)
  let steps = 0
  while (!controller.done && steps < EXPERT_MAX_STEPS) {
    const action = controller.act(state)
    onStep?.(action, state)
    step(state, action)
    steps++
  }
  return completedTasks(start, state).has(task) ? steps : undefined
}

/** Depth-first search for a chain of feasible subtasks with distinct categories, in seeded random order. */
const searchChain = (state: WorldState, used: ReadonlySet<string>, length: number, rng: SeededRandom): string[] | undefined => {
  if (length === 0) return []
  const candidates = rng.shuffle(feasibleTasks(state).filter((t) => !used.has(taskSpec(t).category)))
  for (const task of candidates) {
    const next = cloneState(state)
    if (solveWithExpert(next, task) === undefined) continue
    const rest = searchChain(next, new Set([...used, taskSpec(task).category]), length - 1, rng)
    if (rest !== undefined) return [task, ...rest]
  }
  return undefined
}

/** A chain from a seed: the scene is sampled from the seed, then a feasible task sequence. */
export const sampleChain = (seed: number, variant = "D", length = CHAIN_LENGTH): Chain => {
  for (let attempt = 0; attempt < 50; attempt++) {
    const sceneSeed = attempt === 0 ? seed : seed * 1000 + attempt
    const initial = sampleScene(sceneSeed, variant)
    const tasks = searchChain(cloneState(initial), new Set(), length, SeededRandom.derive(sceneSeed, `minicalvin:chain:${variant}`))
    if (tasks !== undefined) return { seed: sceneSeed, variant, initial, tasks }
  }
  throw new Error(`MiniCALVIN: no feasible chain of ${length} subtasks for seed ${seed} (variant ${variant})`)
}

export const sampleChains = (count: number, seed: number, variant = "D"): Chain[] =>
  Array.from({ length: count }, (_, i) => sampleChain(SeededRandom.derive(seed, `chain:${i}`).nextUint32() % 1_000_000_007, variant))

export interface ChainSummary {
  /** successRates[k-1] = fraction of chains with at least k consecutive subtasks completed */
  readonly successRates: ReadonlyArray<number>
  readonly avgLen: number
}

/** The protocol's counting: from the number of consecutive completed subtasks of each chain. */
export const summarizeChains = (completed: ReadonlyArray<number>, length = CHAIN_LENGTH): ChainSummary => {
  for (const c of completed) {
    if (!Number.isInteger(c) || c < 0 || c > length) throw new RangeError(`completed subtask count ${c} is not an integer in [0, ${length}]`)
  }
  const n = completed.length
  return {
    successRates: Array.from({ length }, (_, k) => (n === 0 ? 0 : completed.filter((c) => c >= k + 1).length / n)),
    avgLen: n === 0 ? 0 : completed.reduce((a, b) => a + b, 0) / n
  }
}

export interface LongHorizonOptions {
  /** chains to evaluate, or how many to sample (with `seed` and `variant`) */
  readonly chains: ReadonlyArray<Chain> | number
  readonly seed?: number
  readonly variant?: string
  readonly epLen?: number
  /** observation frame size */
  readonly size?: number
  /** which annotation of each task to give the policy (default 0, the evaluation instruction) */
  readonly instructionIndex?: number
}

export interface ChainResult {
  readonly tasks: ReadonlyArray<string>
  readonly completed: number
  /** steps used by each attempted subtask */
  readonly steps: ReadonlyArray<number>
}

export interface LongHorizonReport extends ChainSummary {
  readonly chains: ReadonlyArray<ChainResult>
  /** per task: attempts and successes */
  readonly perTask: Readonly<Record<string, { readonly attempts: number; readonly successes: number }>>
}

/**
 * Evaluates a policy. `makePolicy` is called once per chain, so a policy's memory (e.g. its plan or a
 * recurrent state) starts fresh for each chain, as CALVIN resets the model per sequence.
 */
export const evaluateLongHorizon = async (makePolicy: () => Policy, options: LongHorizonOptions): Promise<LongHorizonReport> => {
  const chains = typeof options.chains === "number" ? sampleChains(options.chains, options.seed ?? 0, options.variant ?? "D") : options.chains
  const epLen = options.epLen ?? DEFAULT_EP_LEN
  const size = options.size ?? 64
  const results: ChainResult[] = []
  const perTask: Record<string, { attempts: number; successes: number }> = {}
  for (const chain of chains) {
    const policy = makePolicy()
    const state = cloneState(chain.initial)
    const steps: number[] = []
    let completed = 0
    for (const task of chain.tasks) {
      const spec = taskSpec(task)
      const instruction = spec.instructions[Math.min(options.instructionIndex ?? 0, spec.instructions.length - 1)]!
      const start = cloneState(state)
      let success = false
      let t = 0
      while (t < epLen && !success) {
        const observation: Observation = { frame: render(state, size), robotObs: robotObs(state), sceneObs: sceneObs(state), state: cloneState(state) }
        step(state, await policy(observation, instruction))
        t++
        success = completedTasks(start, state).has(task)
      }
      steps.push(t)
      const entry = (perTask[task] ??= { attempts: 0, successes: 0 })
      entry.attempts++
      if (!success) break
      entry.successes++
      completed++
    }
    results.push({ tasks: chain.tasks, completed, steps })
  }
  return { ...summarizeChains(results.map((r) => r.completed)), chains: results, perTask }
}
