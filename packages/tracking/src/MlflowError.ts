/**
 * The errors of `@vw2/tracking`, one union. They are plain tagged data so a tracker can spool, log or
 * classify them (transient → retry/spool, permanent → drop with a warning) without string matching.
 */
import { Data } from "effect"

/** The server answered with an error status. `errorCode` is MLflow's `error_code` (e.g.
 * `RESOURCE_ALREADY_EXISTS`), or `HTTP_<status>` when the body was not MLflow JSON (proxy pages, crashes). */
export class MlflowApiError extends Data.TaggedError("MlflowApiError")<{
  readonly endpoint: string
  readonly status: number
  readonly errorCode: string
  readonly message: string
  /** the server's Retry-After, in ms, when it sent one (the retry schedule waits that long) */
  readonly retryAfterMs?: number | undefined
}> {}

/** No usable answer: connection refused/reset, DNS, timeout. `sent` is false when the request provably
 * never reached the server (connection refused), which makes even non-idempotent calls safe to retry. */
export class MlflowTransportError extends Data.TaggedError("MlflowTransportError")<{
  readonly endpoint: string
  readonly message: string
  readonly code: string | undefined
  readonly sent: boolean
}> {}

/** Rejected on our side before sending: a key MLflow would refuse, a path escaping the artifact root. */
export class MlflowValidationError extends Data.TaggedError("MlflowValidationError")<{
  readonly field: string
  readonly message: string
}> {}

export type MlflowError = MlflowApiError | MlflowTransportError | MlflowValidationError

/** HTTP statuses the Python client retries (mlflow.utils.rest_utils._TRANSIENT_FAILURE_RESPONSE_CODES). */
export const transientStatuses: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504])

/** True when trying again later may succeed (server down, overloaded, timing out). */
export const isTransient = (error: unknown): boolean =>
  error instanceof MlflowTransportError || (error instanceof MlflowApiError && transientStatuses.has(error.status))

export const isErrorCode = (error: unknown, code: string): boolean =>
  error instanceof MlflowApiError && error.errorCode === code
