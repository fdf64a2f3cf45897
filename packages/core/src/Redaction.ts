/**
 * Secrets in configs, and how they are hidden wherever a config leaves memory in readable form (tracker
 * params and tags, run records, the tracking spool, log files, manifests). A value is secret when
 *  - its stage config declares it with `ConfigField.Secret` (the stage receives an Effect `Redacted`), or
 *  - its key names one: the key's words (camelCase, snake_case, kebab-case) include token, password,
 *    passwd, passphrase, secret, credential(s), api key (`apiKey`, `api_key`, `apikey`) or private key, or
 *  - it is the password of a URL's userinfo: `postgres://user:pw@host` → `postgres://user:***@host`.
 * Hashes still take the real values (Planner.ts), so caching works and different secrets are different
 * invocations. Validation (Config.ts) remembers the secret values and paths it sees, for the life of the
 * process, so that free text (the command line, log lines) is masked too, as CI systems mask theirs.
 * See docs/engine.md, "Secrets".
 */
import type { Schema, SchemaAST } from "effect"
import { Redacted } from "effect"
import type { PathSegment } from "./ConfigPath.ts"
import { formatPath, parsePath } from "./ConfigPath.ts"

/** What a secret is replaced with. */
export const redactedText = "***"

const secretWords = new Set(["token", "password", "passwd", "passphrase", "secret", "secrets", "credential", "credentials", "apikey"])
const secretPairs = new Set(["api key", "private key"])

/** "apiToken" → ["api", "token"], "APIKey" → ["api", "key"], "db_password" → ["db", "password"] */
const wordsOf = (key: string): Array<string> =>
  key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2").toLowerCase().split(/[^a-z0-9]+/).filter((w) => w !== "")

/** Whether a config key names a secret (see the module comment). `maxTokens` or `tokenize` do not. */
export const isSecretKey = (key: string): boolean => {
  const words = wordsOf(key)
  return words.some((w, i) => secretWords.has(w) || (i > 0 && secretPairs.has(`${words[i - 1]} ${w}`)))
}

/** Whether a config path names a secret: any of its keys does (a secret object hides all of it). */
export const isSecretPath = (path: ReadonlyArray<PathSegment>): boolean =>
  path.some((s) => typeof s === "string" && isSecretKey(s)) || knownPaths.has(formatPath(path))

// scheme://user:password@ — the password stops at the first character a URL cannot carry unescaped there
const urlUserinfo = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/:@?#]*):([^\s/@?#]+)@/gi

/** Masks the password of every URL's userinfo in `text`. */
export const redactUrls = (text: string): string => text.replace(urlUserinfo, (_, scheme, user, pw) => (pw === redactedText ? `${scheme}${user}:${pw}@` : `${scheme}${user}:${redactedText}@`))

const knownValues = new Set<string>()
const knownPaths = new Set<string>()
// Shorter values are only masked where they stand alone (a whole config value), not inside free text,
// where "abc" would mask every word that contains it.
const minMaskedLength = 4

/**
 * Remembers a secret (and where it was found) so that later output masks it. Only strings are remembered
 * as values: a number at a secret key is hidden by its key, and masking "1234" in every log line would
 * hide step counts.
 */
export const rememberSecret = (value: unknown, path?: ReadonlyArray<PathSegment>): void => {
  if (path !== undefined) knownPaths.add(formatPath(path))
  if (typeof value === "string" && value !== "") knownValues.add(value)
}

/** Remembers the passwords of the URLs in `text`. */
const rememberUrlPasswords = (text: string): void => {
  for (const match of text.matchAll(urlUserinfo)) {
    if (match[3] === redactedText) continue
    rememberSecret(match[3])
    rememberSecret(safeDecode(match[3]!))
  }
}

const safeDecode = (text: string): string => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/**
 * Masks secrets in free text (a command line, a log line, an error): URL passwords, and every secret
 * value validation has seen in this process (those of at least 4 characters; see `minMaskedLength`).
 */
export const redactText = (text: string): string => {
  let out = redactUrls(text)
  for (const secret of knownValues) {
    if (secret.length >= minMaskedLength && out.includes(secret)) out = out.split(secret).join(redactedText)
  }
  return out
}

/** Whether a value at a secret-named key carries anything worth hiding (an empty or unset one shows as is). */
const hides = (value: unknown): boolean => value !== null && value !== undefined && value !== "" && typeof value !== "boolean"

const isPlainObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u) && (Object.getPrototypeOf(u) === Object.prototype || Object.getPrototypeOf(u) === null)

/**
 * A copy of a config (or any JSON-like value) with its secrets replaced by `***`: values under secret-named
 * keys, remembered secret values, `Redacted` values and URL passwords. What goes into params, records and
 * manifests; never what is hashed or handed to a stage.
 */
export const redactConfig = (value: unknown): unknown => {
  if (Redacted.isRedacted(value)) return redactedText
  if (typeof value === "string") return knownValues.has(value) ? redactedText : redactText(value)
  if (Array.isArray(value)) return value.map(redactConfig)
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {}
    for (const [key, child] of Object.entries(value)) out[key] = isSecretKey(key) && hides(child) ? redactedText : redactConfig(child)
    return out
  }
  return value
}

