/**
 * Video folders: videos (mp4/webm/mkv/mov) each with a JSON annotation of the same name (see Annotation.ts).
 * `exportVideoFolder` writes a dataset in the shared layout (e.g. MiniCraft) as such a folder;
 * `importVideoFolder` decodes a folder with ffmpeg into the shared layout — the path a user takes to bring
 * the real Video-CraftBench in. Both stream one frame at a time.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { DatasetManifest, FrameLabel } from "../dataset/Manifest.ts"
import { episodeDir, readEpisodeMeta, readManifest } from "../dataset/Manifest.ts"
import { DatasetWriter } from "../dataset/DatasetWriter.ts"
import { readNpyHeader, readNpyRows } from "../formats/npy.ts"
import type { StepSegment, VideoAnnotation } from "./Annotation.ts"
import { VIDEO_ANNOTATION_FORMAT, decodeVideoAnnotation, labelAt, segmentsFromLabels } from "./Annotation.ts"
import type { VideoContainer } from "./Ffmpeg.ts"
import { decodeVideo, encodeVideo, probeVideo } from "./Ffmpeg.ts"

export const VIDEO_EXTENSIONS = [".mp4", ".webm", ".mkv", ".mov"] as const

export interface ExportOptions {
  readonly container: VideoContainer
  readonly quality: "lossless" | "standard"
  /** episodes to export (default: all) */
  readonly ids?: ReadonlyArray<string>
}

/** Reads an episode's frames from frames.npy a few rows at a time. */
function* episodeFrames(file: string): Generator<Uint8Array> {
  const header = readNpyHeader(file)
  const rows = header.shape[0] ?? 0
  const chunk = 16
  const frameSize = (header.shape[1] ?? 0) * (header.shape[2] ?? 0) * 3
  for (let start = 0; start < rows; start += chunk) {
    const data = readNpyRows(file, start, Math.min(chunk, rows - start), header).data as Uint8Array
    for (let i = 0; i * frameSize < data.length; i++) yield data.subarray(i * frameSize, (i + 1) * frameSize)
  }
}

/** Writes `<outDir>/<episode id>.<container>` + `<episode id>.json` for the episodes of a dataset. */
export const exportVideoFolder = async (datasetDir: string, outDir: string, options: ExportOptions): Promise<string[]> => {
  const manifest = readManifest(datasetDir)
  fs.mkdirSync(outDir, { recursive: true })
  const ids = options.ids ?? Object.values(manifest.splits).flat()
  const written: string[] = []
  for (const id of ids) {
    const meta = readEpisodeMeta(datasetDir, id)
    const video = path.join(outDir, `${id}.${options.container}`)
    await encodeVideo(video, { width: manifest.width, height: manifest.height, fps: manifest.fps, container: options.container, quality: options.quality }, episodeFrames(path.join(episodeDir(datasetDir, id), "frames.npy")))
    const annotation: VideoAnnotation = {
      format: VIDEO_ANNOTATION_FORMAT,
      task: meta.task,
      instruction: meta.instruction,
      split: meta.split,
      domain: meta.domain,
      steps: segmentsFromLabels(meta.frames, manifest.fps),
      fps: manifest.fps,
      frames: meta.frames,
      appearance: meta.appearance
    }
    fs.writeFileSync(path.join(outDir, `${id}.json`), JSON.stringify(annotation, null, 1))
    written.push(video)
  }
  return written
}

export interface ImportOptions {
  readonly name: string
  readonly width: number
  readonly height: number
  /** the dataset's frame rate; videos at another rate are resampled (default: the first video's rate) */
  readonly fps?: number
  /** split of videos whose annotation names none */
  readonly defaultSplit: string
  readonly onProgress?: (done: number, total: number, video: string) => void
}

/** Every video below `folder` (sorted, relative paths). */
export const listVideos = (folder: string): string[] => {
  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) throw new Error(`${folder}: not a directory`)
  return fs
    .readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && (VIDEO_EXTENSIONS as ReadonlyArray<string>).includes(path.extname(e.name).toLowerCase()))
    .map((e) => path.relative(folder, path.join(e.parentPath, e.name)))
    .sort()
}

/** An episode id from a video's relative path: portable characters only, subfolders joined by "__". */
export const episodeIdForVideo = (relative: string): string =>
  relative
    .slice(0, -path.extname(relative).length)
    .split(path.sep)
    .join("__")
    .replace(/[^A-Za-z0-9_.-]/g, "_")
    .replace(/^[^A-Za-z0-9]+/, "")

const readAnnotation = (video: string): VideoAnnotation => {
  const file = video.slice(0, -path.extname(video).length) + ".json"
  if (!fs.existsSync(file)) throw new Error(`${video}: no annotation ${path.basename(file)} beside it`)
  let json: unknown
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"))
  } catch (e) {
    throw new Error(`${file}: invalid JSON: ${(e as Error).message}`)
  }
  return decodeVideoAnnotation(json, file)
}

/** Decodes every annotated video below `folder` into a dataset at `outDir`. */
export const importVideoFolder = async (folder: string, outDir: string, options: ImportOptions): Promise<DatasetManifest> => {
  const videos = listVideos(folder)
  if (videos.length === 0) throw new Error(`${folder}: no videos (${VIDEO_EXTENSIONS.join(", ")}) found`)
  // read every annotation first: a bad one fails the import before any decoding
  const annotations = videos.map((v) => readAnnotation(path.join(folder, v)))
  const fps = options.fps ?? probeVideo(path.join(folder, videos[0]!)).fps
  const writer = new DatasetWriter(outDir, { name: options.name, source: `video-folder:${path.resolve(folder)}`, height: options.height, width: options.width, fps })
  const ids = new Set<string>()
  for (const [i, relative] of videos.entries()) {
    const file = path.join(folder, relative)
    const annotation = annotations[i]!
    const id = episodeIdForVideo(relative)
    if (ids.has(id)) throw new Error(`${file}: its episode id ${id} collides with another video's`)
    ids.add(id)
    const source = probeVideo(file)
    const resample = Math.abs(source.fps - fps) > 1e-6
    // exact labels only when frames map one to one (no resampling) and were written at this rate
    const exact = !resample && annotation.frames !== undefined && (annotation.fps === undefined || Math.abs(annotation.fps - fps) < 1e-6) ? annotation.frames : undefined
    const segments: ReadonlyArray<StepSegment> = annotation.steps
    const episode = writer.beginEpisode({
      id,
      split: annotation.split ?? options.defaultSplit,
      task: annotation.task,
      instruction: annotation.instruction,
      domain: annotation.domain ?? "unknown",
      appearance: annotation.appearance ?? {}
    })
    let count = 0
    for await (const frame of decodeVideo(file, { width: options.width, height: options.height, ...(resample ? { fps } : {}) })) {
      const label: FrameLabel | undefined = exact === undefined ? labelAt(segments, count, fps) : exact[count]
      if (label === undefined) throw new Error(`${file}: decoded more frames than its annotation labels (${exact!.length})`)
      episode.appendFrame(frame, label)
      count++
    }
    if (exact !== undefined && count !== exact.length) throw new Error(`${file}: decoded ${count} frames but its annotation labels ${exact.length}`)
    if (count === 0) throw new Error(`${file}: no frames decoded`)
    episode.close()
    options.onProgress?.(i + 1, videos.length, relative)
  }
  return writer.finish({ videoFolder: { videos: videos.length, fps } })
}
