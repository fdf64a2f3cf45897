import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import {
  decodeNpy,
  decodeNpyHeader,
  encodeNpy,
  npyArray,
  NpyRowWriter,
  readNpy,
  readNpyHeader,
  readNpyRows,
  writeNpy
} from "../src/formats/npy.ts"
import { decodeNpz, encodeNpz, readNpz, writeNpz } from "../src/formats/npz.ts"

/**
 * Golden files written by real numpy 2.1.3 (np.save / np.savez / np.savez_compressed):
 *   np.save('f32.npy', np.arange(6, dtype='<f4').reshape(2,3) / 4)
 *   np.save('u8.npy', np.arange(24, dtype=np.uint8).reshape(2,2,2,3))
 *   np.save('i64.npy', np.array([-1, 2**40, 7], dtype='<i8'))
 *   np.save('b.npy', np.array([True, False, True]))
 *   np.save('f64s.npy', np.float64(3.5))
 *   np.save('i32.npy', np.array([[1,-2],[3,-4]], dtype='<i4'))
 *   np.savez('s.npz', a=np.arange(3, dtype='<f4'), b=np.array([[1,2]], dtype=np.uint8))
 *   np.savez_compressed('c.npz', rel_actions=np.linspace(-1,1,7).astype('<f4'), rgb=np.full((4,4,3), 200, np.uint8))
 */
const GOLDEN = {
  f32: "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPgAAAD8AAEA/AACAPwAAoD8=",
  u8: "k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIsIDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhc=",
  i64: "k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAr//////////wAAAAAAAQAABwAAAAAAAAA=",
  bool: "k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAE=",
  f64scalar: "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAMQA==",
  i32: "k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAA/v///wMAAAD8////",
  npzStored: "UEsDBC0AAAAAAAAAIQC2jIZT//////////8FABQAYS5ucHkBABAAjAAAAAAAAACMAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxmNCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgzLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAAAAAAgD8AAABAUEsDBC0AAAAAAAAAIQCcAuQb//////////8FABQAYi5ucHkBABAAggAAAAAAAACCAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJ3x1MScsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgxLCAyKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAQJQSwECLQMtAAAAAAAAACEAtoyGU4wAAACMAAAABQAAAAAAAAAAAAAAgAEAAAAAYS5ucHlQSwECLQMtAAAAAAAAACEAnALkG4IAAACCAAAABQAAAAAAAAAAAAAAgAHDAAAAYi5ucHlQSwUGAAAAAAIAAgBmAAAAfAEAAAAA",
  npzCompressed: "UEsDBC0AAAAIAAAAIQAxouN8//////////8PABQAcmVsX2FjdGlvbnMubnB5AQAQAJwAAAAAAAAAWgAAAAAAAACb7BfqGxDJyFDGUK2eklqcXKRupaBuk2airqOgnpZfVFKUmBefX5SSChJ3S8wpTgWKF2ckFqQC+RrmOpo6CrUKFAAuBoaG/atXaQHxqn0MQACk7YB8e6C4PQBQSwMELQAAAAgAAAAhAEiMK3n//////////wcAFAByZ2IubnB5AQAQALAAAAAAAAAASwAAAAAAAACb7BfqGxDJyFDGUK2eklqcXKRupaBeU2qorqOgnpZfVFKUmBefX5SSChJ3S8wpTgWKF2ckFqQC+RomOgpAZKypo1CrQB7gOkEiAABQSwECLQMtAAAACAAAACEAMaLjfFoAAACcAAAADwAAAAAAAAAAAAAAgAEAAAAAcmVsX2FjdGlvbnMubnB5UEsBAi0DLQAAAAgAAAAhAEiMK3lLAAAAsAAAAAcAAAAAAAAAAAAAAIABmwAAAHJnYi5ucHlQSwUGAAAAAAIAAgByAAAAHwEAAAAA"
} as const

const bytesOf = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, "base64"))
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "vw2-npy-"))

