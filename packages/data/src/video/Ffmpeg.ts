/**
 * ffmpeg/ffprobe through child_process: probe a video's stream, decode it to raw RGB frames (scaled and,
 * optionally, resampled in time by ffmpeg's filters), encode raw RGB frames to mp4 (H.264) or webm (VP9).
 * Frames stream through pipes one at a time, so memory stays bounded by a frame. ffmpeg comes from the
 * project setup (infra/setup.d/30-ffmpeg.sh); `VW2_FFMPEG` / `VW2_FFPROBE` override the binaries.
 */
import { spawn, spawnSync } from "node:child_process"
import { once } from "node:events"

export const ffmpegBinary = (): string => process.env["VW2_FFMPEG"] ?? "ffmpeg"
export const ffprobeBinary = (): string => process.env["VW2_FFPROBE"] ?? "ffprobe"

export class FfmpegError extends Error {
  readonly file: string
  constructor(file: string, message: string) {
    super(`${file}: ${message}`)
    this.name = "FfmpegError"
    this.file = file
  }
}

/** Whether ffmpeg and ffprobe can be run (else: run `npm run setup`). */
export const ffmpegAvailable = (): boolean =>
  [ffmpegBinary(), ffprobeBinary()].every((bin) => spawnSync(bin, ["-version"], { stdio: "ignore" }).status === 0)

export interface VideoInfo {
  readonly width: number
  readonly height: number
  /** frames per second (the stream's average rate) */
  readonly fps: number
  readonly codec: string
  /** seconds, when the container says */
  readonly duration: number | undefined
}

const parseRate = (rate: string | undefined): number => {
  if (rate === undefined) return NaN
  const [num, den] = rate.split("/").map(Number)
  return den === undefined ? num! : num! / den
}

export const probeVideo = (file: string): VideoInfo => {
  const result = spawnSync(
    ffprobeBinary(),
    ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height,avg_frame_rate,r_frame_rate,codec_name,duration:format=duration", "-of", "json", file],
    { encoding: "utf8" }
  )
  if (result.error !== undefined) throw new FfmpegError(file, `cannot run ffprobe (${result.error.message}); install ffmpeg with \`npm run setup\``)
  if (result.status !== 0) throw new FfmpegError(file, `ffprobe failed: ${result.stderr.trim() || `exit ${result.status}`}`)
  const parsed = JSON.parse(result.stdout) as { streams?: Array<Record<string, string | number>>; format?: { duration?: string } }
  const stream = parsed.streams?.[0]
  if (stream === undefined) throw new FfmpegError(file, "no video stream")
  let fps = parseRate(stream["avg_frame_rate"] as string | undefined)
  if (!(fps > 0)) fps = parseRate(stream["r_frame_rate"] as string | undefined)
  if (!(fps > 0)) throw new FfmpegError(file, "cannot tell the frame rate")
  const duration = Number(stream["duration"] ?? parsed.format?.duration)
  return { width: Number(stream["width"]), height: Number(stream["height"]), fps, codec: String(stream["codec_name"]), duration: Number.isFinite(duration) ? duration : undefined }
}

export interface DecodeOptions {
  readonly width: number
  readonly height: number
  /** resample to this rate (ffmpeg's fps filter); omit to keep every source frame */
  readonly fps?: number
}

