/**
 * A process stage end to end with the real Python helper (python/vw2_stage) under torchrun: two ranks on gloo (CPU)
 * all-reduce, rank 0 reports through the helper (whose ranks reach the events pipe through the launcher, since
 * torchrun closes fds above 2) and writes the output; interruption ends the launcher and both ranks, which torchrun
 * starts in sessions of their own. Needs the repository's Python with torch (.venvs/bench, `npm run setup`).
 */
import { Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runStageDirect } from "../src/DirectRun.ts"
import { processInfo } from "../src/internal/processTree.ts"
import { defineProcessStage, repositoryRoot, torchrunArgv } from "../src/ProcessStage.ts"
import { tempDir } from "./helpers.ts"

const python = path.join(repositoryRoot, ".venvs", "bench", "bin", "python")
const helperSrc = path.join(repositoryRoot, "python", "vw2_stage", "src")

const dir = tempDir("process-torch")
fs.writeFileSync(path.join(dir, "allreduce.py"), `
import json, os, time
import torch
import torch.distributed as dist
import vw2_stage as stage

spec = stage.load()
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
with open(os.path.join(spec.config["pidDir"], f"rank{rank}"), "w") as f:
    f.write(str(os.getpid()))
total = torch.tensor([float(rank + 1)])
dist.all_reduce(total)
stage.metrics({"ddp/sum": total.item(), "ddp/rank": rank}, step=0)
stage.log(f"rank {rank} of {world}")
if spec.config["hang"]:
    while True:
        time.sleep(1)
if spec.is_main:
    (spec.output("out") / "result.json").write_text(json.dumps({"sum": total.item(), "world": world}))
dist.barrier()
dist.destroy_process_group()
`)

const stage = defineProcessStage({
  name: "torch-allreduce",
  version: "1",
  config: Schema.Struct({ nproc: Schema.Int, hang: Schema.Boolean, pidDir: Schema.String }),
  inputs: {},
  outputs: { out: "allreduce" },
  sources: [path.join(dir, "allreduce.py")],
  cwd: dir,
  env: { PYTHONPATH: helperSrc, OMP_NUM_THREADS: "1" },
  command: (ctx) => torchrunArgv({ nproc: ctx.config.nproc, module: "allreduce", python, launcher: "torchrun" })
})

const running = (pid: number) => {
  const info = processInfo(pid)
  return info !== undefined && !info.zombie
}

describe("process stage with python/vw2_stage under torchrun", () => {
  it("two gloo ranks all-reduce; only rank 0's events arrive; rank 0 writes the output", async () => {
    const pidDir = tempDir("process-torch-pids")
    const run = await runStageDirect(stage, { nproc: 2, hang: false, pidDir }, {})
    expect(JSON.parse(fs.readFileSync(path.join(run.outputRoot, "out", "result.json"), "utf8"))).toEqual({ sum: 3, world: 2 })
    expect(run.metrics).toEqual([{ values: { "ddp/sum": 3, "ddp/rank": 0 }, step: 0 }])
    expect(run.logs).toContain("rank 0 of 2")
    expect(run.logs).not.toContain("rank 1 of 2")
    expect(fs.readdirSync(pidDir).sort()).toEqual(["rank0", "rank1"])
  }, 120_000)

  it("an abort ends the launcher and both ranks (in sessions of their own)", async () => {
    const pidDir = tempDir("process-torch-hang")
    const abort = new AbortController()
    const result = runStageDirect(stage, { nproc: 2, hang: true, pidDir }, {}, { signal: abort.signal }).then(() => "succeeded", (e: unknown) => String((e as Error).message))
    const deadline = Date.now() + 90_000
    while (fs.readdirSync(pidDir).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    const ranks = fs.readdirSync(pidDir).map((f) => Number(fs.readFileSync(path.join(pidDir, f), "utf8")))
    expect(ranks).toHaveLength(2)
    for (const pid of ranks) {
      expect(running(pid)).toBe(true)
      expect(processInfo(pid)!.pgrp).toBe(pid) // torchrun made each rank a session (and group) leader
    }
    abort.abort()
    expect(await result).toMatch(/^interrupted: /)
    for (const pid of ranks) expect(running(pid)).toBe(false)
  }, 120_000)
})