describe("npy", () => {
  it("writes exactly the bytes numpy.save writes", () => {
    const cases = [
      [GOLDEN.f32, npyArray("float32", [2, 3], new Float32Array([0, 0.25, 0.5, 0.75, 1, 1.25]))],
      [GOLDEN.u8, npyArray("uint8", [2, 2, 2, 3], Uint8Array.from({ length: 24 }, (_, i) => i))],
      [GOLDEN.i64, npyArray("int64", [3], new BigInt64Array([-1n, 2n ** 40n, 7n]))],
      [GOLDEN.bool, npyArray("bool", [3], new Uint8Array([1, 0, 1]))],
      [GOLDEN.f64scalar, npyArray("float64", [], new Float64Array([3.5]))],
      [GOLDEN.i32, npyArray("int32", [2, 2], new Int32Array([1, -2, 3, -4]))]
    ] as const
    for (const [golden, array] of cases) {
      expect(Buffer.from(encodeNpy(array)).toString("base64")).toBe(golden)
    }
  })

  it("reads numpy's files with the right dtype, shape and values", () => {
    const f32 = decodeNpy(bytesOf(GOLDEN.f32))
    expect(f32.dtype).toBe("float32")
    expect(f32.shape).toEqual([2, 3])
    expect(Array.from(f32.data as Float32Array)).toEqual([0, 0.25, 0.5, 0.75, 1, 1.25])
    const i64 = decodeNpy(bytesOf(GOLDEN.i64))
    expect(Array.from(i64.data as BigInt64Array)).toEqual([-1n, 2n ** 40n, 7n])
    const scalar = decodeNpy(bytesOf(GOLDEN.f64scalar))
    expect(scalar.shape).toEqual([])
    expect(scalar.data[0]).toBe(3.5)
    const b = decodeNpy(bytesOf(GOLDEN.bool))
    expect(b.dtype).toBe("bool")
    expect(Array.from(b.data as Uint8Array)).toEqual([1, 0, 1])
  })

  it("round-trips every dtype, including empty arrays, through files", () => {
    const dir = tmp()
    const arrays = [
      npyArray("uint8", [3, 4, 5, 3], Uint8Array.from({ length: 180 }, (_, i) => (i * 37) % 256)),
      npyArray("float32", [7], Float32Array.from([Math.PI, -0, Infinity, -1e-30, 1e30, NaN, 2])),
      npyArray("float64", [2, 2], Float64Array.from([Math.E, -Math.E, 1e300, 5e-324])),
      npyArray("int32", [0, 7], new Int32Array(0)),
      npyArray("int64", [2], new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n])),
      npyArray("bool", [1, 1, 2], new Uint8Array([0, 1]))
    ]
    for (const [i, array] of arrays.entries()) {
      const file = path.join(dir, `a${i}.npy`)
      writeNpy(file, array)
      const back = readNpy(file)
      expect(back.dtype).toBe(array.dtype)
      expect(back.shape).toEqual(array.shape)
      expect(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength))
        .toEqual(Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength))
      // every header is padded so the data starts on a 64-byte boundary, as numpy requires
      expect(decodeNpyHeader(fs.readFileSync(file)).dataOffset % 64).toBe(0)
    }
  })

  it("reads version 2.0 headers (4-byte header length)", () => {
    const v1 = bytesOf(GOLDEN.i32)
    const headerLength = new DataView(v1.buffer).getUint16(8, true)
    // v2: same dict, 4-byte length; numpy would re-pad, but any length is valid for the reader
    const v2 = new Uint8Array(v1.length + 2)
    v2.set(v1.subarray(0, 6))
    v2[6] = 2
    new DataView(v2.buffer).setUint32(8, headerLength, true)
    v2.set(v1.subarray(10), 12)
    const array = decodeNpy(v2)
    expect(array.shape).toEqual([2, 2])
    expect(Array.from(array.data as Int32Array)).toEqual([1, -2, 3, -4])
  })

  it("reads a row range without the rest of the file, and streams rows into a numpy-identical file", () => {
    const dir = tmp()
    const frames = npyArray("uint8", [10, 2, 2, 3], Uint8Array.from({ length: 120 }, (_, i) => i))
    const whole = path.join(dir, "whole.npy")
    writeNpy(whole, frames)
    const rows = readNpyRows(whole, 3, 4)
    expect(rows.shape).toEqual([4, 2, 2, 3])
    expect(Array.from(rows.data as Uint8Array)).toEqual(Array.from(frames.data.subarray(36, 84)))
    expect(() => readNpyRows(whole, 8, 3)).toThrow(/out of range/)

    const streamed = path.join(dir, "streamed.npy")
    const writer = new NpyRowWriter(streamed, "uint8", [2, 2, 3])
    for (let t = 0; t < 10; t++) writer.append((frames.data as Uint8Array).subarray(t * 12, (t + 1) * 12))
    writer.close()
    expect(fs.readFileSync(streamed)).toEqual(fs.readFileSync(whole))
    expect(readNpyHeader(streamed).shape).toEqual([10, 2, 2, 3])
  })

  it("rejects bad input with the file name and byte offset", () => {
    const dir = tmp()
    const truncated = path.join(dir, "truncated.npy")
    fs.writeFileSync(truncated, bytesOf(GOLDEN.f32).subarray(0, 140))
    expect(() => readNpy(truncated)).toThrow(`${truncated}: at byte 140: npy data is truncated`)
    const notNpy = path.join(dir, "not.npy")
    fs.writeFileSync(notNpy, "hello world, not numpy")
    expect(() => readNpy(notNpy)).toThrow(`${notNpy}: at byte 0: not a .npy file`)
    const bigEndian = Buffer.from(bytesOf(GOLDEN.f32))
    bigEndian.write(">f4", bigEndian.indexOf("<f4"), "latin1")
    expect(() => decodeNpy(bigEndian, "be.npy")).toThrow(/be.npy: at byte 10: npy dtype '>f4' is not supported \(big-endian/)
    const fortran = Buffer.from(bytesOf(GOLDEN.i32))
    fortran.write("True ", fortran.indexOf("False"), "latin1")
    expect(() => decodeNpy(fortran, "f.npy")).toThrow(/Fortran order/)
    expect(() => readNpy(path.join(dir, "missing.npy"))).toThrow(/missing.npy: cannot read npy file/)
  })
})

