/**
 * A metric that may not be computable in this run (no model file supplied, model failed to load).
 * Reports carry the reason instead of a made-up number, so a table never shows an invented value.
 */
export type Availability<A> =
  | { readonly _tag: "available"; readonly value: A }
  | { readonly _tag: "unavailable"; readonly reason: string }

export const available = <A>(value: A): Availability<A> => ({ _tag: "available", value })
export const unavailable = (reason: string): Availability<never> => ({ _tag: "unavailable", reason })
