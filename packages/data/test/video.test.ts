import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { readNpy } from "../src/formats/npy.ts"
import { readEpisodeMeta, readManifest } from "../src/dataset/Manifest.ts"
import { decodeAppearance } from "../src/minicraft/Appearance.ts"
import { defaultMiniCraftConfig, generateMiniCraft } from "../src/minicraft/Generate.ts"
import { MiniCraftJudge } from "../src/minicraft/Judge.ts"
import { getTask } from "../src/minicraft/Tasks.ts"
import { decodeVideo, encodeVideo, ffmpegAvailable, probeVideo } from "../src/video/Ffmpeg.ts"
import { exportVideoFolder, importVideoFolder } from "../src/video/VideoFolder.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "video-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

// ffmpeg is installed by `npm run setup` (infra/setup.d/30-ffmpeg.sh); without it these tests cannot run
describe.skipIf(!ffmpegAvailable())("video folders (ffmpeg)", () => {
  const dataset = path.join(tmp, "minicraft")
  const ids = ["fold-boat-train-000", "blocks-tower-test-000"]

  it("exports MiniCraft episodes to mp4/webm + JSON and imports them back into the shared layout", async () => {
    generateMiniCraft(dataset, { ...defaultMiniCraftConfig, tasks: ["fold-boat", "blocks-tower"], episodesPerTask: { train: 1, test: 1 } })
    const source = readManifest(dataset)
    for (const container of ["mp4", "webm"] as const) {
      const folder = path.join(tmp, `export-${container}`)
      const videos = await exportVideoFolder(dataset, folder, { container, quality: "lossless", ids: container === "mp4" ? ids : [ids[0]!] })
      const info = probeVideo(videos[0]!)
      expect(info).toMatchObject({ width: 32, height: 32, fps: 8, codec: container === "mp4" ? "h264" : "vp9" })
      const annotation = JSON.parse(fs.readFileSync(path.join(folder, `${ids[0]}.json`), "utf8"))
      expect(annotation.steps).toHaveLength(7)
      expect(annotation.steps[0]).toMatchObject({ step: 1, start: 0.5 }) // after 4 idle frames at 8 fps

      const imported = path.join(tmp, `import-${container}`)
      const manifest = await importVideoFolder(folder, imported, { name: "round-trip", width: 32, height: 32, defaultSplit: "train" })
      expect(manifest.fps).toBe(8)
      for (const id of container === "mp4" ? ids : [ids[0]!]) {
        const original = readNpy(path.join(dataset, "episodes", id, "frames.npy"))
        const back = readNpy(path.join(imported, "episodes", id, "frames.npy"))
        expect(back.shape).toEqual(original.shape)
        // lossless coding in YUV 4:4:4: the RGB ↔ YUV conversion may move a channel by a level or two
        let maxDiff = 0
        for (let i = 0; i < original.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(Number(original.data[i]) - Number(back.data[i])))
        expect(maxDiff).toBeLessThanOrEqual(3)
        const meta = readEpisodeMeta(imported, id)
        expect(meta).toEqual({ ...readEpisodeMeta(dataset, id), appearance: meta.appearance })
        expect(manifest.splits[meta.split]).toContain(id)
        // the judge still scores the decoded video 100 %
        const judge = new MiniCraftJudge({ task: getTask(meta.task), appearance: decodeAppearance(meta.appearance, id), width: 32, height: 32 })
        expect(judge.judge(back.data as Uint8Array).completed).toBe(7)
      }
      if (container === "mp4") expect(manifest.tasks).toEqual(source.tasks)
    }
  })

  it("imports a folder of real-style videos: subfolders, other size and rate, labels from step times", async () => {
    const folder = path.join(tmp, "craftbench")
    fs.mkdirSync(path.join(folder, "paper"), { recursive: true })
    // 3 s at 16 fps, 48×40, brightness ramps so frames are distinguishable
    const frames = Array.from({ length: 48 }, (_, t) => new Uint8Array(48 * 40 * 3).fill(40 + 4 * t))
    await encodeVideo(path.join(folder, "paper", "take 1.webm"), { width: 48, height: 40, fps: 16, container: "webm", quality: "standard" }, frames)
    fs.writeFileSync(
      path.join(folder, "paper", "take 1.json"),
      JSON.stringify({ task: "fold-plane", instruction: "fold a plane", split: "test", steps: [{ step: 1, start: 0.5, end: 1.25 }, { step: 2, start: 1.5, end: 2.5 }] })
    )
    const out = path.join(tmp, "craftbench-imported")
    const manifest = await importVideoFolder(folder, out, { name: "craftbench", width: 32, height: 32, fps: 4, defaultSplit: "train" })
    expect(manifest.splits).toEqual({ test: ["paper__take_1"] })
    const meta = readEpisodeMeta(out, "paper__take_1")
    const back = readNpy(path.join(out, "episodes", "paper__take_1", "frames.npy"))
    expect(back.shape).toEqual([12, 32, 32, 3]) // 3 s resampled to 4 fps
    expect(meta.frames.map((f) => f.phase)).toEqual(["idle", "idle", "act", "act", "act", "idle", "act", "act", "act", "act", "idle", "idle"])
    expect(meta.frames.map((f) => f.state["completed"])).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2])
    // frames are decoded in order: brightness increases
    const mean = (i: number) => (back.data as Uint8Array).subarray(i * 3072, (i + 1) * 3072).reduce((a, b) => a + b, 0) / 3072
    for (let i = 1; i < 12; i++) expect(mean(i)).toBeGreaterThan(mean(i - 1))
  })

  it("decodes frame by frame and stops ffmpeg when the consumer stops early", async () => {
    const video = path.join(tmp, "short.mp4")
    await encodeVideo(video, { width: 16, height: 16, fps: 10, container: "mp4", quality: "lossless" }, Array.from({ length: 30 }, (_, t) => new Uint8Array(16 * 16 * 3).fill(t * 8)))
    let seen = 0
    for await (const frame of decodeVideo(video, { width: 16, height: 16 })) {
      expect(frame.length).toBe(16 * 16 * 3)
      if (++seen === 5) break
    }
    expect(seen).toBe(5)
  })

  it("fails with the file named: missing annotation, bad annotation, corrupt video", async () => {
    const folder = path.join(tmp, "bad")
    fs.mkdirSync(folder, { recursive: true })
    fs.writeFileSync(path.join(folder, "a.mp4"), "not a video")
    await expect(importVideoFolder(folder, path.join(tmp, "bad-out1"), { name: "x", width: 32, height: 32, defaultSplit: "train" })).rejects.toThrow(/a\.mp4: no annotation a\.json beside it/)
    fs.writeFileSync(path.join(folder, "a.json"), JSON.stringify({ task: "t", instruction: "i", steps: [{ step: 1, start: 2, end: 1 }] }))
    await expect(importVideoFolder(folder, path.join(tmp, "bad-out2"), { name: "x", width: 32, height: 32, defaultSplit: "train" })).rejects.toThrow(/a\.json: steps\[0\]: end 1 must be after start 2/)
    fs.writeFileSync(path.join(folder, "a.json"), JSON.stringify({ task: "t", instruction: "i", steps: [] }))
    await expect(importVideoFolder(folder, path.join(tmp, "bad-out3"), { name: "x", width: 32, height: 32, fps: 8, defaultSplit: "train" })).rejects.toThrow(/a\.mp4: /)
  })
})
