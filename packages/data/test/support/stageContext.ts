/** A real StageContext over real directories, recording what the stage reports (shared by the stage tests). */
import type { StageContext } from "@vw2/core"
import * as fs from "node:fs"
import * as path from "node:path"

export const contextIn = (root: string, step = "data") => {
  const uploads: string[] = []
  const metrics: Record<string, number>[] = []
  const progress: number[] = []
  const ctx: StageContext = {
    invocationHash: "test",
    step,
    seed: 0,
    outputDir: (name) => {
      const dir = path.join(root, name)
      fs.mkdirSync(dir, { recursive: true })
      return dir
    },
    scratchDir: path.join(root, "scratch"),
    resumeDir: path.join(root, "resume"),
    checkpointed: () => undefined,
    devices: { gpus: [], cpus: 1 },
    progress: (done) => void progress.push(done),
    metrics: (values) => void metrics.push({ ...values }),
    log: () => undefined,
    upload: (p) => void uploads.push(p),
    signal: new AbortController().signal
  }
  return { ctx, uploads, metrics, progress }
}
