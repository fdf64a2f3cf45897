/**
 * How the CLI gets its MLflow tracker: MLFLOW_TRACKING_URI when set, otherwise the embedded local
 * server (started or reused). The embedded server starts in the background while the first stages run:
 * the tracker is usable at once and spools until the server answers (its `state()` says so). If no
 * server can be had at all, the run goes on, everything spooled, and says so loudly: tracking never
 * fails a run.
 */
import * as path from "node:path"
import { Duration, Effect, Fiber, Layer } from "effect"
import { Tracker as CoreTracker } from "@vw2/core"
import { ServerUnhealthyError, databaseFile, ensureLocalServer, findMlflowBin, touchLease } from "./LocalServer.ts"
import { make, vw2Home } from "./MlflowTracker.ts"

export interface TrackerFromEnvOptions {
  /** default: $VW2_HOME or ./.vw2 */
  readonly home?: string
  /** default: $MLFLOW_TRACKING_URI, else the embedded server */
  readonly trackingUri?: string
  /** progress lines for humans (default: stderr) */
  readonly log?: (message: string) => void
  /** how long to wait for an embedded server that is already running before going on without it
   * (default 2 s: a reused server answers well within it, so runs get real MLflow ids from the start) */
  readonly waitForRunningServerMs?: number
}

/** Resolves the tracking URI: explicit, MLFLOW_TRACKING_URI, or the embedded server's. */
export const resolveTrackingUri = async (options: TrackerFromEnvOptions = {}): Promise<string> => {
  const explicit = options.trackingUri ?? process.env.MLFLOW_TRACKING_URI
  if (explicit !== undefined && explicit !== "") return explicit
  const log = options.log ?? ((message: string) => process.stderr.write(`${message}\n`))
  const server = await ensureLocalServer({ home: options.home ?? vw2Home(), log })
  log(`MLflow UI: ${server.url}${server.reused ? "" : " (embedded server started; it stops after VW2_MLFLOW_IDLE_MINUTES (20) unused)"}`)
  // keep the embedded server's lease fresh while this process uses it
  setInterval(() => touchLease(server.dir), 60_000).unref()
  return server.url
}

export const layerFromEnv = (options: TrackerFromEnvOptions = {}): Layer.Layer<CoreTracker.Tracker> =>
  Layer.effect(CoreTracker.Tracker)(
    Effect.gen(function*() {
      const log = options.log ?? ((message: string) => process.stderr.write(`${message}\n`))
      const home = options.home ?? vw2Home()
      const warn = (m: string) => log(`[tracking] ${m}`)
      const explicit = options.trackingUri ?? process.env.MLFLOW_TRACKING_URI
      if (explicit !== undefined && explicit !== "") return yield* make({ trackingUri: explicit, home, warn })
      try {
        findMlflowBin()
      } catch (error) {
        // nothing to start, and nothing a later run could deliver a spool to either
        log(`WARNING: tracking disabled: no MLflow server could be started: ${whyNoServer(error)}`)
        return CoreTracker.makeNoopTracker()
      }
      const starting = yield* Effect.forkScoped(
        Effect.tryPromise({ try: () => resolveTrackingUri({ ...options, home, log }), catch: (error) => new Error(whyNoServer(error)) })
      )
      const quick = yield* Effect.result(Effect.timeoutOption(Fiber.join(starting), Duration.millis(options.waitForRunningServerMs ?? 2000)))
      const ready = quick._tag === "Success" && quick.success._tag === "Some" ? quick.success.value : undefined
      if (ready === undefined && quick._tag === "Success") log("MLflow is starting in the background; records are spooled meanwhile and delivered once it answers")
      // (a start that failed at once fails again here: the tracker then reports it and spools)
      return yield* make({ trackingUri: ready ?? Fiber.join(starting), home, warn })
    })
  )

/**
 * One readable reason for the warning: the error's first line and, when the server wrote a log, its exception
 * line, with the fix for the failures seen in practice.
 */
export const whyNoServer = (error: unknown): string => {
  const first = (error instanceof Error ? error.message : String(error)).split("\n")[0]
  if (!(error instanceof ServerUnhealthyError) || error.logFile === undefined) {
    return `${first}; run \`npm run setup\`, set MLFLOW_TRACKING_URI, or pass --no-track`
  }
  const logLines = error.logTail.filter((line) => line.trim() !== "")
  // the exception line (Python's "pkg.SomeError: …"), not the hints printed after it
  const last = (logLines.findLast((line) => /^[\w.]*(Error|Exception)\b.*:/.test(line.trim())) ?? logLines.at(-1))?.trim()
  // MLflow migrates a new database through alembic's temporary tables; a server stopped in the middle leaves
  // them behind and every later start fails on them
  const fix = last !== undefined && /_alembic_tmp_\w+ already exists/.test(last)
    ? `its database ${databaseFile(path.dirname(error.logFile))} was left half-created by an interrupted start: move it aside (\`mv\` it) and run again`
    : "run `npm run setup`, set MLFLOW_TRACKING_URI, or pass --no-track"
  return `${first}${last === undefined ? "" : ` — ${last}`} (log: ${error.logFile}); ${fix}`
}
