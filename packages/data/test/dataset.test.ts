import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { readNpy } from "../src/formats/npy.ts"
import { mixtureBatches, shuffledBatches } from "../src/dataset/Batches.ts"
import { ClipIndex, DatasetClips } from "../src/dataset/Clips.ts"
import { Dataset } from "../src/dataset/Dataset.ts"
import { DatasetWriter } from "../src/dataset/DatasetWriter.ts"

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "vw2-ds-"))

/** A pixel value that encodes which episode, frame and position it came from. */
const pixel = (episode: number, frame: number, p: number): number => (episode * 31 + frame * 7 + p) % 256

interface ToyOptions {
  readonly name: string
  readonly episodes: number
  readonly length: (e: number) => number
  readonly size?: number
  readonly robot?: boolean
  readonly fps?: number
}

const writeToy = (dir: string, o: ToyOptions): void => {
  const size = o.size ?? 4
  const writer = new DatasetWriter(dir, { name: o.name, source: "test", height: size, width: size, fps: o.fps ?? 8 })
  for (let e = 0; e < o.episodes; e++) {
    const ep = writer.beginEpisode({
      id: `${o.name}-${e}`,
      split: e % 4 === 3 ? "test" : "train",
      task: e % 2 === 0 ? "even" : "odd",
      instruction: `do ${e}`,
      domain: e % 4 === 3 ? "unseen" : "seen",
      appearance: { tint: e },
      robot: o.robot === true
    })
    for (let t = 0; t < o.length(e); t++) {
      const rgb = Uint8Array.from({ length: size * size * 3 }, (_, p) => pixel(e, t, p))
      const robot = o.robot === true
        ? { action: [e, t, 0, 0, 0, 0, t % 2 === 0 ? 1 : -1], robotObs: new Array<number>(15).fill(t), sceneObs: new Array<number>(24).fill(e) }
        : undefined
      ep.appendFrame(rgb, { step: t, phase: "move", state: { t } }, robot)
    }
    ep.close()
  }
  writer.finish({ note: "toy" })
}

describe("DatasetWriter", () => {
  it("writes the shared layout: numpy-readable arrays, meta labels, manifest with splits, tasks and stats", () => {
    const dir = tmp()
    writeToy(dir, { name: "toy", episodes: 4, length: (e) => 5 + e, robot: true })
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, "dataset.json"), "utf8"))
    expect(manifest.format).toBe("vw2-episodes/1")
    expect(manifest.splits).toEqual({ train: ["toy-0", "toy-1", "toy-2"], test: ["toy-3"] })
    expect(manifest.tasks).toEqual(["even", "odd"])
    expect(manifest.stats.frames).toBe(5 + 6 + 7 + 8)
    expect(manifest.stats.note).toBe("toy")
    expect(manifest.stats.actionMean[6]).toBeCloseTo((3 + 3 + 4 + 4 - (2 + 3 + 3 + 4)) / 26, 5)
    const frames = readNpy(path.join(dir, "episodes", "toy-2", "frames.npy"))
    expect(frames.dtype).toBe("uint8")
    expect(frames.shape).toEqual([7, 4, 4, 3])
    expect(frames.data[3 * 48 + 5]).toBe(pixel(2, 3, 5))
    const actions = readNpy(path.join(dir, "episodes", "toy-2", "actions.npy"))
    expect(actions.shape).toEqual([7, 7])
    expect(readNpy(path.join(dir, "episodes", "toy-2", "robot_obs.npy")).shape).toEqual([7, 15])
    expect(readNpy(path.join(dir, "episodes", "toy-2", "scene_obs.npy")).shape).toEqual([7, 24])
    const meta = JSON.parse(fs.readFileSync(path.join(dir, "episodes", "toy-2", "meta.json"), "utf8"))
    expect(meta.frames).toHaveLength(7)
    expect(meta.frames[4]).toEqual({ step: 4, phase: "move", state: { t: 4 } })
    expect(meta.appearance).toEqual({ tint: 2 })
  })

  it("refuses bad frames, mixed robot data and unfinished datasets", () => {
    const dir = tmp()
    const writer = new DatasetWriter(dir, { name: "bad", source: "test", height: 2, width: 2, fps: 4 })
    const ep = writer.beginEpisode({ id: "e0", split: "train", task: "t", instruction: "", domain: "d" })
    expect(() => ep.appendFrame(new Uint8Array(5), { step: 0, phase: "", state: {} })).toThrow(/5 bytes, expected 12/)
    expect(() => writer.beginEpisode({ id: "../x", split: "train", task: "t", instruction: "", domain: "d" })).toThrow(/not a valid directory name/)
    expect(() => writer.finish()).toThrow(/episodes not closed: e0/)
    expect(() => Dataset.open(dir)).toThrow(`${path.join(dir, "dataset.json")}: cannot read`)
  })
})

