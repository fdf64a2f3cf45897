/**
 * Retry timing as the Python client does it (urllib3 Retry configured by mlflow.utils.rest_utils):
 * exponential backoff `factor * 2^(n-1)` plus uniform jitter, capped, and the server's Retry-After
 * header honoured when present. Defaults and env vars are MLflow's own. `retrySchedule` is that policy
 * as an Effect Schedule over the failed attempts' errors.
 */
import { Duration, Effect, Schedule } from "effect"
import type { MlflowError } from "../MlflowError.ts"

export interface RetryPolicy {
  /** MLFLOW_HTTP_REQUEST_MAX_RETRIES (default 7) */
  readonly maxRetries: number
  /** MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, in ms (default 2 s) */
  readonly backoffFactorMs: number
  /** MLFLOW_HTTP_REQUEST_BACKOFF_JITTER, in ms (default 1 s) */
  readonly jitterMs: number
  /** urllib3's backoff_max (120 s) */
  readonly maxBackoffMs: number
  /** MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER (default true) */
  readonly respectRetryAfter: boolean
}

const envNumber = (env: NodeJS.ProcessEnv, name: string, fallback: number): number => {
  const raw = env[name]
  if (raw === undefined || raw.trim() === "") return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}=${JSON.stringify(raw)}: expected a non-negative number`)
  return value
}

export const retryPolicyFromEnv = (env: NodeJS.ProcessEnv = process.env): RetryPolicy => ({
  maxRetries: Math.min(envNumber(env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES", 7), 10),
  backoffFactorMs: envNumber(env, "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 2) * 1000,
  jitterMs: envNumber(env, "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", 1) * 1000,
  maxBackoffMs: 120_000,
  respectRetryAfter: env.MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER?.toLowerCase() !== "false"
})

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unparsable. */
export const parseRetryAfter = (header: string | undefined, now: number = Date.now()): number | undefined => {
  if (header === undefined) return undefined
  const trimmed = header.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** Delay before retry number `retry` (1-based). */
export const backoffMs = (policy: RetryPolicy, retry: number, retryAfterMs: number | undefined, random: () => number = Math.random): number => {
  if (retryAfterMs !== undefined && policy.respectRetryAfter) return Math.min(retryAfterMs, policy.maxBackoffMs)
  const exponential = retry <= 1 ? 0 : policy.backoffFactorMs * 2 ** (retry - 1)
  return Math.min(policy.maxBackoffMs, exponential + random() * policy.jitterMs)
}

/**
 * At most `maxRetries` retries, each after `backoffMs` (the failed attempt's Retry-After, when the error
 * carries one, wins over the exponential delay). Which errors are retried is the caller's `while`.
 */
export const retrySchedule = (policy: RetryPolicy): Schedule.Schedule<number, MlflowError> =>
  Schedule.recurs(policy.maxRetries).pipe(
    Schedule.setInputType<MlflowError>(),
    Schedule.modifyDelay(({ attempt, input }) =>
      Effect.succeed(Duration.millis(backoffMs(policy, attempt, input._tag === "MlflowApiError" ? input.retryAfterMs : undefined)))
    )
  )
