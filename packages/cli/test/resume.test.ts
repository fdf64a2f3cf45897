/**
 * Mid-stage checkpoints and early stopping through the real `vw2` binary (docs/engine.md, "Mid-stage
 * checkpoints", "Early stopping"): plan and status show "resumable at step k/K", gc removes what nothing
 * resumes from, and a sweep with `sweep.scheduler` runs rung by rung and replays its decisions.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { sandbox, vw2 } from "./cliHarness.ts"

const checkpointing = fileURLToPath(new URL("../../core/test/fixtures/checkpointing.ts", import.meta.url))
const sweep = fileURLToPath(new URL("../../core/test/fixtures/checkpointingSweep.ts", import.meta.url))

describe("vw2 plan / status / gc with mid-stage checkpoints", () => {
  it("a crashed invocation is resumable at its last checkpoint; gc keeps it while recent and removes published leftovers", () => {
    const box = sandbox("resume")
    const crash = ["--set", "train.crashAtStep=8", "--set", "train.sleepMs=10"]
    const failed = vw2(box, ["run", checkpointing, ...crash, "--cpus", "1"])
    expect(failed.status).toBe(1)
    expect(failed.stdout + failed.stderr).toMatch(/worker killed by SIGKILL/)

    // checkpoints every 3 steps, a crash at step 8: the last one is at 6 (its note at 6, or 3 if the kill beat the event)
    const [resumeDir] = fs.readdirSync(path.join(box.home, "resume"))
    const at = (JSON.parse(fs.readFileSync(path.join(box.home, "resume", resumeDir!, ".vw2-progress.json"), "utf8")) as { at: number }).at
    expect([3, 6]).toContain(at)
    const plan = vw2(box, ["plan", checkpointing, ...crash])
    expect(plan.stdout).toContain(`resume ${at}/30`)
    expect(plan.stdout).toMatch(/\(1 resumable from a checkpoint\)/)
    const doc = JSON.parse(vw2(box, ["plan", checkpointing, ...crash, "--json"]).stdout) as { invocations: Array<{ step: string; hash: string; resumable?: unknown }> }
    const train = doc.invocations.find((i) => i.step === "train")!
    expect(train.hash).toBe(resumeDir)
    expect(train.resumable).toEqual({ step: at, total: 30 })
    expect(vw2(box, ["status"]).stdout).toMatch(new RegExp(`train \\(train\\)\\s+resumable at step ${at}/30`))

    // a leftover of a published invocation (a crash between publish and the drop)
    const published = fs.readdirSync(path.join(box.home, "store"))[0]!
    fs.mkdirSync(path.join(box.home, "resume", published, "step-3"), { recursive: true })
    const gc = vw2(box, ["gc"])
    expect(gc.status).toBe(0)
    expect(gc.stdout).toMatch(new RegExp(`removed +${published.slice(0, 12)} .*published`))
    expect(gc.stdout).toMatch(new RegExp(`kept +\\w{12} +train \\(train\\) at step ${at}/30.*recent`))
    expect(fs.existsSync(path.join(box.home, "resume", published))).toBe(false)

    const dry = vw2(box, ["gc", "--older-than", "0s", "--dry-run"])
    expect(dry.stdout).toMatch(/would rm +\w{12} +train/)
    expect(fs.readdirSync(path.join(box.home, "resume"))).toHaveLength(1)
    expect(vw2(box, ["gc", "--older-than", "0s"]).stdout).toMatch(/removed 1 of 1 resume directory/)
    expect(fs.readdirSync(path.join(box.home, "resume"))).toHaveLength(0)
    expect(vw2(box, ["gc", "--older-than", "soon"]).status).toBe(2)
  })

  it("vw2 run of a sweep with sweep.scheduler: rungs, stopped trials, and a rerun that replays without training", () => {
    const box = sandbox("asha")
    const plan = vw2(box, ["plan", sweep])
    expect(plan.stdout).toMatch(/early stopping: asha on train\/loss \(min\), η = 2/)
    expect(plan.stdout).toMatch(/rung 0 @ step 4: 4 trial\(s\) → keep 2/)
    expect(plan.stdout).toMatch(/rung 1 @ step 8: 2 trial\(s\) → keep 1/)

    const first = vw2(box, ["run", sweep, "--cpus", "2"])
    expect(first.status).toBe(0)
    const lines = () => fs.readFileSync(box.log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { step: string; from?: number })
    const ran = lines()
    expect(ran.filter((l) => l.step === "base")).toHaveLength(1)
    expect(ran.filter((l) => l.step === "train")).toHaveLength(4 + 2 + 1)

    // |lr − 0.3|: 0.29 best, then 0.2, then 0.5 and 0.05
    const decided = vw2(box, ["plan", sweep]).stdout
    expect(decided).toMatch(/rung 0 @ step 4: .*decided: promoted p1-s0, p2-s0; stopped p3-s0, p0-s0/)
    expect(decided).toMatch(/rung 1 @ step 8: .*decided: promoted p1-s0; stopped p2-s0/)

    const again = vw2(box, ["run", sweep, "--cpus", "2"])
    expect(again.status).toBe(0)
    expect(lines()).toHaveLength(ran.length)
  })
})
