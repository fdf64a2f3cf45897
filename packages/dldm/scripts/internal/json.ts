/** `--config '{…}'` overrides of the probe scripts: plain JSON objects merged key by key over a stage config. */
export type Json = { [k: string]: unknown }

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v)

export const deepMerge = (base: Json, over: Json): Json => {
  const out: Json = { ...base }
  for (const [k, v] of Object.entries(over)) out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k] as Json, v) : v
  return out
}
