/** Schema shorthands for config fields with defaults (Effect v4: default applies when the key is absent). */
import { Effect, Schema } from "effect"

export const positiveInt = (fallback: number) =>
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

export const nonNegativeInt = (fallback: number) =>
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

export const positiveNumber = (fallback: number) =>
  Schema.Finite.check(Schema.isGreaterThan(0)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

export const nonNegativeNumber = (fallback: number) =>
  Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

export const withDefault = <S extends Schema.Top>(schema: S, fallback: S["Encoded"]) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))
