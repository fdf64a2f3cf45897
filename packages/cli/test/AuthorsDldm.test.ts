/**
 * experiments/paper/authors-dldm.ts: the authors' released dLDM scripts as process stages. Nothing of theirs is on
 * this machine (no checkout, no Cosmos weights, no GPU), so what is tested is what must hold without them: the plan
 * validates, a run stops before any compute naming each missing path, and the typed overrides reach their
 * command line as their Hydra keys.
 */
import { preflightPlan, planExperiment, parseOverride } from "@vw2/core"
import type { InputArtifact } from "@vw2/core"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import experiment, { checkAuthorsSetup, warmupStage, dldmStage } from "../../../experiments/paper/authors-dldm.ts"
import { sandbox, vw2 } from "./cliHarness.ts"

const file = fileURLToPath(new URL("../../../experiments/paper/authors-dldm.ts", import.meta.url))
const steps = ["authors", "warmup", "warmupLdm", "ctrl", "dldm", "dldmLdm", "codes"]

/** A directory laid out like their checkout, holding empty files where their code would be (presence is all the check reads). */
const fakeLayout = (root: string, files: ReadonlyArray<string>) => {
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true })
    fs.writeFileSync(path.join(root, f), "")
  }
}

describe("the authors' dLDM pipeline", () => {
  it("plans here: seven process stages, the GPU ones asking for their scripts' 8 GPUs", () => {
    const r = vw2(sandbox("authors-plan"), ["plan", file, "--json"])
    expect(r.status).toBe(0)
    const doc = JSON.parse(r.stdout) as { invocations: Array<{ step: string; resources: { gpus: number }; status: string }> }
    expect(doc.invocations.map((i) => i.step)).toEqual(steps)
    expect(Object.fromEntries(doc.invocations.map((i) => [i.step, i.resources.gpus]))).toEqual({ authors: 0, warmup: 8, warmupLdm: 0, ctrl: 0, dldm: 8, dldmLdm: 0, codes: 8 })
    expect(doc.invocations.every((i) => i.status === "to-run")).toBe(true)
  }, 60_000)

  it("a run stops before any compute, naming the missing checkout; no stage of theirs starts, nothing is published", () => {
    const box = sandbox("authors-run")
    const checkout = path.join(box.home, "no-such-VideoWorld")
    const r = vw2(box, ["run", file, "--gpus", "0,1,2,3,4,5,6,7", "--set", `authors.checkout=${JSON.stringify(checkout)}`])
    const out = r.stdout + r.stderr
    expect(r.status).not.toBe(0)
    expect(out).toContain(`missing ${checkout} (authors.checkout: git clone https://github.com/ByteDance-Seed/VideoWorld`)
    // the `authors` check is the most that runs (its preflight, before it spawns anything): no stage of theirs starts
    for (const step of steps.slice(1)) expect(out).not.toMatch(new RegExp(`▶ ${step} `))
    const store = path.join(box.home, "store")
    expect(fs.existsSync(store) ? fs.readdirSync(store) : []).toEqual([])
  }, 60_000)

  it("names each missing weight and data path when the code is there, and checks the checkout's commit", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-authors-"))
    try {
      fakeLayout(path.join(root, "VideoWorld2"), ["scripts/train.py", "scripts/extract_ldm_pth.py", "scripts/add_ctrl_branch.py", "checkpoints/Cosmos-Predict2-2B-Video2World/tokenizer/tokenizer.pth"])
      const problems = checkAuthorsSetup({ checkout: root, weights: "", datasets: "", python: "python3", revision: "" })!.split("\n")
      expect(problems).toEqual([
        `missing ${root}/VideoWorld2/checkpoints/Cosmos-Predict2-2B-Video2World/model-480p-16fps.pt (the Cosmos-Predict2-2B-Video2World weights (huggingface.co/nvidia/Cosmos-Predict2-2B-Video2World; set authors.weights))`,
        `missing ${root}/VideoWorld2/checkpoints/VideoWorld2_dLDM_2B/tokenizer/ldm_tokenizer_training_init_weights.pt (the dLDM warm-up initialisation (huggingface.co/maverickrzw/VideoWorld2_dLDM_2B))`,
        `missing ${root}/VideoWorld2/datasets (Video-CraftBench clips (huggingface.co/maverickrzw/Video-CraftBench_v0.1; set authors.datasets))`
      ])
      // the default revision pins the release commit: a copy that is not that checkout is refused by name
      const pinned = checkAuthorsSetup({ checkout: root, weights: "", datasets: "", python: "python3", revision: "37d32e920de57d6d4e543f62b744599d5610777b" })!
      expect(pinned).toContain(`${root}/VideoWorld2 is at (not a git checkout), not authors.revision=37d32e92`)
      // preflightPlan (what `vw2 run` can call before anything starts) reports the same for the whole plan
      const plan = planExperiment(experiment, [parseOverride(`authors.checkout=${JSON.stringify(root)}`), parseOverride(`authors.revision=""`)])
      expect(preflightPlan(experiment, plan)).toEqual([{ step: "authors", problem: problems.join("\n") }])
    } finally {
      fs.rmSync(root, { recursive: true, force: true })
    }
  })

  it("typed overrides become their Hydra keys on their torchrun command line", () => {
    const envDir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-authors-env-"))
    try {
      const located = { checkout: "/co", code: "/co/VideoWorld2", weights: "/w", datasets: "/d", python: "/conda/bin/python" }
      fs.writeFileSync(path.join(envDir, "environment.json"), JSON.stringify(located))
      const authors: InputArtifact = { dir: envDir, kind: "videoworld2-authors-env", hash: "h" }
      const plan = planExperiment(experiment, ["warmup.maxIter=200", "warmup.lr=0.001", "warmup.gpus=2", 'warmup.hydra={"model.config.ldm_config.network.levels":"[8,5,5,5]"}', "dldm.controlWeight=0.25"].map(parseOverride))
      const config = (step: string) => plan.invocations.find((i) => i.step === step)!.config
      const ctx = (c: unknown, inputs: Record<string, InputArtifact>) => ({ config: c, gpus: 2, cpus: 2, seed: 0, inputs, outputs: {}, scratchDir: "/s", resumeDir: "/r", pauseAtStep: undefined, specFile: "/s/spec.json", log: () => {} }) as never
      // the plan holds each slice resolved (defaults filled in); for these plain-number schemas that is the decoded value
      const warmupArgv = warmupStage.process.command(ctx(config("warmup"), { authors }))
      expect(warmupArgv).toEqual([
        "/conda/bin/python", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        "-m", "scripts.train", "--config=videoworld2/configs/base/config.py", "--", "experiment=videoworld2_dldm_openx_and_videocraft_wodit_warmup",
        "trainer.max_iter=200", "checkpoint.save_iter=5000", "optimizer.lr=0.001", "scheduler.warm_up_steps=[2000]",
        "dataloader_train.batch_size=1", "dataloader_train.num_workers=8", "model.config.ldm_config.network.levels=[8,5,5,5]"
      ])
      const ldm: InputArtifact = { dir: "/store/ldm", kind: "videoworld2-authors-ldm", hash: "l" }
      const dit: InputArtifact = { dir: "/store/dit", kind: "videoworld2-authors-ctrl-dit", hash: "d" }
      const dldmArgv = dldmStage.process.command(ctx(config("dldm"), { authors, ldm, dit }))
      expect(dldmArgv).toContain("experiment=videoworld2_dldm_openx_and_videocraft")
      expect(dldmArgv).toContain("trainer.max_iter=30000") // the released dLDM length, not the warm-up's
      expect(dldmArgv).toContain("model.config.pipe_config.net_ctrl.control_weight=0.25")
      expect(dldmArgv).toContain("model.config.model_manager_config.dit_path=/store/dit/model-480p-16fps-ctrl.pt")
      expect(dldmArgv).toContain("model.config.ldm_config.ldm_path=/store/ldm/ldm.pt")
    } finally {
      fs.rmSync(envDir, { recursive: true, force: true })
    }
  })
})