describe("npz", () => {
  it("reads numpy.savez (stored, zip64 extra fields) and numpy.savez_compressed archives", () => {
    const stored = decodeNpz(bytesOf(GOLDEN.npzStored))
    expect(Object.keys(stored).sort()).toEqual(["a", "b"])
    expect(Array.from(stored["a"]!.data as Float32Array)).toEqual([0, 1, 2])
    expect(stored["b"]!.shape).toEqual([1, 2])
    const compressed = decodeNpz(bytesOf(GOLDEN.npzCompressed))
    expect(compressed["rel_actions"]!.shape).toEqual([7])
    expect((compressed["rel_actions"]!.data as Float32Array)[0]).toBe(-1)
    expect(compressed["rgb"]!.shape).toEqual([4, 4, 3])
    expect(Array.from(compressed["rgb"]!.data as Uint8Array).every((v) => v === 200)).toBe(true)
    const only = decodeNpz(bytesOf(GOLDEN.npzCompressed), "c.npz", ["rel_actions"])
    expect(Object.keys(only)).toEqual(["rel_actions"])
    expect(() => decodeNpz(bytesOf(GOLDEN.npzCompressed), "c.npz", ["robot_obs"])).toThrow(/c.npz: npz archive has no member 'robot_obs'/)
  })

  it("round-trips stored and compressed archives with deterministic bytes", () => {
    const dir = tmp()
    const arrays = {
      rgb_static: npyArray("uint8", [8, 8, 3], Uint8Array.from({ length: 192 }, (_, i) => i % 251)),
      actions: npyArray("float64", [7], Float64Array.from([0.1, -0.2, 0.3, 0, 0, 1, -1]))
    }
    for (const compress of [false, true]) {
      const file = path.join(dir, `x${compress}.npz`)
      writeNpz(file, arrays, { compress })
      const back = readNpz(file)
      expect(back["rgb_static"]!.data).toEqual(arrays.rgb_static.data)
      expect(back["actions"]!.data).toEqual(arrays.actions.data)
      expect(encodeNpz(arrays, { compress })).toEqual(new Uint8Array(fs.readFileSync(file)))
    }
    const garbage = path.join(dir, "garbage.npz")
    fs.writeFileSync(garbage, "PK not really")
    expect(() => readNpz(garbage)).toThrow(/garbage.npz: not a readable npz/)
  })

  const numpyAvailable = spawnSync("python3", ["-c", "import numpy"]).status === 0
  it.skipIf(!numpyAvailable)("numpy loads what we write (live check, runs where numpy is installed)", () => {
    const dir = tmp()
    writeNpy(path.join(dir, "a.npy"), npyArray("float32", [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6.5])))
    writeNpz(path.join(dir, "b.npz"), { x: npyArray("int64", [2], new BigInt64Array([5n, -6n])) }, { compress: true })
    const script = `import numpy as np; a=np.load('${dir}/a.npy'); b=np.load('${dir}/b.npz'); print(a.shape, float(a.sum()), b['x'].tolist())`
    const run = spawnSync("python3", ["-c", script], { encoding: "utf8" })
    expect(run.stdout.trim()).toBe("(2, 3) 21.5 [5, -6]")
  })
})
