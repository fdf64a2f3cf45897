/**
 * JSON for MLflow's proto3-JSON REST API. JSON has no NaN/±Infinity; protobuf's JSON mapping encodes
 * doubles that are not finite as the strings "NaN", "Infinity", "-Infinity" (what the Python client
 * sends via MessageToJson), and the server answers NaN the same way.
 */

/** A metric value as it goes on the wire. */
export const encodeDouble = (value: number): number | string =>
  Number.isFinite(value) ? value : Number.isNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity"

/** A double read from the wire (number, or one of the proto3 special strings). */
export const decodeDouble = (value: unknown): number => {
  if (typeof value === "number") return value
  if (value === "NaN") return Number.NaN
  if (value === "Infinity") return Number.POSITIVE_INFINITY
  if (value === "-Infinity") return Number.NEGATIVE_INFINITY
  if (typeof value === "string" && value.trim() !== "") return Number(value)
  return Number.NaN
}

/** int64 fields come back as JSON numbers or (proto3 JSON) decimal strings. */
export const decodeInt64 = (value: unknown): number =>
  typeof value === "number" ? value : typeof value === "string" && value !== "" ? Number(value) : 0
