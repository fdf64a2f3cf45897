import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { ConfigField } from "../src/index.ts"

const Config = Schema.Struct({
  steps: ConfigField.positiveInt(10),
  warmup: ConfigField.nonNegativeInt(0),
  size: ConfigField.intBetween(8, 64, 32),
  heads: ConfigField.int(2, 4),
  lr: ConfigField.positiveNumber(1e-3),
  decay: ConfigField.nonNegativeNumber(0),
  shift: ConfigField.finite(-1),
  ema: ConfigField.bool(true),
  mode: ConfigField.literals(["a", "b"], "b"),
  name: ConfigField.withDefault(Schema.String, "run")
})
const decode = Schema.decodeUnknownSync(Config)

describe("ConfigField", () => {
  it("fills every absent key with its default and keeps given values", () => {
    expect(decode({})).toEqual({ steps: 10, warmup: 0, size: 32, heads: 4, lr: 1e-3, decay: 0, shift: -1, ema: true, mode: "b", name: "run" })
    expect(decode({ steps: 3, size: 8, mode: "a", ema: false })).toMatchObject({ steps: 3, size: 8, mode: "a", ema: false })
  })

  it("rejects a given value outside its range, naming the key", () => {
    for (const [bad, key] of [[{ steps: 0 }, "steps"], [{ warmup: -1 }, "warmup"], [{ size: 65 }, "size"], [{ size: 7 }, "size"], [{ heads: 1 }, "heads"],
      [{ lr: 0 }, "lr"], [{ decay: -0.5 }, "decay"], [{ shift: Number.POSITIVE_INFINITY }, "shift"], [{ steps: 1.5 }, "steps"], [{ mode: "c" }, "mode"]] as const) {
      expect(() => decode(bad), key).toThrow(new RegExp(key))
    }
  })
})
