/**
 * Which tfjs backend this machine's stages will pick (`selectBackend()` of @vw2/nn: native tensorflow >
 * wasm > pure-JS cpu, or VW2_TF_BACKEND), for the `vw2 plan` header and the experiment run's tracker tags,
 * and keeping TensorFlow's native load notices off the terminal unless `--verbose`.
 *
 * libtensorflow logs its oneDNN/CPU-feature notices through absl before `TF_CPP_MIN_LOG_LEVEL` applies, straight
 * to file descriptor 2, so they cannot be turned off from JavaScript once the library loads in this process.
 * The driver therefore probes in a child process whose stderr it filters, and workers' stderr lines (which the
 * local executor turns into stage log lines) are filtered with `isTensorflowNoise` before they reach the
 * terminal; the full text stays in the stage log files. Workers select their own backend with the same
 * function and environment, so the child's answer is what local workers get.
 *
 * The native backend's build (CUDA or CPU TensorFlow wheel, and why setup chose it) comes from the record
 * infra/setup.d/40-native-tfjs.sh leaves next to the binding; it becomes the `vw2.tf_backend.build` tags (docs/gpu.md).
 */
import { describeBackend, selectBackend } from "@vw2/nn"
import { Schema } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"

export interface TfBackendReport {
  /** one line, e.g. `tensorflow (native, libtensorflow 2.21.0)` */
  readonly line: string
  readonly tags: Readonly<Record<string, string>>
}

/**
 * Sets TensorFlow's log level for this process and every worker it starts (they inherit the environment):
 * warnings and errors only by default, everything with `--verbose`. A value the user exported wins.
 */
export const configureTensorflowLogs = (verbose: boolean): void => {
  process.env["TF_CPP_MIN_LOG_LEVEL"] ??= verbose ? "0" : "2"
}

const noise: ReadonlyArray<RegExp> = [
  // absl, before anything initialised it
  /^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR\s*$/,
  // absl/glog-format INFO lines: `I0000 00:00:1796608006.036488   26881 port.cc:153] oneDNN custom operations are on…`
  // (before absl knows the time zone, the seconds field is the raw epoch, as here)
  /^I\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] /,
  // TensorFlow's own logger (older libtensorflow): `2026-12-07 01:02:03.456789: I tensorflow/core/…cpu_feature_guard.cc:…]`
  /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: I (?:external\/\S+|tensorflow\/\S+)/,
  // the continuation line of the cpu_feature_guard notice
  /^To enable the following instructions: .* in other operations, rebuild TensorFlow with the appropriate compiler flags\.\s*$/
]

/** A TensorFlow INFO notice printed while the native library loads (its warnings and errors are never noise). */
export const isTensorflowNoise = (line: string): boolean => noise.some((pattern) => pattern.test(line))

/** What infra/setup.d/40-native-tfjs.sh built the binding against (its build.json). */
export const NativeBuild = Schema.Struct({
  format: Schema.Literal(1),
  /** "cuda": the `tensorflow` wheel with its CUDA runtime wheels; "cpu": `tensorflow-cpu` */
  build: Schema.Literals(["cuda", "cpu"]),
  wheel: Schema.String,
  version: Schema.String,
  /** why setup chose it: what nvidia-smi said, or VW2_NATIVE_TF_WHEEL */
  why: Schema.String,
  cudaWheels: Schema.Array(Schema.String)
})
export type NativeBuild = typeof NativeBuild.Type

/** Where setup leaves the record: next to the binding the native backend loads (packages/native/.tfjs-node). */
export const nativeBuildFile = fileURLToPath(new URL("../../native/.tfjs-node/build.json", import.meta.url))

/** The record, or why there is none (a binding built before setup wrote it, or a hand-installed tfjs-node). */
export const readNativeBuild = (file: string = nativeBuildFile): NativeBuild | string => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch {
    return `unknown: no ${file} (run npm run setup)`
  }
  const decoded = Schema.decodeUnknownOption(Schema.fromJsonString(NativeBuild))(text)
  return decoded._tag === "Some" ? decoded.value : `unknown: ${file} is not a build record`
}

/** Run tags for the native build: `vw2.tf_backend.build` = "cuda (tensorflow==2.21.0)", and why. */
export const nativeBuildTags = (build: NativeBuild | string): Record<string, string> =>
  typeof build === "string"
    ? { "vw2.tf_backend.build": build }
    : { "vw2.tf_backend.build": `${build.build} (${build.wheel}==${build.version})`, "vw2.tf_backend.build_why": build.why }

const probeInThisProcess = async (): Promise<TfBackendReport> => {
  try {
    const choice = await selectBackend()
    const details = Object.fromEntries(Object.entries(choice.details).map(([k, v]) => [`vw2.tf_backend.${k}`, v]))
    // the record describes our own build of the binding, not an npm @tensorflow/tfjs-node
    const build = choice.native && choice.details["source"]?.startsWith("built from the TensorFlow wheel") === true ? readNativeBuild() : undefined
    // the CPU line stays as it was; a CUDA build says so wherever the backend is shown
    const line = describeBackend(choice) + (typeof build === "object" && build.build === "cuda" ? ` · CUDA build (${build.wheel}==${build.version})` : "")
    return { line, tags: { "vw2.tf_backend": line, ...details, ...(build === undefined ? {} : nativeBuildTags(build)) } }
  } catch (error) {
    // A forced, unavailable backend (VW2_TF_BACKEND=…) fails in every stage too; say so up front.
    const line = `unavailable: ${error instanceof Error ? error.message : String(error)}`
    return { line, tags: { "vw2.tf_backend": line } }
  }
}

const resultMarker = "vw2-tf-backend "

/**
 * Probes in a child process (see the module comment); its stderr reaches ours filtered, or whole with
 * `verbose`. The driver itself never loads libtensorflow for this.
 */
export const probeTfBackend = (options: { readonly verbose?: boolean } = {}): Promise<TfBackendReport> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { env: process.env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += String(d)))
    child.stderr.on("data", (d) => (stderr += String(d)))
    const fail = (why: string) => resolve({ line: `unavailable: ${why}`, tags: { "vw2.tf_backend": `unavailable: ${why}` } })
    child.on("error", (error) => fail(`could not start the backend probe: ${error.message}`))
    child.on("close", (code, signal) => {
      const shown = stderr.split("\n").filter((line) => line.trim() !== "" && (options.verbose === true || !isTensorflowNoise(line)))
      if (shown.length > 0) process.stderr.write(shown.join("\n") + "\n")
      const result = stdout.split("\n").find((line) => line.startsWith(resultMarker))
      if (result === undefined) return fail(`the backend probe exited with ${signal ?? `status ${code}`}`)
      resolve(JSON.parse(result.slice(resultMarker.length)) as TfBackendReport)
    })
  })

// the child side of probeTfBackend
if (import.meta.main) {
  probeInThisProcess().then((report) => process.stdout.write(`${resultMarker}${JSON.stringify(report)}\n`))
}
