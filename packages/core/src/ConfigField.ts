/**
 * Config-field shorthands for stage config Schemas: each field carries the default it decodes to when the
 * key is absent (Effect v4 `withDecodingDefaultKey`), so experiment files may leave it out. One set for
 * every package, so "positive" and "at least" mean the same thing in every stage config.
 */
import { Effect, Schema } from "effect"

/** `schema`, decoding to `fallback` when the key is absent. */
export const withDefault = <S extends Schema.Top>(schema: S, fallback: S["Encoded"]) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

/** An integer ≥ `min`. */
export const int = (min: number, fallback: number) => withDefault(Schema.Int.check(Schema.isGreaterThanOrEqualTo(min)), fallback)

/** An integer in [min, max]. */
export const intBetween = (min: number, max: number, fallback: number) =>
  withDefault(Schema.Int.check(Schema.isGreaterThanOrEqualTo(min), Schema.isLessThanOrEqualTo(max)), fallback)

export const positiveInt = (fallback: number) => int(1, fallback)

export const nonNegativeInt = (fallback: number) => int(0, fallback)

/** A finite number > 0. */
export const positiveNumber = (fallback: number) => withDefault(Schema.Finite.check(Schema.isGreaterThan(0)), fallback)

/** A finite number ≥ 0. */
export const nonNegativeNumber = (fallback: number) => withDefault(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)), fallback)

export const finite = (fallback: number) => withDefault(Schema.Finite, fallback)

export const bool = (fallback: boolean) => withDefault(Schema.Boolean, fallback)

/** One of `values`. */
export const literals = <const L extends ReadonlyArray<string>>(values: L, fallback: L[number]): Schema.withDecodingDefaultKey<Schema.Literals<L>> =>
  Schema.withDecodingDefaultKey<Schema.Literals<L>>(Effect.succeed(fallback))(Schema.Literals(values))

/**
 * A secret string (an API token, a password, a connection URL with a password). The stage receives an
 * Effect `Redacted` (read it with `Redacted.value`, so printing the config shows `<redacted>`); vw2 hashes
 * it by value, so caching works, and writes `***` wherever the config leaves the process (tracker params,
 * run records, logs, manifests; Redaction.ts, docs/engine.md "Secrets").
 */
export const Secret = Schema.RedactedFromValue(Schema.String)

/** A `Secret` decoding to `fallback` when the key is absent (e.g. "" for "no token"). */
export const secret = (fallback: string) => withDefault(Secret, fallback)
