#!/usr/bin/env node
/** `vw2` entry point: runtime wiring only (commands live in Cli.ts). */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { Command } from "effect/cli"
import { vw2 } from "./Cli.ts"

Command.run(vw2, { version: "0.1.0" }).pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain)
