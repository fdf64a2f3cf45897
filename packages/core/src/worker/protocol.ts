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
 * Events: one JSON object per line on `eventsFd`, each with `"vw2": 1` and a `type`: the invocation events of
 *   the run-event stream (../RunEvent.ts, `InvocationEvent`; `encodeEventLine` / `decodeEventLine`):
 *   started → (progress | metrics | log | upload | checkpoint)* → done | failed, e.g.
 *     {"vw2":1,"type":"started","pid":4242}
 *     {"vw2":1,"type":"metrics","step":3,"timestamp":1700000000000,"values":{"fit/loss":0.5}}
 *     {"vw2":1,"type":"failed","message":"…","stack":"…"}
 *   Lines on that fd that do not decode as such an event (e.g. a native library printing to stdout when
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

export const workerExitCodes = { done: 0, failed: 1, badSpec: 2, interrupted: 143 } as const

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
