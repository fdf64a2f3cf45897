/**
 * The facts a run records about where it ran, against real git repositories in temp directories (the
 * MLflow side, read back through REST, is in packages/tracking/test/Records.test.ts).
 */
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { collectRunContext, formatGpuList, gitState } from "../src/RunContext.ts"

const dirs: Array<string> = []
const tempDir = (name: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vw2-context-${name}-`))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
})

const git = (cwd: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", ...args], { cwd, encoding: "utf8" }).trim()

/** a repository with one committed experiment file */
const repository = () => {
  const repo = tempDir("repo")
  git(repo, "init", "-q")
  fs.mkdirSync(path.join(repo, "experiments"))
  fs.writeFileSync(path.join(repo, "experiments", "exp.ts"), "export default 1\n")
  git(repo, "add", ".")
  git(repo, "commit", "-q", "-m", "first")
  return repo
}

describe("git state", () => {
  it("a clean tree: the commit, not dirty, no diff", async () => {
    const repo = repository()
    const state = await Effect.runPromise(gitState(path.join(repo, "experiments")))
    expect(state.tags).toEqual({ "vw2.git.commit": git(repo, "rev-parse", "HEAD"), "vw2.git.dirty": "false" })
    expect(state.diff).toBeUndefined()
  })

  it("a changed tracked file makes it dirty and its change is in the diff; an untracked file alone does not", async () => {
    const repo = repository()
    fs.writeFileSync(path.join(repo, "notes.txt"), "untracked\n")
    expect((await Effect.runPromise(gitState(repo))).tags["vw2.git.dirty"]).toBe("false")
    fs.writeFileSync(path.join(repo, "experiments", "exp.ts"), "export default 2\n")
    const state = await Effect.runPromise(gitState(repo))
    expect(state.tags["vw2.git.dirty"]).toBe("true")
    expect(state.diff).toContain("-export default 1\n+export default 2\n")
    expect(state.diff).toContain("diff --git a/experiments/exp.ts b/experiments/exp.ts")
  })

  it("outside a repository the tags say so and nothing fails", async () => {
    const state = await Effect.runPromise(gitState(tempDir("plain")))
    expect(state.tags["vw2.git.commit"]).toMatch(/^none \(.+\)$/)
    expect(state.tags["vw2.git.dirty"]).toBe("unknown")
    expect(state.diff).toBeUndefined()
  })
})

describe("GPU models", () => {
  it("one entry per device with its memory, from nvidia-smi's CSV; none when it lists no device", () => {
    const csv = "NVIDIA H100 80GB HBM3, 81559 MiB\nNVIDIA H100 80GB HBM3, 81559 MiB\n"
    expect(formatGpuList(csv)).toBe("NVIDIA H100 80GB HBM3 (81559 MiB); NVIDIA H100 80GB HBM3 (81559 MiB)")
    expect(formatGpuList("NVIDIA GeForce RTX 4090, 24564 MiB")).toBe("NVIDIA GeForce RTX 4090 (24564 MiB)")
    expect(formatGpuList("\n")).toBe("none")
  })
})

describe("collectRunContext", () => {
  it("writes the resolved config (secrets masked), the experiment file and the diff, with host tags", async () => {
    const repo = repository()
    const file = path.join(repo, "experiments", "exp.ts")
    fs.writeFileSync(file, "export default 3\n")
    const recordDir = path.join(tempDir("record"), "run-1")
    const config = { train: { lr: 0.001, steps: 20 }, upload: { apiToken: "tok-123456", url: "postgres://me:hunter22@db/x" } }
    const context = await Effect.runPromise(collectRunContext({ experimentFile: file, config, recordDir }))
    expect(context.artifacts.map((a) => a.artifactPath)).toEqual(["config.json", "experiment/exp.ts", "git.diff"])
    for (const a of context.artifacts) expect(path.dirname(a.localPath)).toBe(recordDir)
    const written = JSON.parse(fs.readFileSync(path.join(recordDir, "config.json"), "utf8")) as typeof config
    expect(written.train).toEqual(config.train)
    expect(written.upload).toEqual({ apiToken: "***", url: "postgres://me:***@db/x" })
    expect(fs.readFileSync(path.join(recordDir, "exp.ts"), "utf8")).toBe("export default 3\n")
    expect(fs.readFileSync(path.join(recordDir, "git.diff"), "utf8")).toContain("+export default 3")
    expect(context.tags).toMatchObject({
      "vw2.git.dirty": "true",
      "vw2.host.name": os.hostname(),
      "vw2.host.cores": String(os.cpus().length),
      "vw2.node": process.version
    })
    expect(context.tags["vw2.host.memory"]).toMatch(/^\d+\.\d GiB$/)
    expect(context.tags["vw2.host.gpus"]).toBeDefined()
  })
})
