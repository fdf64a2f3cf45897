import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { dldmStage, miniPreset, miniStageConfigs, openxCotrainStage, paperPreset, paperStageConfigs, tokenizeStage, warmupStage } from "../src/index.ts"

const decode = (schema: unknown, value: unknown) =>
  Schema.decodeUnknownSync(schema as Schema.Codec<unknown, unknown>)(value, { onExcessProperty: "error" }) as Record<string, any>

describe("stage presets", () => {
  it("paper configs decode through the stage schemas and carry the authors' recipe", () => {
    const w = decode(warmupStage.config, paperStageConfigs.warmup)
    expect(w["model"]).toEqual(paperPreset)
    expect(w["optim"]).toMatchObject({ lr: 4.3e-5, weightDecay: 0.1, beta1: 0.9, beta2: 0.99, warmupSteps: 2000 })
    expect(w["lpipsWeight"]).toBe(0.1)
    const d = decode(dldmStage.config, paperStageConfigs.dldm)
    expect(d).toMatchObject({ diffusionWeight: 10, reconstructionWeight: 1, optim: { lr: 1e-4, batchSize: 128 } })
    expect(d["dit"]["control"]).toMatchObject({ enabled: true, weight: 0.5, stopGradient: true })
    expect(d["dit"]["causalCrossAttention"]).toBe(true)
    decode(openxCotrainStage.config, paperStageConfigs["openx-cotrain"])
    decode(tokenizeStage.config, paperStageConfigs.tokenize)
  })

  it("mini configs are the schema defaults: the mini dLDM preset", () => {
    expect(decode(warmupStage.config, miniStageConfigs.warmup)["model"]).toEqual(miniPreset)
    expect(decode(dldmStage.config, miniStageConfigs.dldm)["diffusionWeight"]).toBe(10)
  })

  it("rejects unknown keys and bad values with their path", () => {
    expect(() => decode(warmupStage.config, { model: { queries: 0 } })).toThrow(/queries/)
    expect(() => decode(warmupStage.config, { modle: {} })).toThrow()
  })
})
