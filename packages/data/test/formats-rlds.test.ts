import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Dataset } from "../src/dataset/Dataset.ts"
import { readNpy } from "../src/formats/npy.ts"
import { bytesFeature, decodeExample, decodeSequenceExample, encodeExample, encodeSequenceExample, floatFeature, int64Feature } from "../src/formats/example.ts"
import { decodeImage, encodeJpeg, encodePng, resizeRgb } from "../src/formats/image.ts"
import { importRlds } from "../src/formats/importRlds.ts"
import { decodeRldsEpisode, encodeRldsEpisode, readRldsEpisodes, RldsDatasetWriter } from "../src/formats/rlds.ts"
import { encodeTfRecord, maskedCrc32c, readTfRecords, TfRecordWriter } from "../src/formats/tfrecord.ts"

/**
 * Written by the independent Python `tfrecord` package (1.14.6; crc32c 2.9, protobuf from TF's protos):
 *   w.write({"steps/action": ([0.5,-1,0.25,0,0,0,1, 0,0,0,0,0,0,-1], "float"), "steps/is_first": ([1,0], "int"),
 *            "steps/is_last": ([0,1], "int"), "steps/language_instruction": ([b"open the drawer"]*2, "byte")})
 *   w.write({"big": ([2**40, -3], "int")})
 */
const PY_EXAMPLES = "yAAAAAAAAAD9qpB4CsUBCkwKDHN0ZXBzL2FjdGlvbhI8EjoKOAAAAD8AAIC/AACAPgAAAAAAAAAAAAAAAAAAgD8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIC/CkIKGnN0ZXBzL2xhbmd1YWdlX2luc3RydWN0aW9uEiQKIgoPb3BlbiB0aGUgZHJhd2VyCg9vcGVuIHRoZSBkcmF3ZXIKGAoOc3RlcHMvaXNfZmlyc3QSBhoECgIBAAoXCg1zdGVwcy9pc19sYXN0EgYaBAoCAAEEdAZ8HwAAAAAAAABRS0QYCh0KGwoDYmlnEhQaEgoQgICAgIAg/f//////////Aee5dCk="
/**
 * A SequenceExample episode from the same package: context episode_metadata/file_path; feature lists
 * steps/observation/image (3 PNGs, 2×2, pixel value t·10 + i), steps/action [[t,0,0,0,0,0,-1|1]],
 * steps/language_instruction, steps/is_first, steps/is_last.
 */
const PY_SEQUENCE = "lAIAAAAAAABhhdKPCjEKLwoaZXBpc29kZV9tZXRhZGF0YS9maWxlX3BhdGgSEQoPCg0vZGF0YS9lcDAubnB6Et4ECpsCChdzdGVwcy9vYnNlcnZhdGlvbi9pbWFnZRL/AQpTClEKT4lQTkcNChoKAAAADUlIRFIAAAACAAAAAggCAAAA/dSacwAAABZJREFUeJxjYGBkYmZhZWBj5+Dk4gYAATsAQ8Jd1UsAAAAASUVORK5CYIIKUwpRCk+JUE5HDQoaCgAAAA1JSERSAAAAAgAAAAIIAgAAAP3UmnMAAAAWSURBVHicY+Di5uHl42cQEBQSFhEFAASDALuUhYsfAAAAAElFTkSuQmCCClMKUQpPiVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGMQERUTl5BkkJKWkZWTBwAHywEzHIt+CgAAAABJRU5ErkJgggp1ChpzdGVwcy9sYW5ndWFnZV9pbnN0cnVjdGlvbhJXChsKGQoXcHVzaCB0aGUgcmVkIGJsb2NrIGxlZnQKGwoZChdwdXNoIHRoZSByZWQgYmxvY2sgbGVmdAobChkKF3B1c2ggdGhlIHJlZCBibG9jayBsZWZ0CnYKDHN0ZXBzL2FjdGlvbhJmCiASHgocAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACAvwogEh4KHAAAgD8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAgL8KIBIeChwAAABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA/CiYKDXN0ZXBzL2lzX2xhc3QSFQoFGgMKAQAKBRoDCgEACgUaAwoBAQonCg5zdGVwcy9pc19maXJzdBIVCgUaAwoBAQoFGgMKAQAKBRoDCgEADQwzPw=="

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "vw2-rlds-"))
const writeB64 = (file: string, b64: string): string => {
  fs.writeFileSync(file, Buffer.from(b64, "base64"))
  return file
}

