/**
 * `vw2 run` of test/fixtures/checkpointed.ts against the real test server: every checkpoint output becomes
 * an MLflow logged model of its stage run (READY, the run's output, its files byte for byte), other outputs
 * do not; `--register NAME=step.output` makes one model version per trial, and a rerun that is all cache
 * hits registers the producers' models again. Read back through the REST API.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, inject, it } from "vitest"

import { weightsOf } from "./fixtures/checkpointed.ts"
import { testClient } from "./support/promised.ts"

const repo = path.resolve(import.meta.dirname, "../../..")
const fixture = path.join(import.meta.dirname, "fixtures", "checkpointed.ts")
const uri = inject("mlflowUri")
const client = testClient({ trackingUri: uri, auth: undefined })
const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-checkpoints-"))
const experiment = `checkpointed-${Date.now()}`
const registered = `toy-model-${Date.now()}`

afterAll(async () => {
  await client.close()
  fs.rmSync(home, { recursive: true, force: true })
})

const vw2 = (...args: Array<string>) =>
  spawnSync(process.execPath, [path.join(repo, "packages/cli/src/bin.ts"), ...args], {
    cwd: repo,
    env: { ...process.env, VW2_HOME: home, MLFLOW_TRACKING_URI: uri, VW2_TEST_EXPERIMENT: experiment },
    encoding: "utf8",
    timeout: 240_000
  })

describe("checkpoints → MLflow logged models → model registry", () => {
  it("logs each trial's checkpoint as a logged model and registers a version per trial, again from cache hits", async () => {
    const first = vw2("run", fixture, "--executor", "inline", "--register", `${registered}=fit.checkpoint`)
    expect(first.status, first.stderr).toBe(0)
    expect(first.stdout).toMatch(new RegExp(`registered fit\\.checkpoint \\(.+\\) as ${registered} version 1`))
    expect(first.stdout).toMatch(new RegExp(`registered fit\\.checkpoint \\(.+\\) as ${registered} version 2`))

    const experimentId = (await client.getExperimentByName(experiment))!.experimentId
    const fits = await client.searchRuns({ experimentIds: [experimentId], filter: "tags.`vw2.step` = 'fit'" })
    expect(fits).toHaveLength(2)
    const modelIds = new Set<string>()
    for (const run of fits) {
      const modelId = run.tags["vw2.model.checkpoint"]!
      modelIds.add(modelId)
      const model = await client.getLoggedModel(modelId)
      expect(model).toMatchObject({ name: "fit-checkpoint", status: "LOGGED_MODEL_READY", sourceRunId: run.info.runId })
      expect(model.tags).toMatchObject({ "vw2.output": "checkpoint", "vw2.step": "fit", "vw2.stage_hash": run.tags["vw2.stage_hash"] })
      expect(run.tags["vw2.model.notes"]).toBeUndefined()
      expect((await client.listArtifacts(model.artifactUri)).map((f) => f.path).sort()).toEqual(["model.json", "shards"])
      const seed = Number(run.params.seed ?? run.tags["vw2.seed"] ?? JSON.parse(await download(model.artifactUri, "model.json")).seed)
      const weights = path.join(home, `weights-${seed}.bin`)
      await client.downloadArtifact(model.artifactUri, "shards/weights.bin", weights)
      expect(fs.readFileSync(weights).equals(weightsOf(0.5, seed, 200_000))).toBe(true)
    }
    expect(modelIds.size).toBe(2)
    const checks = await client.searchRuns({ experimentIds: [experimentId], filter: "tags.`vw2.step` = 'check'" })
    expect(checks.flatMap((r) => Object.keys(r.tags).filter((k) => k.startsWith("vw2.model.")))).toEqual([])

    // all cached: the same logged models, registered again
    const again = vw2("run", fixture, "--executor", "inline", "--register", `${registered}=fit.checkpoint`)
    expect(again.status, again.stderr).toBe(0)
    const versions = await client.searchModelVersions(`name = '${registered}'`)
    expect(versions.map((v) => v.version).sort()).toEqual(["1", "2", "3", "4"])
    for (const v of versions) expect(modelIds.has(v.source.replace(/^models:\//, ""))).toBe(true)
    const bySource = new Map<string, number>()
    for (const v of versions) bySource.set(v.source, (bySource.get(v.source) ?? 0) + 1)
    expect([...bySource.values()]).toEqual([2, 2])
  })

  it("rejects --register of an output that is not a checkpoint, or of a step that does not exist, before running", () => {
    const notCheckpoint = vw2("run", fixture, "--executor", "inline", "--register", "x=fit.notes")
    expect(notCheckpoint.status).toBe(2)
    expect(notCheckpoint.stderr).toMatch(/fit has no checkpoint output notes \(its checkpoints: checkpoint\)/)
    const noStep = vw2("run", fixture, "--executor", "inline", "--register", "x=nosuch.checkpoint")
    expect(noStep.status).toBe(2)
    expect(noStep.stderr).toMatch(/no step nosuch \(steps: fit, check\)/)
  })
})

const download = async (artifactUri: string, artifactPath: string): Promise<string> => {
  const file = path.join(home, `dl-${Date.now()}-${path.basename(artifactPath)}`)
  await client.downloadArtifact(artifactUri, artifactPath, file)
  return fs.readFileSync(file, "utf8")
}
