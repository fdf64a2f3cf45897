import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Dataset } from "../src/dataset/Dataset.ts"
import { CalvinWriter, importCalvin, readCalvinStep, readEpisodeRanges, readLanguageAnnotations } from "../src/formats/calvin.ts"
import { readNpy } from "../src/formats/npy.ts"
import { decodePickledNpy, encodePickledNpy, PyTuple, unpickle } from "../src/formats/pickle.ts"

/**
 * CALVIN-shaped auto_lang_ann.npy files written by real numpy 2.1.3 from
 *   d = {'info': {'episodes': [], 'indx': [(0, 4), (np.int64(5), np.int64(9))]},
 *        'language': {'ann': ['open the drawer', 'push the red block to the left'],
 *                     'task': ['open_drawer', 'push_red_left'],
 *                     'emb': np.arange(8, dtype=np.float32).reshape(2, 1, 4) / 8}}
 * P4: np.save(path, d) (protocol 4). P2/P3: the same array pickled with protocol 2/3 and the module named
 * numpy.core.multiarray, as numpy 1.x wrote the real CALVIN files.
 */
const P4 = "k05VTVBZAQB2AHsnZGVzY3InOiAnfE8nLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqABJXpAQAAAAAAAIwWbnVtcHkuX2NvcmUubXVsdGlhcnJheZSMDF9yZWNvbnN0cnVjdJSTlIwFbnVtcHmUjAduZGFycmF5lJOUSwCFlEMBYpSHlFKUKEsBKWgDjAVkdHlwZZSTlIwCTziUiYiHlFKUKEsDjAF8lE5OTkr/////Sv////9LP3SUYoldlH2UKIwEaW5mb5R9lCiMCGVwaXNvZGVzlF2UjARpbmR4lF2UKEsASwSGlGgAjAZzY2FsYXKUk5RoC4wCaTiUiYiHlFKUKEsDjAE8lE5OTkr/////Sv////9LAHSUYkMIBQAAAAAAAACUhpRSlGgbaB5DCAkAAAAAAAAAlIaUUpSGlGV1jAhsYW5ndWFnZZR9lCiMA2FubpRdlCiMD29wZW4gdGhlIGRyYXdlcpSMHnB1c2ggdGhlIHJlZCBibG9jayB0byB0aGUgbGVmdJRljAR0YXNrlF2UKIwLb3Blbl9kcmF3ZXKUjA1wdXNoX3JlZF9sZWZ0lGWMA2VtYpRoAmgFSwCFlGgHh5RSlChLAUsCSwFLBIeUaAuMAmY0lImIh5RSlChLA2gfTk5OSv////9K/////0sAdJRiiUMgAAAAAAAAAD4AAIA+AADAPgAAAD8AACA/AABAPwAAYD+UdJRidXVhdJRiLg=="
const P3 = "k05VTVBZAQB2AHsnZGVzY3InOiAnfE8nLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqAA2NudW1weS5jb3JlLm11bHRpYXJyYXkKX3JlY29uc3RydWN0CnEAY251bXB5Cm5kYXJyYXkKcQFLAIVxAkMBYnEDh3EEUnEFKEsBKWNudW1weQpkdHlwZQpxBlgCAAAATzhxB4mIh3EIUnEJKEsDWAEAAAB8cQpOTk5K/////0r/////Sz90cQtiiV1xDH1xDShYBAAAAGluZm9xDn1xDyhYCAAAAGVwaXNvZGVzcRBdcRFYBAAAAGluZHhxEl1xEyhLAEsEhnEUY251bXB5LmNvcmUubXVsdGlhcnJheQpzY2FsYXIKcRVoBlgCAAAAaThxFomIh3EXUnEYKEsDWAEAAAA8cRlOTk5K/////0r/////SwB0cRpiQwgFAAAAAAAAAHEbhnEcUnEdaBVoGEMICQAAAAAAAABxHoZxH1JxIIZxIWV1WAgAAABsYW5ndWFnZXEifXEjKFgDAAAAYW5ucSRdcSUoWA8AAABvcGVuIHRoZSBkcmF3ZXJxJlgeAAAAcHVzaCB0aGUgcmVkIGJsb2NrIHRvIHRoZSBsZWZ0cSdlWAQAAAB0YXNrcShdcSkoWAsAAABvcGVuX2RyYXdlcnEqWA0AAABwdXNoX3JlZF9sZWZ0cStlWAMAAABlbWJxLGgAaAFLAIVxLWgDh3EuUnEvKEsBSwJLAUsEh3EwaAZYAgAAAGY0cTGJiIdxMlJxMyhLA2gZTk5OSv////9K/////0sAdHE0YolDIAAAAAAAAAA+AACAPgAAwD4AAAA/AAAgPwAAQD8AAGA/cTV0cTZidXVhdHE3Yi4="
const P2 = "k05VTVBZAQB2AHsnZGVzY3InOiAnfE8nLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqAAmNudW1weS5jb3JlLm11bHRpYXJyYXkKX3JlY29uc3RydWN0CnEAY251bXB5Cm5kYXJyYXkKcQFLAIVxAmNfY29kZWNzCmVuY29kZQpxA1gBAAAAYnEEWAYAAABsYXRpbjFxBYZxBlJxB4dxCFJxCShLASljbnVtcHkKZHR5cGUKcQpYAgAAAE84cQuJiIdxDFJxDShLA1gBAAAAfHEOTk5OSv////9K/////0s/dHEPYoldcRB9cREoWAQAAABpbmZvcRJ9cRMoWAgAAABlcGlzb2Rlc3EUXXEVWAQAAABpbmR4cRZdcRcoSwBLBIZxGGNudW1weS5jb3JlLm11bHRpYXJyYXkKc2NhbGFyCnEZaApYAgAAAGk4cRqJiIdxG1JxHChLA1gBAAAAPHEdTk5OSv////9K/////0sAdHEeYmgDWAgAAAAFAAAAAAAAAHEfaAWGcSBScSGGcSJScSNoGWgcaANYCAAAAAkAAAAAAAAAcSRoBYZxJVJxJoZxJ1JxKIZxKWV1WAgAAABsYW5ndWFnZXEqfXErKFgDAAAAYW5ucSxdcS0oWA8AAABvcGVuIHRoZSBkcmF3ZXJxLlgeAAAAcHVzaCB0aGUgcmVkIGJsb2NrIHRvIHRoZSBsZWZ0cS9lWAQAAAB0YXNrcTBdcTEoWAsAAABvcGVuX2RyYXdlcnEyWA0AAABwdXNoX3JlZF9sZWZ0cTNlWAMAAABlbWJxNGgAaAFLAIVxNWgHh3E2UnE3KEsBSwJLAUsEh3E4aApYAgAAAGY0cTmJiIdxOlJxOyhLA2gdTk5OSv////9K/////0sAdHE8YoloA1giAAAAAAAAAAAAAD4AAMKAPgAAw4A+AAAAPwAAID8AAEA/AABgP3E9aAWGcT5ScT90cUBidXVhdHFBYi4="

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "vw2-calvin-"))

