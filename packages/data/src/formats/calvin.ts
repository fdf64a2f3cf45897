/**
 * The CALVIN dataset layout (mees/calvin, `dataset/README`), per split directory (`training/`, `validation/`):
 *   episode_XXXXXXX.npz            one file per step: rgb_static [200,200,3] u8, rgb_gripper [84,84,3] u8,
 *                                  actions [7] (absolute tcp pos, euler, gripper), rel_actions [7] (in [-1,1]),
 *                                  robot_obs [15], scene_obs [24] (+ depth/tactile, ignored here)
 *   ep_start_end_ids.npy           int64 [N, 2]: inclusive step ranges of the recorded play episodes
 *   lang_annotations/auto_lang_ann.npy   pickled dict (see pickle.ts): info.indx [(start, end)], language.ann,
 *                                  language.task, language.emb
 * Also accepted: `lang_annotations/auto_lang_ann.json` with the same structure, for users who converted it.
 *
 * `CalvinWriter` writes this layout (used to export MiniCALVIN demonstrations), `importCalvin` turns a CALVIN
 * split (real or exported) into the shared dataset layout: one episode per language-annotated segment
 * (the unit CALVIN's policies train on), or per play episode when there are no annotations.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { DatasetWriter } from "../dataset/DatasetWriter.ts"
import { type DatasetManifest } from "../dataset/Manifest.ts"
import { formatError } from "./errors.ts"
import { resizeRgb } from "./image.ts"
import { npyArray, type NpyArray, readNpy, toFloat32, toNumbers, writeNpy } from "./npy.ts"
import { readNpz, writeNpz } from "./npz.ts"
import { decodePickledNpy, encodePickledNpy, type PyValue, PyTuple } from "./pickle.ts"

export const calvinStepFile = (splitDir: string, index: number): string =>
  path.join(splitDir, `episode_${String(index).padStart(7, "0")}.npz`)

export interface CalvinStep {
  readonly rgbStatic: { readonly data: Uint8Array; readonly height: number; readonly width: number }
  readonly rgbGripper: { readonly data: Uint8Array; readonly height: number; readonly width: number }
  /** absolute tcp position (3), euler angles (3), gripper (1) */
  readonly actions: ArrayLike<number>
  /** relative action in [-1, 1]: position (3), orientation (3), gripper (1) */
  readonly relActions: ArrayLike<number>
  readonly robotObs: ArrayLike<number>
  readonly sceneObs: ArrayLike<number>
}

export interface CalvinLanguage {
  /** inclusive step ranges */
  readonly indx: ReadonlyArray<readonly [number, number]>
  readonly ann: ReadonlyArray<string>
  readonly task: ReadonlyArray<string>
  /** [N, 1, D] sentence embeddings, when present */
  readonly emb: NpyArray | undefined
}

// ---- reading ------------------------------------------------------------------------------------------

/** `ep_start_end_ids.npy`: inclusive [start, end] step ranges. */
export const readEpisodeRanges = (splitDir: string): Array<[number, number]> => {
  const file = path.join(splitDir, "ep_start_end_ids.npy")
  const array = readNpy(file)
  if (array.shape.length !== 2 || array.shape[1] !== 2) throw formatError(file, undefined, `expected [N, 2] start/end ids, found shape ${JSON.stringify(array.shape)}`)
  const values = toNumbers(array, file)
  return Array.from({ length: array.shape[0]! }, (_, i) => [values[2 * i]!, values[2 * i + 1]!] as [number, number])
}

const get = (value: PyValue | undefined, key: string, file: string): PyValue => {
  if (value instanceof Map && value.has(key)) return value.get(key) as PyValue
  if (typeof value === "object" && value !== null && !(value instanceof Map) && !ArrayBuffer.isView(value) && key in value) {
    return (value as unknown as Record<string, PyValue>)[key] as PyValue
  }
  throw formatError(file, undefined, `language annotations have no '${key}'`)
}

const asList = (value: PyValue, what: string, file: string): PyValue[] => {
  if (Array.isArray(value)) return value
  if (value instanceof PyTuple) return [...value.items]
  throw formatError(file, undefined, `${what} is not a list`)
}

const asRange = (value: PyValue, file: string): [number, number] => {
  const items = value instanceof PyTuple ? value.items : Array.isArray(value) ? value : []
  const [a, b] = items.map((v) => (typeof v === "bigint" ? Number(v) : v))
  if (typeof a !== "number" || typeof b !== "number") throw formatError(file, undefined, "info.indx entries must be (start, end) integer pairs")
  return [a, b]
}

