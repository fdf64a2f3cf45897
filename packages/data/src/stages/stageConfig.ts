/** Config-field builders the data stages share: every field has a default, so `{}` is a valid config. */
import { Effect, Schema } from "effect"

/** An integer in [min, max], `fallback` when the key is absent. */
export const intBetween = (min: number, max: number, fallback: number) =>
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(min), Schema.isLessThanOrEqualTo(max)).pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

/** `schema`, `fallback` when the key is absent. */
export const withDefault = <S extends Schema.Top>(schema: S, fallback: S["Encoded"]) => schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))
