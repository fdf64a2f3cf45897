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
  json: Flag.Boolean("json").pipe(Flag.withDescription("print rows as JSON"), Flag.withDefault(false)),
  stages: Flag.Boolean("stages").pipe(Flag.withDescription("one row per stage run instead of per trial"), Flag.withDefault(false)),
  metric: Flag.String("metric").pipe(Flag.withDescription("metric to show (repeatable; `step/key`, or a prefix ending in *); default: all"), Flag.atLeast(0))
}, (flags) =>
  Effect.gen(function*() {
    const trackingUri = yield* Effect.tryPromise(() => resolveTrackingUri({ log: (m) => process.stderr.write(`${m}\n`) }))
    const table = yield* Effect.tryPromise(() => runsTable(flags.experiment, { trackingUri, level: flags.stages ? "stage" : "trial", metrics: flags.metric }))
    yield* Console.log(flags.json ? JSON.stringify(table, null, 2) : formatRunsTable(table))
    if (table.experimentId === undefined) process.exitCode = 2
  }).pipe(Effect.catch((error) => Console.error(`vw2 runs: ${error.cause instanceof Error ? error.cause.message : String(error)}`).pipe(Effect.tap(() => Effect.sync(() => { process.exitCode = 1 }))))
  )).pipe(Command.withDescription("compare the runs of an experiment from MLflow: params that differ, chosen metrics"))

export const trackingCommands = [mlflow, runs] as const
