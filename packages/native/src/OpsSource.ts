/**
 * Where our C++ TensorFlow ops live and a fingerprint of their sources.
 *
 * infra/setup.d/41-native-ops.sh compiles packages/native/ops into packages/native/.ops-build/vw2_ops.node and
 * bakes this fingerprint into it; the loader compares it with the sources on disk, so an edited .cc without
 * a rebuild is reported as stale instead of silently running the old kernels. No tfjs import here: the
 * setup script runs this file with plain node (`node packages/native/src/OpsSource.ts` prints the hash).
 */
import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

export const opsSourceDir = fileURLToPath(new URL("../ops", import.meta.url))
export const opsBuildDir = fileURLToPath(new URL("../.ops-build", import.meta.url))
export const opsLibraryPath = join(opsBuildDir, "vw2_ops.node")

/** The C++ sources and headers the library is built from (paths relative to ops/, subfolders included), sorted. */
export const opsSourceFiles = (): Array<string> =>
  readdirSync(opsSourceDir, { recursive: true, encoding: "utf8" }).filter((f) => /\.(cc|h)$/.test(f)).sort()

/** sha256 over every source file's name and bytes (first 16 hex digits). */
export const opsSourceHash = (): string => {
  const hash = createHash("sha256")
  for (const file of opsSourceFiles()) {
    hash.update(file).update("\0").update(readFileSync(join(opsSourceDir, file))).update("\0")
  }
  return hash.digest("hex").slice(0, 16)
}

if (import.meta.main) process.stdout.write(`${opsSourceHash()}\n`)
