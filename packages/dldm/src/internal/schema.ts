/** Schema helpers: fields with decoding defaults, so experiment files may omit them. */
import { Effect, Schema } from "effect"

export const withDefault = <S extends Schema.Top>(schema: S, value: S["Encoded"]) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(value)))

export const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
export const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
export const PositiveNumber = Schema.Finite.check(Schema.isGreaterThan(0))
export const NonNegativeNumber = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))
export const UnitInterval = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThan(1))

export const int = (value: number) => withDefault(PositiveInt, value)
export const nonNegInt = (value: number) => withDefault(NonNegativeInt, value)
export const positive = (value: number) => withDefault(PositiveNumber, value)
export const nonNegative = (value: number) => withDefault(NonNegativeNumber, value)
