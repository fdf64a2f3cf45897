/**
 * Config validation: every step's slice is decoded with its stage's Schema (all errors, unknown keys
 * rejected) before anything runs; errors carry the full path ("dldm.fsq.levels[2]") and what was expected.
 * `--set path=value` overrides are parsed here and then validated by the same code.
 */
import { Data, Schema, SchemaIssue } from "effect"
import { CanonicalJsonError, canonicalJson } from "./Canonical.ts"
import type { PathSegment } from "./ConfigPath.ts"
import { formatPath, getPath, parsePath, setPath } from "./ConfigPath.ts"
import { isSecretPath, redactConfig, redactedText, redactOverrideText, rememberSecretFields, rememberSecretsOf } from "./Redaction.ts"
import type { AnyPipeline } from "./Pipeline.ts"
import type { AnyStage } from "./Stage.ts"

export interface ConfigIssue {
  /** "dldm.fsq.levels[2]" */
  readonly path: string
  readonly message: string
}

export class ConfigError extends Data.TaggedError("ConfigError")<{
  /** where the config came from: "experiment config", "--set fit.lr=x", "sweep point 3 {...}" */
  readonly source: string
  readonly issues: ReadonlyArray<ConfigIssue>
}> {
  override get message(): string {
    return `invalid config (${this.source}):\n` + this.issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")
  }
}

/** One step's validated slice: `value` for the stage, `encoded` (defaults filled in) for hashing and workers. */
export interface ResolvedSlice {
  readonly value: unknown
  readonly encoded: unknown
  /** canonical JSON of `encoded` */
  readonly canonical: string
}

const describeValue = (value: unknown): string => {
  if (value === undefined) return "nothing"
  // JSON would print these as null (e.g. --set x=1e400 parses to Infinity)
  if (typeof value === "number" && !Number.isFinite(value)) return String(value)
  try {
    const text = JSON.stringify(value)
    return text.length > 60 ? text.slice(0, 57) + "..." : text
  } catch {
    return String(value)
  }
}

const decodeOptions = { errors: "all", onExcessProperty: "error" } as const
const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** Validates one stage config slice; issue paths are prefixed with `prefix` (the step name). */
export const validateSlice = (
  stage: AnyStage,
  prefix: ReadonlyArray<PathSegment>,
  slice: unknown
): { readonly _tag: "ok"; readonly slice: ResolvedSlice } | { readonly _tag: "issues"; readonly issues: Array<ConfigIssue> } => {
  const codec = stage.config as Schema.Codec<unknown, unknown>
  rememberSecretFields(codec, prefix)
  const decoded = Schema.decodeUnknownResult(codec)(slice, decodeOptions)
  if (decoded._tag === "Failure") {
    const issues = formatter(decoded.failure.issue).issues.map((issue) => {
      const rel = (issue.path ?? []).map((p) => (typeof p === "object" && p !== null && "key" in p ? (p as { key: PropertyKey }).key : p)) as Array<PathSegment>
      const path = [...prefix, ...rel]
      const message = issue.message === "Expected no excess property"
        ? "unknown key (not in the stage's config schema)"
        : `${issue.message}, got ${isSecretPath(path) ? redactedText : describeValue(getPath(slice, rel))}`
      return { path: formatPath(path), message }
    })
    return { _tag: "issues", issues }
  }
  const encoded = Schema.encodeUnknownResult(codec)(decoded.success)
  if (encoded._tag === "Failure") {
    return { _tag: "issues", issues: [{ path: formatPath(prefix), message: `cannot be encoded back: ${String(encoded.failure)}` }] }
  }
  let canonical: string
  try {
    canonical = canonicalJson(encoded.success)
  } catch (error) {
    // name the value's full path ("train.lr"), not the step and then the path inside it
    if (error instanceof CanonicalJsonError) return { _tag: "issues", issues: [{ path: formatPath([...prefix, ...error.segments]), message: error.reason }] }
    return { _tag: "issues", issues: [{ path: formatPath(prefix), message: (error as Error).message }] }
  }
  rememberSecretsOf(decoded.success, encoded.success, prefix)
  return { _tag: "ok", slice: { value: decoded.success, encoded: encoded.success, canonical } }
}

/**
 * Validates a whole experiment config (step name → slice) against the pipeline. Unknown steps and every
 * slice issue are reported together. `cache` memoises slices by canonical text (sweeps repeat them).
 */