describe("Dataset and clips", () => {
  it("enumerates clips by length, stride and frame step, and reads exactly the frames of frames.npy", () => {
    const dir = tmp()
    writeToy(dir, { name: "toy", episodes: 4, length: (e) => 10 + e, robot: true })
    const dataset = Dataset.open(dir)
    expect(dataset.episodes({ split: "train", task: "even" }).map((e) => e.id)).toEqual(["toy-0", "toy-2"])
    expect(dataset.episodes({ domain: "unseen" }).map((e) => e.id)).toEqual(["toy-3"])

    // T=3, frame step 2 (fps 8 → 4): span 5; stride 2 → episode of length L has floor((L-5)/2)+1 clips
    const clips = new DatasetClips(dataset, { length: 3, fps: 4, stride: 2 })
    expect(clips.index.frameStep).toBe(2)
    expect(clips.count).toBe([10, 11, 12, 13].reduce((a, l) => a + Math.floor((l - 5) / 2) + 1, 0))
    for (let i = 0; i < clips.count; i++) {
      const clip = clips.read(i)
      const ref = clip.ref
      const e = Number(ref.episodeId.split("-")[1])
      const whole = readNpy(path.join(dir, "episodes", ref.episodeId, "frames.npy")).data as Uint8Array
      const frameSize = 4 * 4 * 3
      for (let k = 0; k < 3; k++) {
        const t = ref.start + 2 * k
        for (let p = 0; p < frameSize; p++) {
          expect(Math.round(clip.frames[k * frameSize + p]! * 255)).toBe(whole[t * frameSize + p])
        }
        expect(clip.actions![k * 7 + 0]).toBe(e)
        expect(clip.actions![k * 7 + 1]).toBe(t)
      }
    }
    expect(() => new DatasetClips(dataset, { length: 3, fps: 3 })).toThrow(/fps 3 must divide the dataset's fps 8/)
  })

  it("maps every clip index to a distinct window (binary search over episodes, empty episodes skipped)", () => {
    const eps = [3, 0, 9, 1, 7].map((length, i) => ({ id: `e${i}`, split: "train", task: "t", domain: undefined, length, hasActions: false }))
    const index = new ClipIndex(eps, { length: 3, stride: 1 }, 10)
    const expected = eps.flatMap((e) => Array.from({ length: Math.max(0, e.length - 2) }, (_, s) => `${e.id}@${s}`))
    expect(Array.from({ length: index.count }, (_, i) => `${index.at(i).episodeId}@${index.at(i).start}`)).toEqual(expected)
  })

  it("shuffles deterministically by seed and visits every clip once per epoch", () => {
    const dir = tmp()
    writeToy(dir, { name: "toy", episodes: 6, length: () => 12 })
    const clips = new DatasetClips(Dataset.open(dir), { length: 4 })
    const keys = (seed: number): string[] =>
      [...shuffledBatches(clips, { batchSize: 5, seed, epochs: 2 })].flatMap((b) => b.refs.map((r) => `${r.episodeId}@${r.start}`))
    const a = keys(1)
    expect(keys(1)).toEqual(a)
    expect(keys(2)).not.toEqual(a)
    expect(a).toHaveLength(2 * clips.count)
    expect(new Set(a.slice(0, clips.count)).size).toBe(clips.count)
    expect(a.slice(0, clips.count)).not.toEqual(a.slice(clips.count)) // each epoch its own order
    const batch = shuffledBatches(clips, { batchSize: 5, seed: 1 }).next().value!
    expect(batch.shape).toEqual([5, 4, 4, 4, 3])
    expect(batch.frames.length).toBe(5 * 4 * 4 * 4 * 3)
    expect(batch.actions).toBeUndefined()
    const dropped = [...shuffledBatches(clips, { batchSize: 5, seed: 1, dropLast: true })]
    expect(dropped.every((b) => b.shape[0] === 5)).toBe(true)
    expect(dropped).toHaveLength(Math.floor(clips.count / 5))
  })

  it("mixes sources in proportion to their weights, deterministically, with an action mask", () => {
    const craftDir = tmp()
    const robotDir = tmp()
    writeToy(craftDir, { name: "craft", episodes: 3, length: () => 8, size: 2 })
    writeToy(robotDir, { name: "openx", episodes: 20, length: () => 8, size: 2, robot: true })
    const craft = new DatasetClips(Dataset.open(craftDir), { length: 2 })
    const openx = new DatasetClips(Dataset.open(robotDir), { length: 2 })
    const run = (seed: number) => [...mixtureBatches([{ source: craft, weight: 3 }, { source: openx, weight: 1 }], { batchSize: 50, seed, batches: 40 })]
    const batches = run(7)
    const sources = batches.flatMap((b) => b.sources)
    const craftShare = sources.filter((s) => s === "craft").length / sources.length
    expect(Math.abs(craftShare - 0.75)).toBeLessThan(0.03) // 2000 draws: σ ≈ 0.0097
    expect(run(7).flatMap((b) => b.refs)).toEqual(batches.flatMap((b) => b.refs))
    expect(run(8).flatMap((b) => b.refs)).not.toEqual(batches.flatMap((b) => b.refs))
    const b0 = batches[0]!
    b0.sources.forEach((s, i) => expect(b0.actionMask![i]).toBe(s === "openx" ? 1 : 0))
    // the small source is revisited (passes), the large one streamed: all of craft's 12 clips appear
    expect(new Set(batches.flatMap((b) => b.refs.filter((_, i) => b.sources[i] === "craft").map((r) => `${r.episodeId}@${r.start}`))).size).toBe(craft.count)
    const otherSize = tmp()
    writeToy(otherSize, { name: "big", episodes: 1, length: () => 8, size: 3 })
    const big = new DatasetClips(Dataset.open(otherSize), { length: 2 })
    expect(() => mixtureBatches([{ source: craft, weight: 1 }, { source: big, weight: 1 }], { batchSize: 2, seed: 0 }).next())
      .toThrow(/component 1 \(big\) has clips \[T=2, 3×3\] but component 0 \(craft\) has \[T=2, 2×2\]/)
  })

  it("streams: reads only the clip's bytes, and the decoded-clip cache stays within its byte budget", () => {
    const dir = tmp()
    writeToy(dir, { name: "toy", episodes: 10, length: () => 40, size: 16 })
    const dataset = Dataset.open(dir)
    const clipBytes = 4 * 16 * 16 * 3
    const budget = 5 * clipBytes * 4 // five float32 clips
    const clips = new DatasetClips(dataset, { length: 4, frameStep: 3, stride: 2 }, { cacheBytes: budget })
    clips.read(0)
    expect(dataset.bytesRead).toBe(clipBytes) // not the episode (40 frames), not the dataset
    let maxCached = 0
    for (const _ of shuffledBatches(clips, { batchSize: 8, seed: 3, epochs: 2 })) maxCached = Math.max(maxCached, clips.cache.bytes)
    expect(maxCached).toBeLessThanOrEqual(budget)
    expect(clips.cache.size).toBe(5)
    // every miss read exactly one clip from disk
    expect(dataset.bytesRead).toBe(clips.cache.misses * clipBytes)

    // a cache big enough for everything serves the second epoch from memory
    const warm = new DatasetClips(dataset, { length: 4, frameStep: 3, stride: 2 })
    for (const _ of shuffledBatches(warm, { batchSize: 8, seed: 3, epochs: 2 })) { /* consume */ }
    expect(warm.cache.hits).toBe(warm.count)
  })

  it("opens datasets whose manifest has no episode index (falls back to meta.json and npy headers)", () => {
    const dir = tmp()
    writeToy(dir, { name: "toy", episodes: 3, length: (e) => 4 + e, robot: true })
    const file = path.join(dir, "dataset.json")
    const manifest = JSON.parse(fs.readFileSync(file, "utf8"))
    delete manifest.episodes
    fs.writeFileSync(file, JSON.stringify(manifest))
    const dataset = Dataset.open(dir)
    expect(dataset.episodes().map((e) => [e.id, e.task, e.length, e.hasActions])).toEqual([
      ["toy-0", "even", 4, true], ["toy-1", "odd", 5, true], ["toy-2", "even", 6, true]
    ])
    manifest.height = -1
    fs.writeFileSync(file, JSON.stringify(manifest))
    expect(() => Dataset.open(dir)).toThrow(/dataset.json: does not match the vw2-episodes\/1 layout/)
  })
})
