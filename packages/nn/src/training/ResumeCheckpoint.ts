/**
 * Mid-stage training checkpoints in an invocation's resume directory (issue 15; docs/engine.md):
 * `step-<k>/` holds `tensors.safetensors` (weights, optimiser moments, EMA), `state.json` (step, optimiser step
 * counts, RNG and data-iterator positions) and `manifest.json` (size + sha256 of both). A checkpoint is written
 * into a temporary directory, fsynced, and renamed into place, so a crash leaves either the whole checkpoint
 * or none; the manifest catches what the rename cannot (a file truncated or overwritten later). The newest
 * `keep` checkpoints stay, so a corrupted newest one falls back to the one before it.
 */
import { createHash } from "node:crypto"
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises"
import { join } from "node:path"
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from "../io/safetensors.ts"

export const RESUME_FORMAT = "vw2-train-resume/1"
const TENSORS = "tensors.safetensors"
const STATE = "state.json"
const MANIFEST = "manifest.json"
const STEP_DIR = /^step-(\d{9})$/

export interface ResumeState {
  readonly format: typeof RESUME_FORMAT
  /** steps completed: training continues with step `step` */
  readonly step: number
  readonly total: number
  /** everything else the harness and the stage keep (optimiser step counts, RNG states, iterator positions) */
  readonly [key: string]: unknown
}

export interface ResumeCheckpoint {
  readonly dir: string
  readonly state: ResumeState
  readonly tensors: Map<string, NamedTensor>
}

interface Manifest {
  readonly format: typeof RESUME_FORMAT
  readonly step: number
  readonly files: Readonly<Record<string, { readonly bytes: number; readonly sha256: string }>>
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")
export const stepDirName = (step: number): string => `step-${String(step).padStart(9, "0")}`

async function writeDurably(path: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, "w")
  try {
    await handle.writeFile(bytes)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** fsync a directory so a rename inside it survives a power loss (a no-op error on platforms without it). */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r")
  try {
    await handle.sync().catch(() => undefined)
  } finally {
    await handle.close()
  }
}

/**
 * Write `step-<k>` atomically and durably; then delete all but the newest `keep` checkpoints. Returns the
 * checkpoint's directory.
 */
export async function writeResumeCheckpoint(
  resumeDir: string,
  state: ResumeState,
  tensors: ReadonlyMap<string, NamedTensor>,
  keep = 2
): Promise<string> {
  await mkdir(resumeDir, { recursive: true })
  const final = join(resumeDir, stepDirName(state.step))
  const tmp = join(resumeDir, `.tmp-${stepDirName(state.step)}-${process.pid}-${Date.now()}`)
  await mkdir(tmp, { recursive: true })
  try {
    const tensorBytes = encodeSafetensors(tensors, { format: RESUME_FORMAT })
    const stateBytes = new TextEncoder().encode(JSON.stringify(state) + "\n")
    await writeDurably(join(tmp, TENSORS), tensorBytes)
    await writeDurably(join(tmp, STATE), stateBytes)
    const manifest: Manifest = {
      format: RESUME_FORMAT,
      step: state.step,
      files: {
        [TENSORS]: { bytes: tensorBytes.byteLength, sha256: sha256(tensorBytes) },
        [STATE]: { bytes: stateBytes.byteLength, sha256: sha256(stateBytes) }
      }
    }
    await writeDurably(join(tmp, MANIFEST), new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n"))
    await syncDir(tmp)
    // a checkpoint of the same step (a rerun that paused here before) is replaced as a whole
    await rm(final, { recursive: true, force: true })
    await rename(tmp, final)
    await syncDir(resumeDir)
  } catch (e) {
    await rm(tmp, { recursive: true, force: true })
    throw e
  }
  const steps = await listCheckpointSteps(resumeDir)
  for (const old of steps.slice(keep)) await rm(join(resumeDir, stepDirName(old)), { recursive: true, force: true })
  return final
}

/** Steps of the checkpoints in `resumeDir`, newest first (leftover temporary directories are not listed). */
export async function listCheckpointSteps(resumeDir: string): Promise<Array<number>> {
  const names = await readdir(resumeDir).catch(() => [] as Array<string>)
  return names
    .map((n) => STEP_DIR.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a)
}

/** Read and verify one checkpoint directory; throws an Error saying what is wrong. */
export async function readResumeCheckpoint(dir: string): Promise<ResumeCheckpoint> {
  const manifest = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as Manifest
  if (manifest.format !== RESUME_FORMAT) throw new Error(`${dir}: manifest format ${String(manifest.format)}, expected ${RESUME_FORMAT}`)
  const bytes: Record<string, Uint8Array> = {}
  for (const name of [TENSORS, STATE]) {
    const entry = manifest.files[name]
    if (entry === undefined) throw new Error(`${dir}: the manifest lists no ${name}`)
    const data = new Uint8Array(await readFile(join(dir, name)))
    if (data.byteLength !== entry.bytes) throw new Error(`${dir}/${name}: ${data.byteLength} bytes, the manifest says ${entry.bytes} (truncated?)`)
    if (sha256(data) !== entry.sha256) throw new Error(`${dir}/${name}: sha256 differs from the manifest (corrupted)`)
    bytes[name] = data
  }
  const state = JSON.parse(new TextDecoder().decode(bytes[STATE])) as ResumeState
  if (state.format !== RESUME_FORMAT || state.step !== manifest.step) throw new Error(`${dir}/${STATE}: not a ${RESUME_FORMAT} state of step ${manifest.step}`)
  const { tensors } = decodeSafetensors(bytes[TENSORS]!, join(dir, TENSORS))
  return { dir, state, tensors }
}

/**
 * The newest checkpoint that verifies, or undefined when none does (start from step 0). Every checkpoint that
 * fails verification is reported through `warn` with the reason, newest first.
 */
export async function loadNewestResumeCheckpoint(resumeDir: string, warn: (message: string) => void): Promise<ResumeCheckpoint | undefined> {
  const steps = await listCheckpointSteps(resumeDir)
  for (const [i, step] of steps.entries()) {
    const dir = join(resumeDir, stepDirName(step))
    try {
      return await readResumeCheckpoint(dir)
    } catch (e) {
      const next = steps[i + 1]
      warn(`checkpoint at step ${step} is unusable (${e instanceof Error ? e.message : String(e)}); ${next !== undefined ? `trying the one at step ${next}` : "starting from step 0"}`)
    }
  }
  return undefined
}
