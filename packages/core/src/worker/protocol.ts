/**
 * The worker protocol: how any parent process (the local executor in Node, the Ray bridge in Python, a
 * shell script) runs ONE stage invocation in a fresh process.
 *
 * Launch:  node packages/core/src/worker/main.ts <spec.json>
 *   (Node ≥ 22.18 / 24 runs the .ts sources directly; cwd does not matter, all paths in the spec are absolute.)
 *
 * spec.json (`WorkerSpec`, JSON):
 *   { "protocol": 1,
 *     "experimentFile": "/abs/experiments/quickstart.ts",   // re-imported to find the step's stage
 *     "step": "fit",                                         // step name in the experiment's pipeline
 *     "config": { ... },                                     // the step's resolved config slice (encoded JSON)
 *     "seed": 0,
 *     "invocationHash": "<64 hex>",
 *     "inputs": { "dataset": { "dir": "/abs/.vw2/store/<h>/dataset", "kind": "toy-dataset", "hash": "<h>" } },
 *     "outputRoot": "/abs/.vw2/tmp/<h>-x/",                  // staging dir: output <name> goes to <outputRoot>/<name>
 *     "scratchDir": "/abs/.vw2/tmp/<h>-x.scratch",          // deleted by the parent afterwards
 *     "resumeDir": "/abs/.vw2/resume/<h>",                  // survives crashes; mid-stage checkpoints
 *     "pauseAtStep": 200,                                    // optional: an early-stopping rung to stop at
 *     "gpus": ["0"],                                         // also exported by the parent as CUDA_VISIBLE_DEVICES
 *     "cpus": 1,
 *     "eventsFd": 3 }                                        // optional; default 1 (stdout)
 *
 * Events: one JSON object per line on `eventsFd`, each with `"vw2": 1` and a `type` (`WorkerEvent` below):
 *   started → (progress | metrics | log | upload | checkpoint)* → done | failed.
 *   Lines on that fd that are not JSON objects with "vw2": 1 (e.g. a native library printing to stdout when
 *   eventsFd is 1) must be treated as log text by the parent. stderr is free-form log text.
 *
 * Exit status: 0 after `done`; 1 after `failed` (the stage failed); 2 when the spec is unusable (no event
 * is guaranteed then: read stderr).
 *
 * Cancellation: the parent kills the worker's process group (start it as a group leader: Node
 * `detached: true`, Python `start_new_session=True`) with SIGTERM, then SIGKILL after a grace period. On
 * SIGTERM the worker aborts `ctx.signal`, interrupts the stage and exits 143. If the parent keeps the
 * worker's stdin as a pipe, EOF on stdin means the parent died: the worker exits the same way.
 *
 * The worker never publishes: after `done` the parent verifies and publishes `outputRoot` into the store.
 *
 * Serve mode (what the local executor uses, to pay Node start-up and module loading once per worker rather
 * than once per invocation): `node packages/core/src/worker/main.ts --serve` reads one WorkerSpec per line
 * on stdin and runs them one after another, emitting the same events for each (each spec's `eventsFd`);
 * after `done` or `failed` it is ready for the next line. EOF on stdin ends it (exit 0). The parent must
 * give every spec of one worker the same GPUs, since CUDA_VISIBLE_DEVICES is fixed at process start.
 */

export interface InputArtifactSpec {
  readonly dir: string
  readonly kind: string
  readonly hash: string
}

export interface WorkerSpec {
  readonly protocol: 1
  readonly experimentFile: string
  readonly step: string
  readonly config: unknown
  readonly seed: number
  readonly invocationHash: string
  readonly inputs: Readonly<Record<string, InputArtifactSpec>>
  readonly outputRoot: string
  readonly scratchDir: string
  readonly resumeDir: string
  readonly pauseAtStep?: number
  readonly gpus: ReadonlyArray<string>
  readonly cpus: number
  readonly eventsFd?: number
}

/** What a running stage reports; identical whichever executor runs it. */
export type StageEvent =
  | { readonly type: "progress"; readonly done: number; readonly total: number; readonly message?: string }
  | { readonly type: "metrics"; readonly step: number; readonly timestamp: number; readonly values: Readonly<Record<string, number>> }
  | { readonly type: "log"; readonly message: string; readonly timestamp: number }
  | { readonly type: "upload"; readonly path: string }
  /** a durable mid-stage checkpoint at `step` of `total` now sits in the invocation's resume directory */
  | { readonly type: "checkpoint"; readonly step: number; readonly total: number }

export type WorkerEvent =
  | (StageEvent & { readonly vw2: 1 })
  | { readonly vw2: 1; readonly type: "started"; readonly pid: number }
  | { readonly vw2: 1; readonly type: "done" }
  | { readonly vw2: 1; readonly type: "failed"; readonly message: string; readonly stack?: string }

export const workerExitCodes = { done: 0, failed: 1, badSpec: 2, interrupted: 143 } as const

/** Parses one line from the events fd: a WorkerEvent, or undefined for anything else (treat as log text). */
export const parseWorkerEvent = (line: string): WorkerEvent | undefined => {
  if (!line.startsWith("{")) return undefined
  try {
    const value: unknown = JSON.parse(line)
    if (typeof value === "object" && value !== null && (value as { vw2?: unknown }).vw2 === 1 && typeof (value as { type?: unknown }).type === "string") {
      return value as WorkerEvent
    }
  } catch {
    // not an event line
  }
  return undefined
}

/** Checks a parsed spec file and names the first bad field. */
export const checkWorkerSpec = (u: unknown): WorkerSpec => {
  const fail = (field: string, expected: string): never => {
    throw new TypeError(`worker spec: ${field} must be ${expected}`)
  }
  if (typeof u !== "object" || u === null) return fail("(root)", "a JSON object")
  const spec = u as Record<string, unknown>
  if (spec.protocol !== 1) fail("protocol", "1")
  for (const key of ["experimentFile", "step", "invocationHash", "outputRoot", "scratchDir", "resumeDir"]) {
    if (typeof spec[key] !== "string" || spec[key] === "") fail(key, "a non-empty string")
  }
  if (!Number.isSafeInteger(spec.seed)) fail("seed", "an integer")
  if (spec.pauseAtStep !== undefined && (!Number.isSafeInteger(spec.pauseAtStep) || (spec.pauseAtStep as number) < 1)) fail("pauseAtStep", "a positive integer")
  if (!Number.isInteger(spec.cpus) || (spec.cpus as number) < 0) fail("cpus", "a non-negative integer")
  if (!Array.isArray(spec.gpus) || !spec.gpus.every((g) => typeof g === "string")) fail("gpus", "an array of strings")
  if (typeof spec.inputs !== "object" || spec.inputs === null) fail("inputs", "an object")
  for (const [name, input] of Object.entries(spec.inputs as Record<string, unknown>)) {
    const i = input as Record<string, unknown> | null
    if (i === null || typeof i !== "object" || typeof i.dir !== "string" || typeof i.kind !== "string" || typeof i.hash !== "string") {
      fail(`inputs.${name}`, "{ dir, kind, hash } strings")
    }
  }
  if (spec.eventsFd !== undefined && (!Number.isInteger(spec.eventsFd) || (spec.eventsFd as number) < 1)) fail("eventsFd", "a file descriptor ≥ 1")
  return spec as unknown as WorkerSpec
}