/** Paths (relative to the schema) of its `Redacted` fields: `ConfigField.Secret`, or `Schema.RedactedFromValue` written directly. */
const redactedFieldsOf = (ast: SchemaAST.AST, path: Array<PathSegment>, out: Array<Array<PathSegment>>, depth: number): void => {
  if (depth > 32) return // a recursive schema: deeper secrets are still found by value once decoded
  switch (ast._tag) {
    case "Declaration":
      if (ast.annotations?.expected === "Redacted") out.push(path)
      else for (const parameter of ast.typeParameters) redactedFieldsOf(parameter, path, out, depth + 1) // Schema.Class and friends
      return
    case "Objects":
      for (const property of ast.propertySignatures) if (typeof property.name === "string") redactedFieldsOf(property.type, [...path, property.name], out, depth + 1)
      return
    case "Union":
      for (const member of ast.types) redactedFieldsOf(member, path, out, depth + 1)
      return
    default:
      return
  }
}

const schemaSecrets = new WeakMap<object, ReadonlyArray<ReadonlyArray<PathSegment>>>()

/**
 * Remembers where a stage config schema declares secrets (under `prefix`, the step name), so that
 * messages and `--set` text mask them even before (or without) a successful decode.
 */
export const rememberSecretFields = (schema: Schema.Top, prefix: ReadonlyArray<PathSegment>): void => {
  let paths = schemaSecrets.get(schema)
  if (paths === undefined) {
    const found: Array<Array<PathSegment>> = []
    redactedFieldsOf(schema.ast, [], found, 0)
    paths = found
    schemaSecrets.set(schema, paths)
  }
  for (const path of paths) knownPaths.add(formatPath([...prefix, ...path]))
}

/**
 * Remembers the secrets of a config as written (no decoding needed): values under secret-named keys or at
 * paths a schema declares secret (`rememberSecretFields` first), and URL passwords. The planner calls it on
 * the experiment's own config too, so a value that a `--set` replaces is still masked in a copy of the file.
 */
export const rememberSecretsIn = (config: unknown, prefix: ReadonlyArray<PathSegment> = []): void => {
  const walk = (value: unknown, path: Array<PathSegment>, secret: boolean): void => {
    const isSecret = secret || (path.length > 0 && knownPaths.has(formatPath(path)))
    if (typeof value === "string" || typeof value === "number") {
      if (isSecret) rememberSecret(value, path)
      if (typeof value === "string") rememberUrlPasswords(value)
    } else if (Array.isArray(value)) value.forEach((child, i) => walk(child, [...path, i], isSecret))
    else if (typeof value === "object" && value !== null) {
      for (const [key, child] of Object.entries(value)) walk(child, [...path, key], isSecret || isSecretKey(key))
    }
  }
  walk(config, [...prefix], false)
}

/**
 * Remembers the secrets of a config slice that validation accepted: the `Redacted` values of the decoded
 * slice (fields declared `ConfigField.Secret`, wherever the schema puts them) and those of the encoded one
 * (`rememberSecretsIn`).
 */
export const rememberSecretsOf = (decoded: unknown, encoded: unknown, prefix: ReadonlyArray<PathSegment>): void => {
  const walkDecoded = (value: unknown, path: Array<PathSegment>): void => {
    if (Redacted.isRedacted(value)) {
      rememberSecret(Redacted.value(value), path)
      return
    }
    if (Array.isArray(value)) value.forEach((child, i) => walkDecoded(child, [...path, i]))
    else if (typeof value === "object" && value !== null) for (const [key, child] of Object.entries(value)) walkDecoded(child, [...path, key])
  }
  walkDecoded(decoded, [...prefix])
  rememberSecretsIn(encoded, prefix)
}

/**
 * `path=value` of a `--set` with its value masked when the path is secret (by name, or a field declared
 * secret that validation has seen) or the value holds a secret.
 */
export const redactOverrideText = (text: string): string => {
  const eq = text.indexOf("=")
  if (eq <= 0) return redactText(text)
  const pathText = text.slice(0, eq)
  const path = parsePath(pathText.trim())
  if (path !== undefined && isSecretPath(path)) return `${pathText}=${redactedText}`
  const raw = text.slice(eq + 1)
  try {
    const parsed: unknown = JSON.parse(raw)
    if (typeof parsed === "object" && parsed !== null) return `${pathText}=${redactText(JSON.stringify(redactConfig(parsed)))}`
  } catch {
    // plain text value
  }
  return redactText(text)
}

/**
 * A command line (argv without the node binary) as it may be recorded: every `--set` value that is secret
 * masked, then free-text masking (URL passwords, remembered values). Call it after planning, so the
 * secret fields' values and paths are known.
 */
export const redactCommandLine = (argv: ReadonlyArray<string>): string =>
  argv.map((arg, i) => {
    if (i > 0 && argv[i - 1] === "--set") return redactOverrideText(arg)
    if (arg.startsWith("--set=")) return `--set=${redactOverrideText(arg.slice("--set=".length))}`
    return redactText(arg)
  }).join(" ")
