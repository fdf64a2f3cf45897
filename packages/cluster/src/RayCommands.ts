/**
 * `vw2 ray up | down | status`: a local Ray head for development (RayHead.ts), recorded in
 * <VW2_HOME>/ray/head.json so that `vw2 run --executor ray` finds it without --ray-address.
 */
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import * as fs from "node:fs"
import * as RayHead from "./RayHead.ts"

const up = Command.make("up", {
  cpus: Flag.Int("cpus").pipe(Flag.withDescription("CPUs the head offers (default 2)"), Flag.withDefault(2)),
  gpus: Flag.Int("gpus").pipe(Flag.withDescription("GPUs the head offers (logical: no device needed; default 0)"), Flag.withDefault(0)),
  objectStoreMb: Flag.Int("object-store-mb").pipe(Flag.withDescription("Ray object store size in MB (default 256)"), Flag.withDefault(256))
}, (flags) =>
  Effect.gen(function*() {
    const running = RayHead.readState()
    if (running !== undefined && RayHead.isRunning(running)) {
      return yield* Console.log(`ray head already running at ${running.address} (${RayHead.stateFile()}); \`vw2 ray down\` stops it`)
    }
    const head = yield* Effect.promise(() => RayHead.startHead({ cpus: flags.cpus, gpus: flags.gpus, objectStoreMb: flags.objectStoreMb }))
    RayHead.writeState(head)
    yield* Console.log(`ray head up at ${head.address} (${head.cpus} CPUs, ${head.gpus} GPUs, temp ${head.tempDir})\nvw2 run … --executor ray uses it; stop it with \`vw2 ray down\``)
  })).pipe(Command.withDescription("start a local Ray head for development (ports 6300–6399)"))

const down = Command.make("down", {}, () =>
  Effect.gen(function*() {
    const head = RayHead.readState()
    if (head === undefined) return yield* Console.log(`no ray head recorded in ${RayHead.stateFile()}`)
    yield* Effect.promise(() => RayHead.stopHead(head))
    fs.rmSync(RayHead.stateFile(), { force: true })
    yield* Console.log(`ray head at ${head.address} stopped`)
  })).pipe(Command.withDescription("stop the Ray head `vw2 ray up` started"))

const status = Command.make("status", {}, () =>
  Effect.gen(function*() {
    const head = RayHead.readState()
    if (head === undefined || !RayHead.isRunning(head)) return yield* Console.log("no local ray head running")
    yield* Console.log(`ray head at ${head.address}: ${head.cpus} CPUs, ${head.gpus} GPUs, process group ${head.pgid}, temp ${head.tempDir}`)
  })).pipe(Command.withDescription("show the local Ray head started by `vw2 ray up`"))

export const rayCommand = Command.make("ray").pipe(
  Command.withDescription("local Ray head for the ray executor: up | down | status"),
  Command.withSubcommands([up, down, status])
)
