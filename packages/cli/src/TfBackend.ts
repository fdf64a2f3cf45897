/**
 * Which tfjs backend this machine's stages will pick (`selectBackend()` of @vw2/nn: native tensorflow >
 * wasm > pure-JS cpu, or VW2_TF_BACKEND), for the `vw2 plan` header and the experiment run's tracker tags.
 * Workers select their own backend with the same function and environment, so the driver's answer is what
 * local workers get; stage runs also record the backend they actually used.
 */
import { describeBackend, selectBackend } from "@vw2/nn"

export interface TfBackendReport {
  /** one line, e.g. `tensorflow (native, libtensorflow 2.21.0)` */
  readonly line: string
  readonly tags: Readonly<Record<string, string>>
}

export const probeTfBackend = async (): Promise<TfBackendReport> => {
  try {
    const choice = await selectBackend()
    const line = describeBackend(choice)
    const details = Object.fromEntries(Object.entries(choice.details).map(([k, v]) => [`vw2.tf_backend.${k}`, v]))
    return { line, tags: { "vw2.tf_backend": line, ...details } }
  } catch (error) {
    // A forced, unavailable backend (VW2_TF_BACKEND=…) fails in every stage too; say so up front.
    const line = `unavailable: ${error instanceof Error ? error.message : String(error)}`
    return { line, tags: { "vw2.tf_backend": line } }
  }
}
