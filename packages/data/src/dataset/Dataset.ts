/**
 * Read side of the shared dataset layout. Opening reads only dataset.json; frames and actions are read per
 * clip, row by row from the .npy files (`readNpyRows`-style positioned reads), so memory stays bounded by
 * what the caller asks for, whatever the dataset's size.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { formatError } from "../formats/errors.ts"
import { elementCount, itemSize, type NpyHeader, readNpyHeader } from "../formats/npy.ts"
import {
  ACTION_DIM,
  type DatasetManifest,
  episodeDir,
  type EpisodeMeta,
  readEpisodeMeta,
  readManifest
} from "./Manifest.ts"

export interface EpisodeRef {
  readonly id: string
  readonly split: string
  readonly task: string
  readonly domain: string | undefined
  /** number of frames */
  readonly length: number
  readonly hasActions: boolean
}

export interface EpisodeFilter {
  readonly split?: string | ReadonlyArray<string>
  readonly task?: string | ReadonlyArray<string>
  readonly domain?: string | ReadonlyArray<string>
}

const matches = (value: string | undefined, wanted: string | ReadonlyArray<string> | undefined): boolean =>
  wanted === undefined || (value !== undefined && (typeof wanted === "string" ? value === wanted : wanted.includes(value)))

export class Dataset {
  readonly dir: string
  readonly manifest: DatasetManifest
  /** bytes of frame/action data read from disk so far (lets tests and benchmarks check streaming) */
  bytesRead = 0
  private readonly refs: ReadonlyArray<EpisodeRef>
  private readonly byId: ReadonlyMap<string, EpisodeRef>
  private readonly headers = new Map<string, NpyHeader>()

  private constructor(dir: string, manifest: DatasetManifest, refs: ReadonlyArray<EpisodeRef>) {
    this.dir = dir
    this.manifest = manifest
    this.refs = refs
    this.byId = new Map(refs.map((r) => [r.id, r]))
  }

  /** Opens a dataset directory; fails with the file name when dataset.json is missing or malformed. */
  static open(dir: string): Dataset {
    const manifest = readManifest(dir)
    const refs: EpisodeRef[] = []
    for (const [split, ids] of Object.entries(manifest.splits)) {
      for (const id of ids) {
        const entry = manifest.episodes?.[id]
        if (entry !== undefined) {
          refs.push({ id, split, task: entry.task, domain: entry.domain, length: entry.length, hasActions: entry.hasActions ?? false })
        } else {
          // no index in dataset.json (written by another tool): read the episode's own files once
          const meta = readEpisodeMeta(dir, id)
          const header = readNpyHeader(path.join(episodeDir(dir, id), "frames.npy"))
          const hasActions = fs.existsSync(path.join(episodeDir(dir, id), "actions.npy"))
          refs.push({ id, split, task: meta.task, domain: meta.domain, length: header.shape[0] ?? 0, hasActions })
        }
      }
    }
    return new Dataset(dir, manifest, refs)
  }

  get height(): number {
    return this.manifest.height
  }

  get width(): number {
    return this.manifest.width
  }

  get fps(): number {
    return this.manifest.fps
  }

  /** Episodes in manifest order (split by split, ids in the order listed), optionally filtered. */
  episodes(filter: EpisodeFilter = {}): ReadonlyArray<EpisodeRef> {
    return this.refs.filter((r) => matches(r.split, filter.split) && matches(r.task, filter.task) && matches(r.domain, filter.domain))
  }

  episode(id: string): EpisodeRef {
    const ref = this.byId.get(id)
    if (ref === undefined) throw formatError(path.join(this.dir, "dataset.json"), undefined, `no episode ${JSON.stringify(id)}`)
    return ref
  }

  meta(id: string): EpisodeMeta {
    return readEpisodeMeta(this.dir, id)
  }

  private header(id: string, file: string, rowShape: ReadonlyArray<number>, dtype: NpyHeader["dtype"]): NpyHeader {
    const key = `${id}/${file}`
    const cached = this.headers.get(key)
    if (cached !== undefined) return cached
    const full = path.join(episodeDir(this.dir, id), file)
    const header = readNpyHeader(full)
    if (header.dtype !== dtype || header.shape.length !== rowShape.length + 1 || rowShape.some((d, i) => header.shape[i + 1] !== d)) {
      throw formatError(full, undefined, `expected ${dtype} [T, ${rowShape.join(", ")}], found ${header.dtype} ${JSON.stringify(header.shape)}`)
    }
    this.headers.set(key, header)
    return header
  }

  /** Positioned reads of the given rows (consecutive rows are coalesced into one read). */
  private readRows(id: string, file: string, header: NpyHeader, rows: ReadonlyArray<number>): Uint8Array {
    const rowBytes = elementCount(header.shape.slice(1)) * itemSize(header.dtype)
    const total = header.shape[0] ?? 0
    const full = path.join(episodeDir(this.dir, id), file)
    const out = new Uint8Array(rows.length * rowBytes)
    const fd = fs.openSync(full, "r")
    try {
      let i = 0
      while (i < rows.length) {
        let run = 1
        while (i + run < rows.length && rows[i + run] === rows[i]! + run) run++
        const first = rows[i]!
        if (first < 0 || first + run > total) throw new RangeError(`${full}: rows ${first}..${first + run - 1} out of range [0, ${total})`)
        const position = header.dataOffset + first * rowBytes
        const got = fs.readSync(fd, out, i * rowBytes, run * rowBytes, position)
        if (got !== run * rowBytes) throw formatError(full, position + got, `truncated: wanted ${run * rowBytes} bytes, got ${got}`)
        this.bytesRead += got
        i += run
      }
    } finally {
      fs.closeSync(fd)
    }
    return out
  }

  /** uint8 RGB frames at the given indices, shape [rows.length, H, W, 3]. */
  readFrames(id: string, rows: ReadonlyArray<number>): Uint8Array {
    const header = this.header(id, "frames.npy", [this.height, this.width, 3], "uint8")
    return this.readRows(id, "frames.npy", header, rows)
  }

  /** float32 rel_actions at the given indices, shape [rows.length, 7]; fails for episodes without actions. */
  readActions(id: string, rows: ReadonlyArray<number>): Float32Array {
    return this.readFloatRows(id, "actions.npy", ACTION_DIM, rows)
  }

  /** float32 rows of `robot_obs.npy` (15) or `scene_obs.npy` (24). */
  readFloatRows(id: string, file: string, dim: number, rows: ReadonlyArray<number>): Float32Array {
    const header = this.header(id, file, [dim], "float32")
    const bytes = this.readRows(id, file, header, rows)
    return new Float32Array(bytes.buffer, 0, rows.length * dim)
  }
}