/** A frame whose pixels encode (episode, step) so imports can be checked exactly. */
const frame = (e: number, t: number, size: number): Uint8Array => Uint8Array.from({ length: size * size * 3 }, (_, p) => (e * 50 + t * 9 + (p % 3) * 60) % 256)

describe("TFRecord framing", () => {
  it("computes CRC32C (RFC 3720 check value) and TensorFlow's mask", () => {
    // crc32c("123456789") = 0xE3069283; masked = rotr15 + 0xa282ead8
    const c = 0xe3069283
    expect(maskedCrc32c(new TextEncoder().encode("123456789"))).toBe(((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0)
  })

  it("reads records written by an independent implementation and writes identical bytes", () => {
    const dir = tmp()
    const file = writeB64(path.join(dir, "py.tfrecord"), PY_EXAMPLES)
    const records = [...readTfRecords(file)]
    expect(records.map((r) => r.offset)).toEqual([0, 12 + 200 + 4])
    const first = decodeExample(records[0]!.data)
    expect(first["steps/action"]).toEqual(floatFeature([0.5, -1, 0.25, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, -1]))
    expect(first["steps/is_first"]).toEqual(int64Feature([1, 0]))
    const instruction = first["steps/language_instruction"]!
    expect(instruction.kind === "bytes" && new TextDecoder().decode(instruction.value[1])).toBe("open the drawer")
    expect(decodeExample(records[1]!.data)["big"]).toEqual(int64Feature([2n ** 40n, -3n]))
    // re-framing the same payloads reproduces the file byte for byte
    const reframed = Buffer.concat(records.map((r) => encodeTfRecord(r.data)))
    expect(reframed).toEqual(fs.readFileSync(file))
  })

  it("round-trips records through the writer", () => {
    const file = path.join(tmp(), "rt.tfrecord")
    const writer = new TfRecordWriter(file)
    const payloads = [new Uint8Array(0), new TextEncoder().encode("hello"), Uint8Array.from({ length: 5000 }, (_, i) => i % 251)]
    for (const p of payloads) writer.write(p)
    writer.close()
    expect([...readTfRecords(file)].map((r) => Array.from(r.data))).toEqual(payloads.map((p) => Array.from(p)))
  })

  it("rejects a bad data CRC, a bad length CRC and a truncated file, naming file and offset", () => {
    const dir = tmp()
    const good = Buffer.from(PY_EXAMPLES, "base64")
    const secondOffset = 216
    const badData = Buffer.from(good)
    badData[secondOffset + 12 + 5]! ^= 0x01
    const f1 = path.join(dir, "bad-data.tfrecord")
    fs.writeFileSync(f1, badData)
    expect(() => [...readTfRecords(f1)]).toThrow(`${f1}: at byte ${secondOffset}: TFRecord data CRC mismatch`)
    const badLength = Buffer.from(good)
    badLength[secondOffset + 1]! ^= 0x01
    const f2 = path.join(dir, "bad-length.tfrecord")
    fs.writeFileSync(f2, badLength)
    expect(() => [...readTfRecords(f2)]).toThrow(`${f2}: at byte ${secondOffset}: TFRecord length CRC mismatch`)
    const f3 = path.join(dir, "truncated.tfrecord")
    fs.writeFileSync(f3, good.subarray(0, good.length - 3))
    expect(() => [...readTfRecords(f3)]).toThrow(`${f3}: at byte ${secondOffset}: truncated TFRecord`)
    const f4 = path.join(dir, "short-header.tfrecord")
    fs.writeFileSync(f4, good.subarray(0, secondOffset + 5))
    expect(() => [...readTfRecords(f4)]).toThrow(`${f4}: at byte ${secondOffset}: truncated TFRecord header`)
  })
})

describe("tf.train.Example / SequenceExample", () => {
  it("round-trips every feature kind, including int64 beyond 2^53 and empty lists", () => {
    const features = {
      img: bytesFeature([new Uint8Array([1, 2, 3]), "text"]),
      f: floatFeature([1.5, -2, 1e-7]),
      i: int64Feature([-(2n ** 63n), 2n ** 62n + 1n, 0n]),
      empty: floatFeature([])
    }
    const back = decodeExample(encodeExample(features))
    expect(back["img"]).toEqual(features.img)
    expect(back["f"]).toEqual(features.f)
    expect(back["i"]).toEqual(features.i)
    expect(back["empty"]).toEqual(features.empty)
    const seq = { context: { id: bytesFeature(["e1"]) }, featureLists: { a: [floatFeature([1]), floatFeature([2, 3])], b: [int64Feature([4])] } }
    expect(decodeSequenceExample(encodeSequenceExample(seq))).toEqual(seq)
    expect(() => decodeExample(new Uint8Array([0x0a, 0xff, 0xff]), "x.tfrecord", 40)).toThrow(/x.tfrecord: at byte 40: record is not a tf.train.Example/)
  })
})

describe("RLDS", () => {
  it("reassembles an episode from a SequenceExample written by the Python tfrecord package", () => {
    const file = writeB64(path.join(tmp(), "seq.tfrecord"), PY_SEQUENCE)
    const [episode] = [...readRldsEpisodes(file)]
    expect(episode!.length).toBe(3)
    expect(episode!.actionDim).toBe(7)
    expect(Array.from(episode!.actions.subarray(14, 21))).toEqual([2, 0, 0, 0, 0, 0, 1])
    expect(episode!.instructions[0]).toBe("push the red block left")
    expect(episode!.metadata).toEqual({ file_path: "/data/ep0.npz" })
    const image = decodeImage(episode!.images[1]!)
    expect([image.width, image.height]).toEqual([2, 2])
    expect(Array.from(image.data)).toEqual(Array.from({ length: 12 }, (_, i) => 10 + i))
  })

  it("writes RLDS shards that read back exactly (PNG) and approximately (JPEG), and catches bad episodes", () => {
    const root = tmp()
    const writer = new RldsDatasetWriter(root, { name: "toy_robot", version: "1.0.0", description: "test", imageShape: [8, 8, 3], actionDim: 7 }, 2)
    for (let e = 0; e < 3; e++) {
      const images = Array.from({ length: 4 }, (_, t) => encodePng({ width: 8, height: 8, data: frame(e, t, 8) }))
      writer.write({ images, actions: Array.from({ length: 28 }, (_, i) => e + i / 100), instruction: `task ${e}` })
    }
    const info = writer.close()
    expect(info.episodes).toBe(3)
    const shardDir = path.join(root, "toy_robot", "1.0.0")
    expect(fs.readdirSync(shardDir).sort()).toEqual(["dataset_info.json", "toy_robot-train.tfrecord-00000-of-00002", "toy_robot-train.tfrecord-00001-of-00002"])
    const episodes = [...readRldsEpisodes(root)]
    // round-robin: shard 0 holds episodes 0 and 2, shard 1 holds episode 1
    expect(episodes.map((e) => e.instructions[0])).toEqual(["task 0", "task 2", "task 1"])
    expect(Array.from(decodeImage(episodes[2]!.images[3]!).data)).toEqual(Array.from(frame(1, 3, 8)))
    expect(episodes[1]!.actions[27]).toBeCloseTo(2.27, 5)

    const jpeg = decodeImage(encodeJpeg({ width: 8, height: 8, data: frame(0, 0, 8) }, 95))
    const err = Array.from(jpeg.data).reduce((a, v, i) => a + Math.abs(v - frame(0, 0, 8)[i]!), 0) / jpeg.data.length
    expect(err).toBeLessThan(8)

    const noImage = encodeExample({ "steps/action": floatFeature([0, 0, 0, 0, 0, 0, 0]) })
    expect(() => decodeRldsEpisode(noImage, undefined, "s.tfrecord", 12)).toThrow(/s.tfrecord: at byte 12: RLDS episode: no bytes feature 'steps\/observation\/image'/)
    const twoEpisodes = encodeRldsEpisode({ images: [new Uint8Array(1), new Uint8Array(1)], actions: new Array(14).fill(0), instruction: "" })
    const patched = decodeExample(twoEpisodes)
    const bad = encodeExample({ ...patched, "steps/is_first": int64Feature([1, 1]) })
    expect(() => decodeRldsEpisode(bad, undefined, "s.tfrecord", 0)).toThrow(/is_first must be set on the first step only/)
  })

  it("imports multi-embodiment RLDS into the shared layout with resized frames and 7-d actions", () => {
    const root = tmp()
    for (const [name, size] of [["arm_a", 16], ["arm_b", 8]] as const) {
      const writer = new RldsDatasetWriter(root, { name, version: "0.1.0", description: "", imageShape: [size, size, 3], actionDim: 7 })
      for (let e = 0; e < 4; e++) {
        const images = Array.from({ length: 5 }, (_, t) => encodePng({ width: size, height: size, data: frame(e, t, size) }))
        writer.write({ images, actions: Array.from({ length: 35 }, (_, i) => (name === "arm_a" ? 1 : -1) * i), instruction: `${name} ${e}` })
      }
      writer.close()
    }
    const out = path.join(tmp(), "imported")
    const manifest = importRlds({ input: root, output: out, name: "openx-standin", height: 8, width: 8, fps: 10, testFraction: 0.25, seed: 1 })
    expect(manifest.tasks).toEqual(["arm_a", "arm_b"])
    expect(manifest.stats["embodiments"]).toEqual(["arm_a", "arm_b"])
    const dataset = Dataset.open(out)
    expect(dataset.episodes()).toHaveLength(8)
    expect(dataset.episodes({ task: "arm_b" }).every((e) => e.domain === "arm_b" && e.length === 5 && e.hasActions)).toBe(true)
    const a0 = dataset.episodes({ task: "arm_a" }).find((e) => e.id.endsWith("-000000") && e.id.includes("00000_of_00001"))!
    expect(dataset.meta(a0.id).instruction).toBe("arm_a 0")
    // 16×16 → 8×8 area average of a frame whose pixels only depend on the channel: exact
    const frames = readNpy(path.join(out, "episodes", a0.id, "frames.npy"))
    expect(frames.shape).toEqual([5, 8, 8, 3])
    expect(Array.from((frames.data as Uint8Array).subarray(2 * 192, 2 * 192 + 3))).toEqual(Array.from(frame(0, 2, 8).subarray(0, 3)))
    expect(Array.from(dataset.readActions(a0.id, [1]))).toEqual([7, 8, 9, 10, 11, 12, 13])
    expect(fs.existsSync(path.join(out, "episodes", a0.id, "robot_obs.npy"))).toBe(false)

    const wrongDim = path.join(tmp(), "wrong")
    expect(() => importRlds({ input: root, output: wrongDim, name: "x", height: 8, width: 8, fps: 10, keys: { action: ["steps/action", "steps/reward"] } }))
      .toThrow(/RLDS action has 8 values per step .* the shared layout needs 7/)
  })

  it("resizes by area averaging", () => {
    const src = { width: 4, height: 2, data: Uint8Array.from([0, 0, 0, 100, 100, 100, 10, 10, 10, 30, 30, 30, 200, 200, 200, 0, 0, 0, 50, 50, 50, 90, 90, 90]) }
    expect(Array.from(resizeRgb(src, 2, 1).data)).toEqual([75, 75, 75, 45, 45, 45])
  })
})
