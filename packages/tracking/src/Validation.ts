/**
 * MLflow's naming rules and batch limits, mirrored from `mlflow/utils/validation.py` (3.17) so that bad
 * input is rejected or truncated here, with a clear message, instead of failing a whole batch server-side.
 */
import { MlflowValidationError } from "./MlflowError.ts"

export const limits = {
  metricsPerBatch: 1000,
  paramsTagsPerBatch: 100,
  entitiesPerBatch: 1000,
  /** MAX_BATCH_LOG_REQUEST_SIZE is 1e6 bytes; keep a margin for the run id and envelope */
  batchBytes: 1_000_000 - 2_000,
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000
} as const

// Python's `re.match(r"^[/\w.\- :]*$")` with unicode `\w` (str.isalnum() or "_").
const validName = /^[/\p{L}\p{N}_.\- :]*$/u

/** posixpath.normpath, enough to detect names that "resolve to other names" (a//b, a/./b, a/, /a, ..). */
const normalizesDifferently = (name: string): boolean => {
  if (name === "" ) return true
  if (name.startsWith("/")) return true
  const parts = name.split("/")
  if (parts.some((part) => part === "" || part === "." )) return true
  if (parts[0] === "..") return true
  // a/../b normalises to b
  return parts.some((part, index) => part === ".." && index > 0)
}

/** Why MLflow would reject `name` as a metric/param/tag key, or undefined when it is fine. */
export const invalidKeyReason = (name: string): string | undefined => {
  if (!validName.test(name))
    return "names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)"
  if (normalizesDifferently(name)) return "names must not resolve to other names when treated as paths (no '//', '/./', '..', leading or trailing '/')"
  if (codePoints(name) > limits.keyLength) return `names must be at most ${limits.keyLength} characters`
  return undefined
}

export const validateKey = (kind: "metric" | "param" | "tag", name: string): void => {
  const reason = invalidKeyReason(name)
  if (reason !== undefined) throw new MlflowValidationError({ field: `${kind} key`, message: `invalid ${kind} key ${JSON.stringify(name)}: ${reason}` })
}

// MLflow measures lengths in Python code points, not UTF-16 units.
const codePoints = (value: string): number => {
  let count = 0
  for (const _ of value) count++
  return count
}

/** Truncate to `limit` code points like the server does (MLFLOW_TRUNCATE_LONG_VALUES), reporting it. */
export const truncateValue = (kind: string, key: string, value: string, limit: number, warn: (message: string) => void): string => {
  if (value.length <= limit || codePoints(value) <= limit) return value
  warn(`${kind} ${JSON.stringify(key)}: value of ${codePoints(value)} characters truncated to ${limit} (MLflow's limit)`)
  return Array.from(value).slice(0, limit).join("")
}
