/**
 * Credentials from MLflow's env vars. The header value lives only in the client's private field and is
 * never part of an error, a log line or a spool record.
 */
export type Auth =
  | { readonly _tag: "Bearer"; readonly token: string }
  | { readonly _tag: "Basic"; readonly username: string; readonly password: string }

export const authFromEnv = (env: NodeJS.ProcessEnv = process.env): Auth | undefined => {
  const token = env.MLFLOW_TRACKING_TOKEN
  if (token !== undefined && token !== "") return { _tag: "Bearer", token }
  const username = env.MLFLOW_TRACKING_USERNAME
  const password = env.MLFLOW_TRACKING_PASSWORD
  if (username !== undefined && username !== "" && password !== undefined) return { _tag: "Basic", username, password }
  return undefined
}

export const authorizationHeader = (auth: Auth | undefined): string | undefined =>
  auth === undefined
    ? undefined
    : auth._tag === "Bearer"
      ? `Bearer ${auth.token}`
      : `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`
