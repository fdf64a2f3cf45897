/**
 * The GPU build choice of `npm run setup` (infra/setup.d/40-native-tfjs.sh) and the run tags it leads to
 * (TfBackend.ts). There is no GPU here: the driver is a fake `nvidia-smi` that answers as a real one does, and the
 * script runs in --dry-run mode, which decides and prints but installs nothing (docs/gpu.md).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { nativeBuildTags, readNativeBuild } from "../src/TfBackend.ts"

const script = fileURLToPath(new URL("../../../infra/setup.d/40-native-tfjs.sh", import.meta.url))
const work = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-gpu-build-"))
afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

/** A fake nvidia-smi printing `stdout` for the query setup makes and exiting with `status`. */
const fakeSmi = (name: string, stdout: string, status = 0) => {
  const file = path.join(work, name)
  fs.writeFileSync(file, `#!/bin/sh\n[ "$1" = "--query-gpu=name,driver_version" ] || exit 64\ncat <<'EOF'\n${stdout}\nEOF\nexit ${status}\n`, { mode: 0o755 })
  return file
}

/** Runs a copy of the setup step in an empty tree, so that any file it wrote would show. */
const dryRun = (env: Record<string, string>) => {
  const root = fs.mkdtempSync(path.join(work, "root-"))
  fs.mkdirSync(path.join(root, "infra", "setup.d"), { recursive: true })
  fs.copyFileSync(script, path.join(root, "infra", "setup.d", "40-native-tfjs.sh"))
  const { VW2_NATIVE_TF_WHEEL: _forced, ...inherited } = process.env
  const r = spawnSync("bash", [path.join(root, "infra", "setup.d", "40-native-tfjs.sh"), "--dry-run"], { env: { ...inherited, ...env }, encoding: "utf8" })
  const written = fs.readdirSync(root, { recursive: true }).map(String).filter((f) => !f.startsWith("infra"))
  return { status: r.status, out: r.stdout + r.stderr, written }
}

describe("npm run setup: the native tfjs build", () => {
  it("picks the CUDA wheel when nvidia-smi reports a CUDA 12 driver, installing nothing in a dry run", () => {
    const smi = fakeSmi("h100", "NVIDIA H100 80GB HBM3, 550.54.15\nNVIDIA H100 80GB HBM3, 550.54.15")
    const r = dryRun({ VW2_NVIDIA_SMI: smi })
    expect(r.status).toBe(0)
    expect(r.out).toContain("native tfjs: cuda build, tensorflow==2.21.0 (nvidia-smi: 2 GPU(s), NVIDIA H100 80GB HBM3, driver 550.54.15)")
    expect(r.out).toContain("CUDA runtime wheels")
    expect(r.out).toContain("dry run, nothing installed")
    expect(r.written).toEqual([])
  })

  it("keeps the CPU wheel without a usable driver: none, one that fails, one too old for CUDA 12", () => {
    const none = dryRun({ VW2_NVIDIA_SMI: path.join(work, "no-such-nvidia-smi") })
    expect(none.out).toContain(`native tfjs: cpu build, tensorflow-cpu==2.21.0 (no NVIDIA driver: ${path.join(work, "no-such-nvidia-smi")} not found)`)
    const failing = dryRun({ VW2_NVIDIA_SMI: fakeSmi("broken", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", 9) })
    expect(failing.out).toContain("cpu build, tensorflow-cpu==2.21.0 (no NVIDIA driver:")
    expect(failing.out).toContain("couldn't communicate with the NVIDIA driver")
    const old = dryRun({ VW2_NVIDIA_SMI: fakeSmi("v100", "Tesla V100-SXM2-16GB, 470.82.01") })
    expect(old.out).toContain("cpu build, tensorflow-cpu==2.21.0 (NVIDIA driver 470.82.01 is older than 525 (CUDA 12): CPU wheel)")
    for (const r of [none, failing, old]) {
      expect(r.status).toBe(0)
      expect(r.out).not.toContain("CUDA runtime wheels")
      expect(r.written).toEqual([])
    }
  })

  it("VW2_NATIVE_TF_WHEEL overrides what the driver says", () => {
    const smi = fakeSmi("h100b", "NVIDIA H100 80GB HBM3, 550.54.15")
    expect(dryRun({ VW2_NVIDIA_SMI: smi, VW2_NATIVE_TF_WHEEL: "tensorflow-cpu" }).out).toContain("cpu build, tensorflow-cpu==2.21.0 (VW2_NATIVE_TF_WHEEL=tensorflow-cpu)")
    expect(dryRun({ VW2_NATIVE_TF_WHEEL: "tensorflow" }).out).toContain("cuda build, tensorflow==2.21.0 (VW2_NATIVE_TF_WHEEL=tensorflow)")
  })

  it("the build record becomes run tags; a missing or foreign record says unknown", () => {
    const file = path.join(work, "build.json")
    fs.writeFileSync(file, JSON.stringify({ format: 1, build: "cuda", wheel: "tensorflow", version: "2.21.0", why: "nvidia-smi: 1 GPU(s), NVIDIA H100, driver 550.54.15", cudaWheels: ["nvidia-cudnn-cu12==9.3.0.75"] }))
    expect(nativeBuildTags(readNativeBuild(file))).toEqual({
      "vw2.tf_backend.build": "cuda (tensorflow==2.21.0)",
      "vw2.tf_backend.build_why": "nvidia-smi: 1 GPU(s), NVIDIA H100, driver 550.54.15"
    })
    expect(nativeBuildTags(readNativeBuild(path.join(work, "absent.json")))).toEqual({ "vw2.tf_backend.build": `unknown: no ${path.join(work, "absent.json")} (run npm run setup)` })
    fs.writeFileSync(file, JSON.stringify({ build: "tpu" }))
    expect(readNativeBuild(file)).toBe(`unknown: ${file} is not a build record`)
  })
})
