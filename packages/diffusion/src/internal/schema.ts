/** Schema shorthands for config fields with defaults (Effect v4: the default applies when the key is absent). */
import { Effect, Schema } from "effect"

export const int = (min: number, fallback: number) =>
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(min)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

export const positiveNumber = (fallback: number) =>
  Schema.Finite.check(Schema.isGreaterThan(0)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

export const nonNegativeNumber = (fallback: number) =>
  Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

export const finite = (fallback: number) => Schema.Finite.pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

export const bool = (fallback: boolean) => Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

export const literals = <const L extends ReadonlyArray<string>>(values: L, fallback: L[number]): Schema.withDecodingDefaultKey<Schema.Literals<L>> =>
  Schema.withDecodingDefaultKey<Schema.Literals<L>>(Effect.succeed(fallback))(Schema.Literals(values))

export const withDefault = <S extends Schema.Top>(schema: S, fallback: S["Encoded"]) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))