export const validateConfig = (
  pipeline: AnyPipeline,
  config: unknown,
  source: string,
  cache?: Map<string, ResolvedSlice>
): Readonly<Record<string, ResolvedSlice>> => {
  const issues: Array<ConfigIssue> = []
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError({ source, issues: [{ path: "(root)", message: "expected an object keyed by step name" }] })
  }
  const stepNames = new Set(pipeline.steps.map((s) => s.name))
  for (const key of Object.keys(config)) {
    if (!stepNames.has(key)) issues.push({ path: key, message: `unknown step (steps: ${[...stepNames].join(", ")})` })
  }
  const resolved: Record<string, ResolvedSlice> = {}
  for (const step of pipeline.steps) {
    const slice = (config as Record<string, unknown>)[step.name]
    let key: string | undefined
    try {
      key = `${step.name}\u0000${canonicalJson(slice)}`
    } catch {
      key = undefined
    }
    const cached = key === undefined ? undefined : cache?.get(key)
    if (cached !== undefined) {
      resolved[step.name] = cached
      continue
    }
    const result = validateSlice(step.stage, [step.name], slice === undefined ? missing : slice)
    if (result._tag === "issues") issues.push(...result.issues)
    else {
      resolved[step.name] = result.slice
      if (key !== undefined) cache?.set(key, result.slice)
    }
  }
  if (issues.length > 0) throw new ConfigError({ source, issues })
  return resolved
}

// A missing slice is validated as an empty object so that the Schema names each missing key.
const missing = {}

/** A parsed `--set` override. */
export interface Override {
  readonly text: string
  readonly path: ReadonlyArray<PathSegment>
  readonly value: unknown
}

/**
 * Parses `path=value`. The value is JSON when it parses as JSON (`3`, `1e-4`, `true`, `null`, `[8,5,5]`,
 * `{"a":1}`, `"quoted"`), otherwise the raw text is taken as a string (`--set fit.optimizer=adam`).
 */
export const parseOverride = (text: string): Override => {
  const eq = text.indexOf("=")
  const bad = (message: string) => new ConfigError({ source: `--set ${redactOverrideText(text)}`, issues: [{ path: eq > 0 ? text.slice(0, eq) : text, message }] })
  if (eq <= 0) throw bad("expected path=value, e.g. --set fit.learningRate=0.01")
  const path = parsePath(text.slice(0, eq).trim())
  if (path === undefined) throw bad("not a config path (use step.key.sub or key[2])")
  const raw = text.slice(eq + 1)
  let value: unknown = raw
  const trimmed = raw.trim()
  if (trimmed !== "") {
    try {
      value = JSON.parse(trimmed)
    } catch {
      if (/^[[{"]/.test(trimmed)) throw bad(`value ${raw} looks like JSON but does not parse`)
      value = raw
    }
  }
  return { text, path, value }
}

/** Applies overrides in order; each override's path must name a step (the rest is checked by validation). */
export const applyOverrides = (pipeline: AnyPipeline, config: unknown, overrides: ReadonlyArray<Override>): unknown => {
  let next = config
  for (const override of overrides) {
    const step = override.path[0]
    if (typeof step !== "string" || !pipeline.steps.some((s) => s.name === step)) {
      throw new ConfigError({
        source: `--set ${redactOverrideText(override.text)}`,
        issues: [{ path: formatPath(override.path), message: `unknown step ${JSON.stringify(step)} (steps: ${pipeline.steps.map((s) => s.name).join(", ")})` }]
      })
    }
    try {
      next = setPath(next, override.path, override.value)
    } catch (error) {
      throw new ConfigError({ source: `--set ${redactOverrideText(override.text)}`, issues: [{ path: formatPath(override.path), message: (error as Error).message }] })
    }
  }
  return next
}

/**
 * "dldm.fsq.levels" → "[8,5,5,5]": the resolved config flattened for tracker params, secrets replaced by
 * `***` (Redaction.ts) since params leave the process.
 */
export const flattenConfig = (value: unknown, prefix = ""): Record<string, string> => flattenPlain(redactConfig(value), prefix)

const flattenPlain = (value: unknown, prefix: string): Record<string, string> => {
  const out: Record<string, string> = {}
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(value)) Object.assign(out, flattenPlain(child, prefix === "" ? key : `${prefix}.${key}`))
  } else if (prefix !== "") {
    out[prefix] = typeof value === "string" ? value : canonicalJson(value)
  }
  return out
}
