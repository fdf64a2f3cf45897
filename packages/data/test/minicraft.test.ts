import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { readNpy } from "../src/formats/npy.ts"
import { readEpisodeMeta, readManifest } from "../src/dataset/Manifest.ts"
import { decodeAppearance, domainFactors, episodeAppearance, SPLITS } from "../src/minicraft/Appearance.ts"
import { renderEpisodeArray } from "../src/minicraft/Episode.ts"
import { defaultMiniCraftConfig, generateMiniCraft, type MiniCraftConfig } from "../src/minicraft/Generate.ts"
import { TASK_NAMES, getTask } from "../src/minicraft/Tasks.ts"
import { contactFrames } from "../src/minicraft/ContactSheet.ts"
import { minicraftContactSheets } from "../src/minicraft/Sheets.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "minicraft-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const small: MiniCraftConfig = { ...defaultMiniCraftConfig, episodesPerTask: { train: 1, test: 1 }, framesPerStep: 6, idleFrames: 2 }

const listFiles = (dir: string): string[] =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort()

describe("MiniCraft generator", () => {
  it("writes the shared layout: frames.npy [T, H, W, 3], per-frame labels, splits by domain", () => {
    const dir = path.join(tmp, "layout")
    const manifest = generateMiniCraft(dir, small)
    expect(readManifest(dir)).toEqual(manifest)
    expect(manifest.tasks).toEqual([...TASK_NAMES].sort())
    expect(manifest.splits["train"]).toHaveLength(5)
    expect(manifest.splits["test"]).toHaveLength(5)
    for (const id of [...manifest.splits["train"]!, ...manifest.splits["test"]!]) {
      const meta = readEpisodeMeta(dir, id)
      const frames = readNpy(path.join(dir, "episodes", id, "frames.npy"))
      const steps = getTask(meta.task).steps.length
      expect(frames.dtype).toBe("uint8")
      expect(frames.shape).toEqual([2 * 2 + steps * 6, 32, 32, 3])
      expect(meta.frames).toHaveLength(frames.shape[0]!)
      // labels walk through every step in order and end with all of them done
      expect(meta.frames.map((f) => f.step)).toEqual([...meta.frames.map((f) => f.step)].sort((a, b) => a - b))
      expect(meta.frames.at(-1)!.state["completed"]).toBe(steps)
      expect(new Set(meta.frames.map((f) => f.phase))).toEqual(new Set(["idle", "reach", meta.task.startsWith("fold") ? "fold" : "carry", "release"]))
      expect(meta.instruction.length).toBeGreaterThan(10)
      // the appearance in meta.json is complete enough to re-render the episode
      const appearance = decodeAppearance(meta.appearance, id)
      const again = renderEpisodeArray(getTask(meta.task), appearance, small)
      expect(Buffer.compare(Buffer.from(again.frames), Buffer.from(frames.data as Uint8Array))).toBe(0)
    }
  })

  it("is deterministic: the same seed gives byte-identical files, another seed different frames", () => {
    const a = path.join(tmp, "a")
    const b = path.join(tmp, "b")
    const c = path.join(tmp, "c")
    const config: MiniCraftConfig = { ...small, tasks: ["fold-boat", "blocks-horse"], seed: 11 }
    generateMiniCraft(a, config)
    generateMiniCraft(b, config)
    generateMiniCraft(c, { ...config, seed: 12 })
    const files = listFiles(a)
    expect(files).toEqual(listFiles(b))
    expect(files.length).toBe(1 + 4 * 2)
    for (const f of files) expect(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), f).toBe(true)
    const frames = "episodes/fold-boat-train-000/frames.npy"
    expect(fs.readFileSync(path.join(a, frames)).equals(fs.readFileSync(path.join(c, frames)))).toBe(false)
  })

  it("draws train and test appearances from disjoint domains (tables, papers, lighting); views share one name", () => {
    const factors = { train: new Map<string, Set<string>>(), test: new Map<string, Set<string>>() }
    for (const split of SPLITS) {
      for (const task of TASK_NAMES) {
        for (let i = 0; i < 20; i++) {
          for (const [factor, value] of Object.entries(domainFactors(episodeAppearance(3, task, split, i)))) {
            const set = factors[split].get(factor) ?? new Set<string>()
            set.add(value)
            factors[split].set(factor, set)
          }
        }
      }
    }
    for (const factor of ["table", "paper", "lighting"]) {
      const train = factors.train.get(factor)!
      const test = factors.test.get(factor)!
      // tables and papers vary inside each split too; lighting varies continuously within a named range
      const variety = factor === "table" || factor === "paper" ? 1 : 0
      expect(train.size, factor).toBeGreaterThan(variety)
      expect(test.size, factor).toBeGreaterThan(variety)
      for (const v of test) expect(train.has(v), `${factor} ${v} appears in both splits`).toBe(false)
    }
    // geometry is not an appearance factor (test views lie inside the train ranges: minicraft-v2.test.ts)
    expect([...factors.train.get("view")!, ...factors.test.get("view")!]).toEqual(["tabletop", "tabletop"])
  })

  it("supports 16..128 pixels and rejects other sizes and bad configs with the config path", () => {
    for (const size of [16, 128]) {
      const { frames, length } = renderEpisodeArray(getTask("fold-plane"), episodeAppearance(0, "fold-plane", "train", 0), { ...small, width: size, height: size, supersample: 2 })
      expect(frames.length).toBe(length * size * size * 3)
    }
    expect(() => generateMiniCraft(path.join(tmp, "bad1"), { ...small, width: 200 })).toThrow(/width: expected an integer in \[16, 128\], got 200/)
    expect(() => generateMiniCraft(path.join(tmp, "bad2"), { ...small, tasks: ["fold-crane" as never] })).toThrow(/tasks\[0\]: unknown MiniCraft task "fold-crane"/)
    expect(() => generateMiniCraft(path.join(tmp, "bad3"), { ...small, episodesPerTask: { train: -1, test: 0 } })).toThrow(/episodesPerTask.train/)
    expect(() => generateMiniCraft(path.join(tmp, "bad4"), { ...small, framesPerStep: 3 })).toThrow(/framesPerStep/)
  })

  it("renders every settled state of a task differently, and differently across domains", () => {
    for (const name of TASK_NAMES) {
      const task = getTask(name)
      const settled = (split: "train" | "test") => {
        const { frames, labels } = renderEpisodeArray(task, episodeAppearance(0, name, split, 0), small)
        const size = 32 * 32 * 3
        return contactFrames(labels).states.map((i) => frames.subarray(i * size, (i + 1) * size))
      }
      const train = settled("train")
      const test = settled("test")
      expect(train).toHaveLength(task.steps.length + 1)
      const meanAbs = (x: Uint8Array, y: Uint8Array) => x.reduce((s, v, i) => s + Math.abs(v - y[i]!), 0) / x.length
      for (let k = 1; k < train.length; k++) expect(meanAbs(train[k]!, train[k - 1]!), `${name} step ${k}`).toBeGreaterThan(0.5)
      expect(meanAbs(train[0]!, test[0]!), `${name} domains`).toBeGreaterThan(20)
    }
  })

  it("makes contact sheets as PNG files", () => {
    const sheets = minicraftContactSheets({ seed: 0, width: 32, height: 32, framesPerStep: 6, idleFrames: 2, tasks: ["blocks-tower"] })
    expect(sheets.map((s) => s.name)).toEqual(["blocks-tower.png", "all-tasks.png"])
    for (const s of sheets) expect(Buffer.from(s.png.subarray(1, 4)).toString("latin1")).toBe("PNG")
  })
})
