/**
 * The warm-up's engine as a config value, end to end through the real `vw2` binary and the local executor
 * (test/fixtures/warmup-engine.ts: the pipeline's data, warm-up and tokenize steps at a tiny size):
 * `--set warmup.engine=torch --set warmup.processes=2` trains it in PyTorch under torchrun (2 ranks, gloo) and the
 * tfjs tokenize steps load its checkpoint; a rerun is all cache hits; the default engine trains it in tfjs, under
 * another hash, and keeps the hash of a config without the engine keys. Needs the torch venv (python/setup.sh).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { loadExperimentPromise, parseOverride, planExperiment } from "@vw2/core"
import { torchWarmupStage } from "@vw2/dldm"

const root = fileURLToPath(new URL("../../../", import.meta.url))
const bin = path.join(root, "packages/cli/src/bin.ts")
const experiment = fileURLToPath(new URL("./fixtures/warmup-engine.ts", import.meta.url))
const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-warmup-engine-"))
afterAll(() => fs.rmSync(home, { recursive: true, force: true }))

const torch = ["--set", "warmup.engine=torch", "--set", "warmup.processes=2"]

const vw2 = (args: ReadonlyArray<string>) => {
  const r = spawnSync(process.execPath, [bin, ...args], {
    env: { ...process.env, VW2_HOME: home, VW2_TRACKER: "none" },
    encoding: "utf8",
    timeout: 600_000
  })
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` }
}

const hashes = async (overrides: ReadonlyArray<string>) => {
  const plan = planExperiment(await loadExperimentPromise(experiment), overrides.map(parseOverride))
  return Object.fromEntries(plan.invocations.map((i) => [i.step, i.hash]))
}
const stored = (hash: string, file: string) => path.join(home, "store", hash, file)
const trainState = (hash: string) => JSON.parse(fs.readFileSync(stored(hash, "checkpoint/train_state.json"), "utf8")) as Record<string, unknown>

describe("warmup.engine", () => {
  it("torch trains the warm-up data-parallel in PyTorch, the tfjs steps continue on its checkpoint, and tfjs stays the default", async () => {
    const first = vw2(["run", experiment, ...torch])
    expect(first.status, first.out).toBe(0)
    expect(first.out).toContain("5 ran, 0 cached, 0 failed")
    expect(first.out).toMatch(/warmup: \d+ clips of 9 frames \+ \d+ robot clips, weights 3:1; 6 steps at batch 4 \(2 per rank × 2 ranks, gloo\)/)

    const withTorch = await hashes(["warmup.engine=torch", "warmup.processes=2"])
    const state = trainState(withTorch["warmup"]!)
    expect(state["backend"]).toMatch(/^pytorch .* ddp×2 gloo$/)
    expect(state["step"]).toBe(6)
    expect(fs.existsSync(stored(withTorch["warmup"]!, "checkpoint/model.safetensors"))).toBe(true)
    // tokenize (tfjs) loaded the PyTorch-trained dLDM with the strict loader and wrote codes for every episode
    const codes = JSON.parse(fs.readFileSync(stored(withTorch["tokenize"]!, "codes/codes.json"), "utf8")) as Record<string, unknown>
    expect(JSON.stringify(codes)).toContain("fold-plane")
    expect(fs.existsSync(stored(withTorch["tokenize-calvin"]!, "codes/codes.json"))).toBe(true)

    const again = vw2(["run", experiment, ...torch])
    expect(again.status, again.out).toBe(0)
    expect(again.out).toContain("0 ran, 5 cached")

    const tfjs = vw2(["run", experiment])
    expect(tfjs.status, tfjs.out).toBe(0)
    expect(tfjs.out).toContain("3 ran, 2 cached") // the warm-up and both tokenize steps; the data is shared
    const byDefault = await hashes([])
    expect(byDefault["warmup"]).not.toBe(withTorch["warmup"])
    expect(trainState(byDefault["warmup"]!)["backend"]).not.toMatch(/^pytorch/)
  })

  it("the torch engine's code version is in the hash; the default config hashes as the tfjs stage alone; bad choices fail at plan time", async () => {
    const experimentValue = await loadExperimentPromise(experiment)
    const plan = planExperiment(experimentValue, [parseOverride("warmup.engine=torch")])
    const warmup = plan.invocations.find((i) => i.step === "warmup")!
    expect((warmup.config as Record<string, unknown>)["engine"]).toBe(`torch@${torchWarmupStage.version}`)
    expect(torchWarmupStage.version).toMatch(/^1\+src\.[0-9a-f]{16}$/)
    const plain = planExperiment(experimentValue).invocations.find((i) => i.step === "warmup")!
    expect(Object.keys(plain.config as object)).not.toContain("engine")
    expect(plain.stageVersion).toBe("4")
    expect(() => planExperiment(experimentValue, [parseOverride("warmup.engine=jax")])).toThrow(/expected "tfjs" or "torch"/)
    expect(() => planExperiment(experimentValue, [parseOverride("warmup.processes=2")])).toThrow(/processes \/ gpus apply to engine "torch" only/)
  })
})
