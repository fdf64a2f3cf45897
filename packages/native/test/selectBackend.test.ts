/** selectBackend (packages/nn/src/backend) activates what it reports and refuses what it cannot deliver. */
import * as tf from "@tensorflow/tfjs"
import { describe, expect, it } from "vitest"
import { BackendError, selectBackend } from "../../nn/src/backend/index.ts"
import { loadTfjsNode } from "../src/index.ts"

const native = loadTfjsNode()

describe("selectBackend", () => {
  it("VW2_TF_BACKEND=cpu activates the pure-JS backend", async () => {
    const choice = await selectBackend({ env: { VW2_TF_BACKEND: "cpu" } })
    expect(choice).toMatchObject({ name: "cpu", native: false, details: { requested: "cpu" } })
    expect(tf.getBackend()).toBe("cpu")
  })

  it("options.backend wins over the environment", async () => {
    const choice = await selectBackend({ backend: "wasm", env: { VW2_TF_BACKEND: "cpu" } })
    expect(choice.name).toBe("wasm")
    expect(tf.getBackend()).toBe("wasm")
    expect(tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).arraySync()).toEqual([[3, 3], [3, 3]])
  })

  it("an unknown name is an error naming where it came from", async () => {
    const failure = await selectBackend({ env: { VW2_TF_BACKEND: "webgpu" } }).catch((e: unknown) => e)
    expect(failure).toBeInstanceOf(BackendError)
    expect(String((failure as BackendError).message)).toMatch(/VW2_TF_BACKEND: unknown tfjs backend "webgpu"/)
  })

  it.skipIf(!native.available)("auto picks the native backend when it is built, and reports the library", async () => {
    const choice = await selectBackend({ env: {} })
    expect(choice).toMatchObject({ name: "tensorflow", native: true, details: { requested: "auto" } })
    expect(choice.details["libtensorflow"]).toMatch(/^2\./)
    expect(tf.getBackend()).toBe("tensorflow")
  })

  it.skipIf(native.available)("forcing the native backend where it is not built fails with the reason", async () => {
    const failure = await selectBackend({ backend: "native" }).catch((e: unknown) => e)
    expect(failure).toBeInstanceOf(BackendError)
    expect(String((failure as BackendError).message)).toMatch(/tensorflow but it is unavailable: .*setup/)
  })
})