/** Reads `lang_annotations/auto_lang_ann.npy` (pickled, as CALVIN ships it) or `.json`; undefined if neither exists. */
export const readLanguageAnnotations = (splitDir: string): CalvinLanguage | undefined => {
  const npyFile = path.join(splitDir, "lang_annotations", "auto_lang_ann.npy")
  const jsonFile = path.join(splitDir, "lang_annotations", "auto_lang_ann.json")
  let root: PyValue
  let file: string
  if (fs.existsSync(npyFile)) {
    file = npyFile
    root = decodePickledNpy(fs.readFileSync(npyFile), npyFile)
  } else if (fs.existsSync(jsonFile)) {
    file = jsonFile
    root = JSON.parse(fs.readFileSync(jsonFile, "utf8")) as PyValue
  } else {
    return undefined
  }
  const info = get(root, "info", file)
  const language = get(root, "language", file)
  const indx = asList(get(info, "indx", file), "info.indx", file).map((r) => asRange(r, file))
  const ann = asList(get(language, "ann", file), "language.ann", file).map(String)
  const task = asList(get(language, "task", file), "language.task", file).map(String)
  if (ann.length !== indx.length || task.length !== indx.length) {
    throw formatError(file, undefined, `language annotations disagree in length: ${indx.length} ranges, ${ann.length} ann, ${task.length} task`)
  }
  let emb: NpyArray | undefined
  try {
    const e = get(language, "emb", file)
    if (typeof e === "object" && e !== null && "data" in e && ArrayBuffer.isView((e as NpyArray).data)) emb = e as NpyArray
  } catch {
    emb = undefined
  }
  return { indx, ann, task, emb }
}

export type CalvinCamera = "rgb_static" | "rgb_gripper"

export interface CalvinStepArrays {
  readonly image: { readonly data: Uint8Array; readonly height: number; readonly width: number }
  readonly relActions: Float32Array
  readonly robotObs: Float32Array
  readonly sceneObs: Float32Array
}

/** Reads one step file (only the members used), checking shapes. */
export const readCalvinStep = (splitDir: string, index: number, camera: CalvinCamera = "rgb_static"): CalvinStepArrays => {
  const file = calvinStepFile(splitDir, index)
  if (!fs.existsSync(file)) throw formatError(file, undefined, `CALVIN step ${index} is missing`)
  const arrays = readNpz(file, [camera, "rel_actions", "robot_obs", "scene_obs"])
  const image = arrays[camera]!
  if (image.dtype !== "uint8" || image.shape.length !== 3 || image.shape[2] !== 3) {
    throw formatError(file, undefined, `${camera} must be uint8 [H, W, 3], found ${image.dtype} ${JSON.stringify(image.shape)}`)
  }
  const vector = (name: string, dim: number): Float32Array => {
    const a = arrays[name]!
    if (a.shape.length !== 1 || a.shape[0] !== dim) throw formatError(file, undefined, `${name} must have shape [${dim}], found ${JSON.stringify(a.shape)}`)
    return toFloat32(a)
  }
  return {
    image: { data: image.data as Uint8Array, height: image.shape[0]!, width: image.shape[1]! },
    relActions: vector("rel_actions", 7),
    robotObs: vector("robot_obs", 15),
    sceneObs: vector("scene_obs", 24)
  }
}

// ---- writing ------------------------------------------------------------------------------------------

/**
 * Writes one CALVIN split directory. Steps are numbered globally from `firstIndex`; `endEpisode` closes a
 * play episode; `annotate` adds a language segment; `close` writes ep_start_end_ids.npy and
 * auto_lang_ann.npy (pickled like CALVIN's, readable by np.load(allow_pickle=True)).
 */
export class CalvinWriter {
  readonly dir: string
  private next: number
  private episodeStart: number | undefined
  private readonly ranges: Array<[number, number]> = []
  private readonly segments: Array<{ start: number; end: number; ann: string; task: string; emb: Float32Array | undefined }> = []

  private readonly compress: boolean

  /** `compress`: deflate step files like np.savez_compressed (default false, like np.savez: much faster) */
  constructor(dir: string, firstIndex = 0, options: { readonly compress?: boolean } = {}) {
    this.dir = dir
    this.next = firstIndex
    this.compress = options.compress ?? false
    fs.mkdirSync(path.join(dir, "lang_annotations"), { recursive: true })
  }

  /** index the next step will get */
  get nextIndex(): number {
    return this.next
  }

  appendStep(step: CalvinStep): number {
    const index = this.next++
    this.episodeStart ??= index
    const f64 = (values: ArrayLike<number>, dim: number, name: string): NpyArray<"float64"> => {
      if (values.length !== dim) throw new RangeError(`CalvinWriter: ${name} has ${values.length} values, expected ${dim}`)
      return npyArray("float64", [dim], Float64Array.from(values))
    }
    writeNpz(calvinStepFile(this.dir, index), {
      actions: f64(step.actions, 7, "actions"),
      rel_actions: f64(step.relActions, 7, "rel_actions"),
      robot_obs: f64(step.robotObs, 15, "robot_obs"),
      scene_obs: f64(step.sceneObs, 24, "scene_obs"),
      rgb_static: npyArray("uint8", [step.rgbStatic.height, step.rgbStatic.width, 3], step.rgbStatic.data),
      rgb_gripper: npyArray("uint8", [step.rgbGripper.height, step.rgbGripper.width, 3], step.rgbGripper.data)
    }, { compress: this.compress })
    return index
  }

