/**
 * `vw2 mlflow` and `vw2 runs`: thin handlers over @vw2/tracking (the embedded MLflow server and the
 * comparison table read from MLflow).
 */
import { formatRunsTable, resolveTrackingUri, runsTable, serveForeground } from "@vw2/tracking"
import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"

const mlflow = Command.make("mlflow", {
  port: Flag.Int("port").pipe(Flag.withDescription("port for the UI (default: first free in 5500-5599)"), Flag.optional)
}, (flags) =>
  Effect.gen(function*() {
    const code = yield* Effect.tryPromise(() => serveForeground(flags.port._tag === "Some" ? { port: flags.port.value } : {}))
    if (code !== 0) process.exitCode = code
  }).pipe(Effect.catch((error) => Console.error(`vw2 mlflow: ${error.cause instanceof Error ? error.cause.message : String(error)}`).pipe(Effect.tap(() => Effect.sync(() => { process.exitCode = 1 }))))
  )).pipe(Command.withDescription("start the local MLflow server (SQLite + artifacts under VW2_HOME) in the foreground and print the UI URL"))

const runs = Command.make("runs", {
  experiment: Argument.String("experiment").pipe(Argument.withDescription("MLflow experiment name (the experiment file's name)")),
  json: Flag.Boolean("json").pipe(Flag.withDescription("print every param and metric of every row as JSON"), Flag.withDefault(false)),
  stages: Flag.Boolean("stages").pipe(Flag.withDescription("one row per stage run instead of per trial"), Flag.withDefault(false)),
  metric: Flag.String("metric").pipe(
    Flag.withDescription("metric column (repeatable; `step/key`, or a prefix ending in *); default: a few headline metrics"),
    Flag.atLeast(0)
  )
}, (flags) =>
  Effect.gen(function*() {
    const trackingUri = yield* Effect.tryPromise(() => resolveTrackingUri({ log: (m) => process.stderr.write(`${m}\n`) }))
    const table = yield* Effect.tryPromise(() => runsTable(flags.experiment, { trackingUri, level: flags.stages ? "stage" : "trial", metrics: flags.metric }))
    // a name or metric that does not exist is a typo, not an empty comparison: say so and exit 2
    if (table.experimentId === undefined) return yield* badInput(`no MLflow experiment named ${JSON.stringify(flags.experiment)} at ${trackingUri}`)
    if (table.unmatchedMetrics.length > 0 && table.rows.length > 0) {
      const keys = (yield* Effect.tryPromise(() => runsTable(flags.experiment, { trackingUri, level: flags.stages ? "stage" : "trial" }))).metricKeys
      return yield* badInput(
        `--metric ${table.unmatchedMetrics.join(", ")}: no such metric in ${JSON.stringify(flags.experiment)}; ` +
          `it has ${keys.length} metric(s)${keys.length === 0 ? "" : `, e.g. ${keys.slice(0, 6).join(", ")}`} (vw2 runs ${flags.experiment} --json lists all)`
      )
    }
    yield* Console.log(flags.json ? JSON.stringify(table, null, 2) : formatRunsTable(table))
  }).pipe(Effect.catch((error) => Console.error(`vw2 runs: ${error.cause instanceof Error ? error.cause.message : String(error)}`).pipe(Effect.tap(() => Effect.sync(() => { process.exitCode = 1 }))))
  )).pipe(Command.withDescription("compare the runs of an experiment from MLflow: params that differ, headline or chosen metrics"))

const badInput = (message: string) =>
  Console.error(`vw2 runs: ${message}`).pipe(Effect.tap(() => Effect.sync(() => { process.exitCode = 2 })))

export const trackingCommands = [mlflow, runs] as const