/** Decodes a video to RGB frames (H·W·3 uint8, a fresh array each), scaled to width × height (area filter). */
export async function* decodeVideo(file: string, options: DecodeOptions): AsyncGenerator<Uint8Array> {
  const filters = [...(options.fps === undefined ? [] : [`fps=${options.fps}`]), `scale=${options.width}:${options.height}:flags=area`]
  const child = spawn(ffmpegBinary(), ["-v", "error", "-nostdin", "-i", file, "-vf", filters.join(","), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], {
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", (chunk: string) => {
    if (stderr.length < 4000) stderr += chunk
  })
  const spawned = new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve)
    child.once("error", reject)
  })
  const exited = once(child, "close") as Promise<[number | null, NodeJS.Signals | null]>
  try {
    await spawned
  } catch (e) {
    throw new FfmpegError(file, `cannot run ffmpeg (${(e as Error).message}); install it with \`npm run setup\``)
  }
  const frameSize = options.width * options.height * 3
  let frame = new Uint8Array(frameSize)
  let filled = 0
  let finished = false
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      let offset = 0
      while (offset < chunk.length) {
        const n = Math.min(frameSize - filled, chunk.length - offset)
        frame.set(chunk.subarray(offset, offset + n), filled)
        filled += n
        offset += n
        if (filled === frameSize) {
          yield frame
          frame = new Uint8Array(frameSize)
          filled = 0
        }
      }
    }
    const [code, signal] = await exited
    if (code !== 0) throw new FfmpegError(file, `ffmpeg could not decode it (${signal ?? `exit ${code}`}): ${stderr.trim()}`)
    if (filled !== 0) throw new FfmpegError(file, `decoded stream ended inside a frame (${filled} of ${frameSize} bytes)`)
    finished = true
  } finally {
    // a consumer that stops early (or an error) must not leave ffmpeg running
    if (!finished && child.exitCode === null) child.kill("SIGKILL")
  }
}

export type VideoContainer = "mp4" | "webm"

export interface EncodeOptions {
  readonly width: number
  readonly height: number
  readonly fps: number
  readonly container: VideoContainer
  /**
   * `lossless`: H.264 / VP9 lossless in full-resolution chroma (yuv444p): round trips within a few levels;
   * `standard`: yuv420p, what every player plays (chroma at half resolution blurs small frames).
   */
  readonly quality: "lossless" | "standard"
}

const codecArgs = (options: EncodeOptions): string[] => {
  const lossless = options.quality === "lossless"
  if (options.container === "mp4") {
    return ["-c:v", "libx264", "-preset", "medium", ...(lossless ? ["-qp", "0", "-pix_fmt", "yuv444p"] : ["-crf", "18", "-pix_fmt", "yuv420p"]), "-movflags", "+faststart"]
  }
  return ["-c:v", "libvpx-vp9", ...(lossless ? ["-lossless", "1", "-pix_fmt", "yuv444p"] : ["-crf", "24", "-b:v", "0", "-pix_fmt", "yuv420p"]), "-row-mt", "0", "-threads", "1"]
}

/** Encodes RGB frames (H·W·3 uint8 each) into `file`; resolves when ffmpeg has finished writing it. */
export const encodeVideo = async (file: string, options: EncodeOptions, frames: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<number> => {
  if (options.quality === "standard" && (options.width % 2 !== 0 || options.height % 2 !== 0)) {
    throw new FfmpegError(file, `standard quality (yuv420p) needs even width and height, got ${options.width}×${options.height}`)
  }
  const args = [
    "-v", "error", "-nostdin", "-y",
    "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", `${options.width}x${options.height}`, "-r", String(options.fps), "-i", "-",
    ...codecArgs(options),
    // deterministic output: no encoder/creation-time metadata
    "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
    file
  ]
  const child = spawn(ffmpegBinary(), args, { stdio: ["pipe", "ignore", "pipe"] })
  child.stdin.on("error", () => undefined) // EPIPE when ffmpeg dies early: its exit status carries the reason
  let stderr = ""
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", (chunk: string) => {
    if (stderr.length < 4000) stderr += chunk
  })
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject)
    child.once("close", (code) => resolve(code))
  })
  const frameSize = options.width * options.height * 3
  let count = 0
  try {
    for await (const frame of frames) {
      if (frame.length !== frameSize) throw new FfmpegError(file, `frame ${count} has ${frame.length} bytes, expected ${frameSize}`)
      if (!child.stdin.write(frame)) await Promise.race([once(child.stdin, "drain"), exited])
      count++
    }
    child.stdin.end()
  } catch (e) {
    child.kill("SIGKILL")
    await exited.catch(() => undefined)
    throw e
  }
  let code: number | null
  try {
    code = await exited
  } catch (e) {
    throw new FfmpegError(file, `cannot run ffmpeg (${(e as Error).message}); install it with \`npm run setup\``)
  }
  if (code !== 0) throw new FfmpegError(file, `ffmpeg could not encode (exit ${code}): ${stderr.trim()}`)
  return count
}