  endEpisode(): void {
    if (this.episodeStart === undefined) return
    this.ranges.push([this.episodeStart, this.next - 1])
    this.episodeStart = undefined
  }

  /** Adds a language segment over inclusive step range [start, end]. */
  annotate(start: number, end: number, ann: string, task: string, emb?: Float32Array): void {
    this.segments.push({ start, end, ann, task, emb })
  }

  close(): void {
    this.endEpisode()
    writeNpy(path.join(this.dir, "ep_start_end_ids.npy"), npyArray("int64", [this.ranges.length, 2], BigInt64Array.from(this.ranges.flat().map((v) => BigInt(v)))))
    const dim = this.segments[0]?.emb?.length ?? 0
    const emb = new Float32Array(this.segments.length * dim)
    this.segments.forEach((s, i) => {
      if (dim > 0) {
        if (s.emb?.length !== dim) throw new RangeError("CalvinWriter: every annotation needs an embedding of the same size, or none")
        emb.set(s.emb, i * dim)
      }
    })
    fs.writeFileSync(path.join(this.dir, "lang_annotations", "auto_lang_ann.npy"), encodePickledNpy({
      info: { episodes: [], indx: this.segments.map((s) => new PyTuple([s.start, s.end])) },
      language: {
        ann: this.segments.map((s) => s.ann),
        task: this.segments.map((s) => s.task),
        emb: npyArray("float32", [this.segments.length, 1, dim], emb)
      }
    }))
  }
}

// ---- import into the shared layout ---------------------------------------------------------------------

export interface ImportCalvinOptions {
  /** a CALVIN root (with training/ and/or validation/) or one split directory */
  readonly input: string
  readonly output: string
  readonly name: string
  readonly height: number
  readonly width: number
  /** CALVIN records at 30 Hz */
  readonly fps?: number
  readonly camera?: CalvinCamera
  /** "language": one episode per annotated segment (default when annotations exist); "episodes": per play episode */
  readonly unit?: "language" | "episodes"
  readonly maxEpisodesPerSplit?: number
  readonly onEpisode?: (done: number) => void
}

const splitDirs = (input: string): Array<{ dir: string; split: string }> => {
  if (!fs.existsSync(input)) throw formatError(input, undefined, "CALVIN path does not exist")
  const named = [["training", "train"], ["validation", "test"]]
    .map(([d, split]) => ({ dir: path.join(input, d!), split: split! }))
    .filter((s) => fs.existsSync(path.join(s.dir, "ep_start_end_ids.npy")))
  if (named.length > 0) return named
  if (fs.existsSync(path.join(input, "ep_start_end_ids.npy"))) return [{ dir: input, split: "train" }]
  throw formatError(input, undefined, "not a CALVIN dataset: no ep_start_end_ids.npy here or in training/ or validation/")
}

export const importCalvin = (options: ImportCalvinOptions): DatasetManifest => {
  const camera = options.camera ?? "rgb_static"
  const writer = new DatasetWriter(options.output, {
    name: options.name,
    source: `calvin:${path.resolve(options.input)}`,
    height: options.height,
    width: options.width,
    fps: options.fps ?? 30
  })
  let done = 0
  for (const { dir, split } of splitDirs(options.input)) {
    const language = options.unit === "episodes" ? undefined : readLanguageAnnotations(dir)
    if (options.unit === "language" && language === undefined) {
      throw formatError(path.join(dir, "lang_annotations", "auto_lang_ann.npy"), undefined, "unit 'language' needs language annotations")
    }
    const units = language !== undefined
      ? language.indx.map(([start, end], i) => ({ start, end, task: language.task[i]!, instruction: language.ann[i]! }))
      : readEpisodeRanges(dir).map(([start, end]) => ({ start, end, task: "play", instruction: "" }))
    const limit = Math.min(units.length, options.maxEpisodesPerSplit ?? Infinity)
    for (let u = 0; u < limit; u++) {
      const unit = units[u]!
      if (!(unit.end >= unit.start)) throw formatError(dir, undefined, `segment ${u} has end ${unit.end} before start ${unit.start}`)
      const ep = writer.beginEpisode({
        id: `${split}-${String(u).padStart(6, "0")}-${unit.start}-${unit.end}`,
        split,
        task: unit.task,
        instruction: unit.instruction,
        domain: path.basename(path.resolve(options.input)),
        appearance: { camera, calvinStart: unit.start, calvinEnd: unit.end },
        robot: true
      })
      for (let index = unit.start; index <= unit.end; index++) {
        const step = readCalvinStep(dir, index, camera)
        const image = resizeRgb(step.image, options.width, options.height)
        ep.appendFrame(
          image.data,
          { step: index - unit.start, phase: unit.task, state: { calvinIndex: index } },
          { action: step.relActions, robotObs: step.robotObs, sceneObs: step.sceneObs }
        )
      }
      ep.close()
      done++
      options.onEpisode?.(done)
    }
  }
  return writer.finish({ camera })
}