const image = (h: number, w: number, seed: number): { data: Uint8Array; height: number; width: number } =>
  ({ height: h, width: w, data: Uint8Array.from({ length: h * w * 3 }, (_, i) => (seed * 13 + i) % 256) })

/** Writes a small CALVIN split: 2 play episodes (steps 0..5 and 6..9), 3 language segments. */
const writeSplit = (dir: string, offset = 0): void => {
  const writer = new CalvinWriter(dir, offset)
  for (let t = 0; t < 10; t++) {
    writer.appendStep({
      rgbStatic: image(8, 8, t),
      rgbGripper: image(4, 4, 100 + t),
      actions: [t, 0, 0, 0, 0, 0, 1],
      relActions: [t / 10, -t / 10, 0, 0, 0, 0.5, t % 2 === 0 ? 1 : -1],
      robotObs: Array.from({ length: 15 }, (_, i) => t + i / 100),
      sceneObs: Array.from({ length: 24 }, (_, i) => -t - i / 100)
    })
    if (t === 5) writer.endEpisode()
  }
  writer.annotate(offset + 0, offset + 3, "open the drawer", "open_drawer", new Float32Array([1, 0, 0]))
  writer.annotate(offset + 4, offset + 6, "turn on the led", "turn_on_led", new Float32Array([0, 1, 0]))
  writer.annotate(offset + 7, offset + 9, "lift the red block", "lift_red_block_table", new Float32Array([0, 0, 1]))
  writer.close()
}

describe("pickle (CALVIN auto_lang_ann.npy)", () => {
  it("reads numpy's pickles of protocols 2, 3 and 4", () => {
    for (const b64 of [P2, P3, P4]) {
      const value = decodePickledNpy(new Uint8Array(Buffer.from(b64, "base64"))) as Map<string, Map<string, unknown>>
      const info = value.get("info")!
      expect(info.get("episodes")).toEqual([])
      expect((info.get("indx") as PyTuple[]).map((t) => t.items)).toEqual([[0, 4], [5, 9]])
      const language = value.get("language")!
      expect(language.get("ann")).toEqual(["open the drawer", "push the red block to the left"])
      expect(language.get("task")).toEqual(["open_drawer", "push_red_left"])
      const emb = language.get("emb") as { dtype: string; shape: number[]; data: Float32Array }
      expect(emb.dtype).toBe("float32")
      expect(emb.shape).toEqual([2, 1, 4])
      expect(Array.from(emb.data)).toEqual([0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875])
    }
  })

  it("round-trips what it writes, and refuses pickles that call arbitrary code", () => {
    const value = { a: [1, -2, 2 ** 40, 0.5, "é", null, true], t: new PyTuple([1, "x"]), arr: { dtype: "int64" as const, shape: [2], data: new BigInt64Array([3n, -4n]) } }
    const back = decodePickledNpy(encodePickledNpy(value)) as Map<string, unknown>
    expect(back.get("a")).toEqual([1, -2, 2 ** 40, 0.5, "é", null, true])
    expect((back.get("t") as PyTuple).items).toEqual([1, "x"])
    expect(Array.from((back.get("arr") as { data: BigInt64Array }).data)).toEqual([3n, -4n])
    // os.system("echo pwned") as a protocol-0 pickle
    const evil = new TextEncoder().encode("cos\nsystem\n(S'echo pwned'\ntR.")
    expect(() => unpickle(evil, "evil.npy")).toThrow(/evil.npy: at byte 0: pickle: refusing global os.system/)
    expect(() => unpickle(new Uint8Array([0x80, 2, 0x5d]), "cut.pkl")).toThrow(/cut.pkl: at byte 3: pickle: truncated/)
  })

  const numpyAvailable = spawnSync("python3", ["-c", "import numpy"]).status === 0
  it.skipIf(!numpyAvailable)("numpy loads the auto_lang_ann.npy CalvinWriter writes (live check where numpy is installed)", () => {
    const dir = tmp()
    writeSplit(dir)
    const script = "import numpy as np, sys; d=np.load(sys.argv[1], allow_pickle=True).item(); print(d['info']['indx'], d['language']['task'], d['language']['emb'].shape)"
    const run = spawnSync("python3", ["-W", "ignore", "-c", script, path.join(dir, "lang_annotations", "auto_lang_ann.npy")], { encoding: "utf8" })
    expect(run.stdout.trim()).toBe("[(0, 3), (4, 6), (7, 9)] ['open_drawer', 'turn_on_led', 'lift_red_block_table'] (3, 1, 3)")
  })
})

