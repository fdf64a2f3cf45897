/**
 * MLflow is an observer of the run-event stream (core's RunTree.ts): the run tree a live run records on a real
 * MLflow server is rebuilt exactly from the run's events alone, recorded as JSON lines and replayed into a fresh
 * run tree on another tracker. Two runs: the first with a failing stage (error tag, stage.log, a skipped
 * dependent) and a step shared by two seeds, the second reusing the first's outputs (cache-hit runs carrying
 * the producer's metrics).
 */
import { ArtifactStore, defineExperiment, Executor, InlineExecutor, makeRunTree, parseOverride, planExperiment, replayInto, RunEvent, runPlan, Tracker } from "@vw2/core"
import type { Override, RunObserver } from "@vw2/core"
import type { Run } from "@vw2/tracking"
import { Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { baseConfig, pipeline } from "../../core/test/fixtures/experiment.ts"
import { freeTestPort, killServer, startServer, type TestServer } from "../../tracking/test/support/mlflowServer.ts"
import { openTracker, testClient } from "../../tracking/test/support/promised.ts"

const fixture = fileURLToPath(new URL("../../core/test/fixtures/experiment.ts", import.meta.url))
const home = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-runtree-"))
let server: TestServer | undefined
let serverDir = ""

beforeAll(async () => {
  serverDir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-runtree-mlflow-"))
  server = await startServer(serverDir, await freeTestPort())
})

afterAll(async () => {
  if (serverDir !== "") {
    await killServer(serverDir)
    fs.rmSync(serverDir, { recursive: true, force: true })
  }
  fs.rmSync(home, { recursive: true, force: true })
})

const encode = Schema.encodeSync(RunEvent)
const decode = Schema.decodeUnknownSync(RunEvent)

/** Runs the plan live against the server; returns its experiment run's MLflow id and its events as JSON lines. */
const liveRun = async (experiment: Parameters<typeof planExperiment>[0], overrides: ReadonlyArray<Override>) => {
  const tracker = await openTracker({ trackingUri: server!.url, home: path.join(home, "live"), probeMs: { min: 200, max: 1000 } })
  const lines: Array<string> = []
  const recorder: RunObserver = { onEvent: (event) => Effect.sync(() => void lines.push(JSON.stringify(encode(event)))) }
  try {
    const summary = await Effect.runPromise(
      runPlan({ plan: planExperiment(experiment, overrides), experimentFile: fixture, observers: [recorder], systemMetricsMs: 100 }).pipe(
        Effect.provide(Layer.mergeAll(ArtifactStore.layer(path.join(home, "store")), Layer.succeed(Executor, InlineExecutor.makeInlineExecutor()), Layer.succeed(Tracker.Tracker, tracker.shape)))
      )
    )
    await tracker.flush()
    expect(tracker.degraded()).toBe(false)
    return { runId: tracker.resolveRunId(summary.experimentRunId)!, lines, summary }
  } finally {
    await tracker.close()
  }
}

/** Feeds recorded lines to a fresh run tree on a fresh tracker; returns the experiment run's MLflow id. */
const replay = async (lines: ReadonlyArray<string>) => {
  const tracker = await openTracker({ trackingUri: server!.url, home: path.join(home, "replay"), probeMs: { min: 200, max: 1000 } })
  try {
    const tree = makeRunTree(tracker.shape)
    await Effect.runPromise(replayInto(tree, lines.map((line) => decode(JSON.parse(line)))))
    await tracker.flush()
    expect(tracker.degraded()).toBe(false)
    return tracker.resolveRunId((await Effect.runPromise(tree.experimentRun))!)!
  } finally {
    await tracker.close()
  }
}

interface Node {
  readonly name: string
  readonly status: string
  readonly params: Readonly<Record<string, string>>
  readonly tags: Readonly<Record<string, string>>
  readonly metrics: Readonly<Record<string, readonly [number, number]>>
  readonly artifacts: ReadonlyArray<string>
  readonly children: ReadonlyArray<Node>
}

/** tags that name this process or this tracker's bookkeeping rather than the run */
const volatileTag = (key: string) => key.startsWith("mlflow.") || key === "vw2.create_token" || key === "vw2.driver"

/** The run tree under `rootId` as plain data; run ids inside it are replaced by `<run name>`, so two trees compare. */
const readTree = async (rootId: string): Promise<Node> => {
  const client = testClient({ trackingUri: server!.url, auth: undefined })
  try {
    const runs: Array<Run> = []
    const collect = async (run: Run) => {
      runs.push(run)
      const kids = await client.searchRuns({ experimentIds: [run.info.experimentId], filter: `tags.\`mlflow.parentRunId\` = '${run.info.runId}'` })
      for (const kid of kids) await collect(kid)
    }
    await collect(await client.getRun(rootId))
    const names = new Map(runs.map((r) => [r.info.runId, `<${r.info.runName}>`]))
    const unId = (value: string) => [...names].reduce((v, [id, name]) => v.split(id).join(name), value)
    const nodes = new Map<string, Node>()
    for (const run of runs.slice().reverse()) {
      const artifacts = (await client.listArtifacts(run.info.artifactUri)).map((a) => a.path).sort()
      const children = runs.filter((r) => r.tags["mlflow.parentRunId"] === run.info.runId).map((r) => nodes.get(r.info.runId)!).sort((a, b) => a.name.localeCompare(b.name))
      nodes.set(run.info.runId, {
        name: run.info.runName,
        status: run.info.status,
        params: run.params,
        tags: Object.fromEntries(Object.entries(run.tags).filter(([key]) => !volatileTag(key)).map(([key, value]) => [key, unId(value)])),
        metrics: Object.fromEntries(Object.entries(run.metrics).map(([key, m]) => [key, [m.value, m.step] as const])),
        artifacts,
        children
      })
    }
    return nodes.get(rootId)!
  } finally {
    await client.close()
  }
}

const stages = (tree: Node): Array<Node> => tree.children.flatMap((trial) => trial.children)

describe("the MLflow run tree as an observer", () => {
  it("is rebuilt from a run's recorded events alone: the same tree as the live run records", async () => {
    const experiment = defineExperiment({ name: `runtree-${Date.now()}`, pipeline, config: baseConfig, seeds: [0, 1] })
    const first = await liveRun(experiment, [parseOverride("b.fail=true")])
    const second = await liveRun(experiment, [])
    expect(first.summary.status).toBe("failed")
    expect(second.summary.results.filter((r) => r.step === "source" || r.step === "a").every((r) => r.status === "cached")).toBe(true)
    const kinds = new Set(first.lines.concat(second.lines).map((l) => (JSON.parse(l) as { type: string }).type))
    for (const kind of ["run-started", "trial-started", "status", "metrics", "published", "system-metrics", "rollup", "run-ended", "cache-hit"]) expect(kinds).toContain(kind)

    for (const live of [first, second]) {
      const liveTree = await readTree(live.runId)
      const replayed = await readTree(await replay(live.lines))
      expect(replayed).toEqual(liveTree)
    }

    // and the tree is the one a researcher expects (so equal trees are not equally empty)
    const tree1 = await readTree(first.runId)
    expect(tree1.status).toBe("FAILED")
    expect(tree1.children.map((t) => t.name)).toEqual(["seed=0", "seed=1"])
    const byName1 = new Map(stages(tree1).map((s) => [s.name, s]))
    expect(byName1.get("b · seed=0")!.tags["vw2.error"]).toContain("branchB failed on purpose")
    expect(byName1.get("b · seed=0")!.artifacts).toContain("stage.log")
    expect(byName1.get("join · seed=1")!.status).toBe("KILLED")
    expect(Object.keys(byName1.get("a · seed=0")!.metrics)).toContain("sum")
    expect(Object.keys(byName1.get("a · seed=0")!.metrics).some((k) => k.startsWith("system/"))).toBe(true)
    // source is shared by both seeds: the second seed's run links to the first's
    expect(byName1.get("source · seed=1")!.tags["vw2.cache"]).toBe("hit:<source · seed=0>")
    const tree2 = await readTree(second.runId)
    const a2 = stages(tree2).find((s) => s.name === "a · seed=0")!
    expect(a2.tags["vw2.cache"]).toMatch(/^hit:[0-9a-f]{32}$/)
    expect(a2.tags["vw2.metrics_copied_from"]).toBe(a2.tags["vw2.cache"]!.slice(4))
    expect(a2.metrics.sum).toEqual(byName1.get("a · seed=0")!.metrics.sum)
  })
})
