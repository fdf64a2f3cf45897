#!/usr/bin/env node
/** `vw2` entry point: runtime wiring only (commands live in Cli.ts). */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { CliError, Command } from "effect/cli"
import { exitCodes, vw2 } from "./Cli.ts"

Command.run(vw2, { version: "0.1.0" }).pipe(
  // A flag or argument the parser rejects (unknown flag, `--cpus abc`, missing file) is bad input like a bad
  // --set: the parser has already printed the error and the usage, so only the exit code is left to set.
  // (`vw2` alone just shows the help: that is not an error.)
  Effect.catch((error) => {
    if (!CliError.isCliError(error)) return Effect.fail(error)
    const helpOnly = error._tag === "ShowHelp" && error.errors.length === 0
    return Effect.sync(() => {
      process.exitCode = helpOnly ? exitCodes.ok : exitCodes.badInput
    })
  }),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