describe("CALVIN layout", () => {
  it("writes step npz files, episode ranges and language annotations that read back", () => {
    const dir = tmp()
    writeSplit(dir)
    expect(fs.existsSync(path.join(dir, "episode_0000009.npz"))).toBe(true)
    expect(readEpisodeRanges(dir)).toEqual([[0, 5], [6, 9]])
    const ids = readNpy(path.join(dir, "ep_start_end_ids.npy"))
    expect(ids.dtype).toBe("int64")
    const language = readLanguageAnnotations(dir)!
    expect(language.indx).toEqual([[0, 3], [4, 6], [7, 9]])
    expect(language.task).toEqual(["open_drawer", "turn_on_led", "lift_red_block_table"])
    expect(language.emb!.shape).toEqual([3, 1, 3])
    const step = readCalvinStep(dir, 7, "rgb_gripper")
    expect([step.image.height, step.image.width]).toEqual([4, 4])
    expect(Array.from(step.image.data)).toEqual(Array.from(image(4, 4, 107).data))
    expect(step.relActions[0]).toBeCloseTo(0.7, 6)
    expect(step.robotObs[14]).toBeCloseTo(7.14, 5)
    expect(() => readCalvinStep(dir, 10)).toThrow(/episode_0000010.npz: CALVIN step 10 is missing/)
  })

  it("imports language segments (training → train, validation → test) into the shared layout", () => {
    const root = tmp()
    writeSplit(path.join(root, "training"))
    writeSplit(path.join(root, "validation"), 100)
    const out = path.join(tmp(), "imported")
    const manifest = importCalvin({ input: root, output: out, name: "calvin-mini", height: 4, width: 4 })
    expect(manifest.splits["train"]).toHaveLength(3)
    expect(manifest.splits["test"]).toHaveLength(3)
    expect(manifest.tasks).toEqual(["lift_red_block_table", "open_drawer", "turn_on_led"])
    const dataset = Dataset.open(out)
    const lift = dataset.episodes({ split: "test", task: "lift_red_block_table" })[0]!
    expect(lift.length).toBe(3)
    expect(dataset.meta(lift.id).instruction).toBe("lift the red block")
    const actions = dataset.readActions(lift.id, [0, 1, 2])
    expect(actions[0]).toBeCloseTo(0.7, 6) // step 107 is the 8th step of its split: t = 7
    expect(dataset.readFloatRows(lift.id, "scene_obs.npy", 24, [2])[0]).toBeCloseTo(-9, 6)
    // 8×8 static camera area-averaged to 4×4
    const frames = readNpy(path.join(out, "episodes", lift.id, "frames.npy"))
    expect(frames.shape).toEqual([3, 4, 4, 3])
    const src = image(8, 8, 7).data
    const expected = Math.round((src[0]! + src[3]! + src[24]! + src[27]!) / 4)
    expect(frames.data[0]).toBe(expected)
  })

  it("falls back to play episodes without annotations and names the path on bad input", () => {
    const dir = tmp()
    writeSplit(dir)
    fs.rmSync(path.join(dir, "lang_annotations"), { recursive: true })
    const out = path.join(tmp(), "play")
    const manifest = importCalvin({ input: dir, output: out, name: "play", height: 8, width: 8 })
    expect(manifest.tasks).toEqual(["play"])
    expect(Dataset.open(out).episodes().map((e) => e.length)).toEqual([6, 4])
    const empty = tmp()
    expect(() => importCalvin({ input: empty, output: path.join(tmp(), "x"), name: "x", height: 8, width: 8 }))
      .toThrow(new RegExp(`${empty}: not a CALVIN dataset`))
  })
})
