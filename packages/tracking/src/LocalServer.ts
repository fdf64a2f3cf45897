/**
 * The embedded default tracking server: with no MLFLOW_TRACKING_URI, vw2 starts (or reuses) a local
 * `mlflow server` on 127.0.0.1 with a SQLite backend and proxied artifacts under VW2_HOME/mlflow. It is
 * detached, so later vw2 invocations reuse it; `server.json` records its pid and port.
 *
 * The backend store is MLflow's SqlAlchemyStore on `mlflow.db`, by default through vw2's tracking-store
 * plugin (`vw2-sqlite://`, infra/python/vw2-mlflow-store: the stock store with a bulk metric insert, ~2x
 * the log-batch throughput; same tables, so a stock server can open the same database and vice versa).
 * The server app is, by default, vw2's (`--app-name vw2-fast-log-batch`, same package): MLflow's own app
 * whose POST runs/log-batch view skips the protobuf round trip for plain JSON bodies (same answers).
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { makeMlflowClient } from "./MlflowClient.ts"
import { portOwnership } from "./internal/portOwner.ts"
import { isProcessAlive } from "./Spool.ts"

export interface LocalServerOptions {
  /** VW2_HOME (default: $VW2_HOME or ./.vw2) */
  readonly home?: string
  /** fixed port (default: $VW2_MLFLOW_PORT, else the first free port of `portRange`) */
  readonly port?: number
  readonly portRange?: readonly [number, number]
  /** the `mlflow` executable (default: $VW2_MLFLOW_BIN, else the project's .venvs/mlflow) */
  readonly mlflowBin?: string
  readonly workers?: number
  /** the backend store (default: $VW2_MLFLOW_STORE, else `bulk-sqlite` when installed) */
  readonly store?: LocalStore
  /** the server app (default: $VW2_MLFLOW_APP, else `fast-log-batch` when installed) */
  readonly app?: LocalApp
  readonly startTimeoutMs?: number
  readonly log?: (message: string) => void
}

export interface LocalServer {
  readonly url: string
  readonly port: number
  readonly pid: number
  /** true when an already running server was reused */
  readonly reused: boolean
  /** where its database, artifacts and log live */
  readonly dir: string
  readonly store: LocalStore
  readonly app: LocalApp
  readonly workers: number
}

interface ServerState {
  readonly pid: number
  readonly port: number
  readonly url: string
  readonly startedAt: number
  /** absent in states written before the store was selectable (those servers ran stock SQLite, 1 worker) */
  readonly store?: LocalStore
  /** absent in states written before the app was selectable (those servers ran MLflow's stock app) */
  readonly app?: LocalApp
  readonly workers?: number
}

const defaultHome = () => path.resolve(process.env.VW2_HOME ?? ".vw2")

const keeperScript = fileURLToPath(new URL("./internal/serverKeeper.ts", import.meta.url))

/** Minutes an embedded server lives without any vw2 process using it (VW2_MLFLOW_IDLE_MINUTES, 0 = forever). */
const idleMinutes = (): number => {
  const raw = process.env.VW2_MLFLOW_IDLE_MINUTES
  const value = raw === undefined || raw === "" ? 20 : Number(raw)
  if (!Number.isFinite(value) || value < 0) throw new Error(`VW2_MLFLOW_IDLE_MINUTES=${JSON.stringify(raw)}: expected minutes ≥ 0`)
  return value
}

/** Marks the embedded server of `dir` as in use (its keeper stops it after idle minutes without this). */
export const touchLease = (dir: string): void => {
  try {
    fs.writeFileSync(path.join(dir, "lease"), String(process.pid))
  } catch {
    // the home is gone; the keeper will stop the server
  }
}

/** The project's venv MLflow (created by infra/setup.d/10-mlflow.sh), found by walking up from here. */
export const findMlflowBin = (): string => {
  const fromEnv = process.env.VW2_MLFLOW_BIN
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = path.join(dir, ".venvs", "mlflow", "bin", "mlflow")
    if (fs.existsSync(candidate)) return candidate
    const parent = path.dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  throw new Error(
    "MLflow is not installed: run `npm run setup` (infra/setup.d/10-mlflow.sh creates .venvs/mlflow), " +
      "or set MLFLOW_TRACKING_URI to an existing server, or VW2_MLFLOW_BIN to an mlflow executable, or pass --no-track"
  )
}

/**
 * The embedded server's backend store, both on `<dir>/mlflow.db`:
 * - `bulk-sqlite`: MLflow's SqlAlchemyStore through vw2's `mlflow.tracking_store` plugin (URI scheme
 *   `vw2-sqlite`), which inserts log-batch metrics in bulk; everything else is the stock store;
 * - `sqlite`: the stock store.
 */
export type LocalStore = "bulk-sqlite" | "sqlite"

export const localStores: ReadonlyArray<LocalStore> = ["bulk-sqlite", "sqlite"]

/**
 * The embedded server's app (MLflow's `mlflow server --app-name`, its `mlflow.app` entry point):
 * - `fast-log-batch`: vw2's app from the same plugin package (`vw2-fast-log-batch`): MLflow's app with a
 *   POST runs/log-batch view that builds the entities of a plain JSON body directly instead of through
 *   protobuf's JSON parser, and hands every other body to MLflow's own view (same answers, see README
 *   "Throughput");
 * - `stock`: MLflow's app as shipped.
 */
export type LocalApp = "fast-log-batch" | "stock"

export const localApps: ReadonlyArray<LocalApp> = ["fast-log-batch", "stock"]

/**
 * A part of the server vw2's plugin package (infra/python/vw2-mlflow-store) replaces: its env switch,
 * vw2's and MLflow's choice, and the Python module that imports when vw2's is installed.
 */
interface PluginChoice<A extends string> {
  readonly env: string
  readonly choices: ReadonlyArray<A>
  readonly vw2: A
  readonly stock: A
  readonly module: string
  /** vw2's and MLflow's part, for messages */
  readonly vw2Name: string
  readonly stockName: string
}

const storeChoice: PluginChoice<LocalStore> = {
  env: "VW2_MLFLOW_STORE", choices: localStores, vw2: "bulk-sqlite", stock: "sqlite", module: "vw2_mlflow_store",
  vw2Name: "vw2's MLflow store plugin", stockName: "the stock SQLite store"
}

const appChoice: PluginChoice<LocalApp> = {
  env: "VW2_MLFLOW_APP", choices: localApps, vw2: "fast-log-batch", stock: "stock", module: "vw2_mlflow_store.app",
  vw2Name: "vw2's MLflow server app", stockName: "MLflow's stock app"
}

/** The env switch, validated; undefined when unset (then vw2's part is used when installed). */
const choiceFromEnv = <A extends string>(choice: PluginChoice<A>): A | undefined => {
  const raw = process.env[choice.env]
  if (raw === undefined || raw === "") return undefined
  if (!(choice.choices as ReadonlyArray<string>).includes(raw)) throw new Error(`${choice.env}=${JSON.stringify(raw)}: expected one of ${choice.choices.join(", ")}`)
  return raw as A
}

/** Whether the Python next to `mlflowBin` imports `module` (infra/setup.d/10-mlflow.sh installs the package). */
const pythonImports = (mlflowBin: string, module: string): boolean =>
  spawnSync(path.join(path.dirname(mlflowBin), "python"), ["-c", `import ${module}`], { stdio: "ignore" }).status === 0

/**
 * The part to start with: the requested one (an error when vw2's is requested but not installed), else
 * vw2's when installed, else MLflow's (an older venv: tracking works, only slower).
 */
const resolveChoice = <A extends string>(choice: PluginChoice<A>, mlflowBin: string, requested: A | undefined, log?: (message: string) => void): A => {
  if (requested === choice.stock) return choice.stock
  if (pythonImports(mlflowBin, choice.module)) return choice.vw2
  if (requested === choice.vw2) throw new Error(`${choice.env}=${choice.vw2}: ${choice.vw2Name} is not installed next to ${mlflowBin}: run \`npm run setup\``)
  log?.(`${choice.vw2Name} is not installed (run \`npm run setup\`): using ${choice.stockName}`)
  return choice.stock
}

/** VW2_MLFLOW_STORE, validated; undefined when unset (then the best installed store is used). */
export const storeFromEnv = (): LocalStore | undefined => choiceFromEnv(storeChoice)

/** Whether the Python next to `mlflowBin` has vw2's tracking-store plugin. */
export const bulkStoreInstalled = (mlflowBin: string): boolean => pythonImports(mlflowBin, storeChoice.module)

export const resolveStore = (mlflowBin: string, requested: LocalStore | undefined = storeFromEnv(), log?: (message: string) => void): LocalStore =>
  resolveChoice(storeChoice, mlflowBin, requested, log)

/** VW2_MLFLOW_APP, validated; undefined when unset (then the fast app is used when installed). */
export const appFromEnv = (): LocalApp | undefined => choiceFromEnv(appChoice)

/** Whether the Python next to `mlflowBin` has vw2's server app (a plugin installed before it existed has not). */
export const fastAppInstalled = (mlflowBin: string): boolean => pythonImports(mlflowBin, appChoice.module)

export const resolveApp = (mlflowBin: string, requested: LocalApp | undefined = appFromEnv(), log?: (message: string) => void): LocalApp =>
  resolveChoice(appChoice, mlflowBin, requested, log)

/** Server workers (VW2_MLFLOW_WORKERS): each is a Python process serving requests; see README "Throughput". */
export const defaultWorkers = (): number => {
  const raw = process.env.VW2_MLFLOW_WORKERS
  const value = raw === undefined || raw === "" ? 2 : Number(raw)
  if (!Number.isInteger(value) || value < 1) throw new Error(`VW2_MLFLOW_WORKERS=${JSON.stringify(raw)}: expected an integer ≥ 1`)
  return value
}

/** The embedded server's SQLite database in its state directory `dir`. */
export const databaseFile = (dir: string): string => path.join(dir, "mlflow.db")

/** `mlflow server` arguments for a server whose state lives in `dir`. */
export const serverArgs = (dir: string, port: number, workers: number, store: LocalStore, app: LocalApp = "stock"): Array<string> => {
  const db = databaseFile(dir)
  return [
    "server",
    "--host", "127.0.0.1",
    "--port", String(port),
    "--backend-store-uri", store === "bulk-sqlite" ? `vw2-sqlite:///${db}` : `sqlite:///${db}`,
    // the model registry has no plugin: it always uses the stock store on the same database
    "--registry-store-uri", `sqlite:///${db}`,
    "--artifacts-destination", path.join(dir, "artifacts"),
    "--serve-artifacts",
    "--workers", String(workers),
    ...(app === "fast-log-batch" ? ["--app-name", "vw2-fast-log-batch"] : [])
  ]
}

/** The server's environment: MLflow's background job runner (GenAI jobs, several extra Python
 * processes) is off unless asked for: tracking does not use it and small machines feel it. */
export const serverEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION: process.env.MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?? "false"
})

const portIsFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = net.createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

export const findFreePort = async (range: readonly [number, number]): Promise<number> => {
  for (let port = range[0]; port <= range[1]; port++) if (await portIsFree(port)) return port
  throw new Error(`no free port in ${range[0]}-${range[1]} for the MLflow server`)
}

const readState = (file: string): ServerState | undefined => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as ServerState
  } catch {
    return undefined
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const healthy = (url: string): Promise<boolean> => {
  const client = makeMlflowClient({ trackingUri: url, auth: undefined })
  return Effect.runPromise(Effect.ensuring(client.health(), client.close()))
}

/** The port was bound by another process before our server could bind it (a race with another vw2). */
export class PortTakenError extends Error {
  readonly _tag = "PortTakenError"
  readonly port: number
  constructor(port: number) {
    super(`port ${port} was taken by another process while the MLflow server started`)
    this.port = port
  }
}

/**
 * Waits until `url` answers /health, failing early when `pid` exits. With `port`, the answer must come
 * from `pid`'s process tree: another server that won the race for the port fails with PortTakenError.
 */
export const waitForHealth = async (url: string, pid: number | undefined, timeoutMs: number, logFile?: string, port?: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await healthy(url)) {
      if (port === undefined || pid === undefined || portOwnership(port, pid) !== "other") return
      throw new PortTakenError(port)
    }
    if (pid !== undefined && !isProcessAlive(pid)) break
    await sleep(300)
  }
  throw new ServerUnhealthyError(url, pid !== undefined && !isProcessAlive(pid) ? "exited" : timeoutMs, logFile)
}

/**
 * The server never answered /health: it exited, or `timeoutMs` passed. Carries the server's log file and its
 * last lines (in the message too), so callers can say why without parsing the message.
 */
export class ServerUnhealthyError extends Error {
  readonly _tag = "ServerUnhealthyError"
  readonly url: string
  readonly logFile: string | undefined
  readonly logTail: ReadonlyArray<string>
  constructor(url: string, outcome: "exited" | number, logFile?: string) {
    const logTail = logFile === undefined ? [] : readTail(logFile)
    super(`MLflow server at ${url} did not become healthy${outcome === "exited" ? " (it exited)" : ` within ${outcome / 1000}s`}` +
      (logFile === undefined ? "" : `\n--- ${logFile} (tail) ---\n${logTail.join("\n")}`))
    this.url = url
    this.logFile = logFile
    this.logTail = logTail
  }
}

const readTail = (file: string): Array<string> => {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-15)
  } catch {
    return ["(no log)"]
  }
}

/** An exclusive lock file held while one process starts the server (others wait, then reuse it). */
const withLock = async <A>(lockFile: string, body: () => Promise<A>): Promise<A> => {
  for (let waited = 0; ; waited += 200) {
    try {
      const fd = fs.openSync(lockFile, "wx")
      fs.writeSync(fd, String(process.pid))
      fs.closeSync(fd)
      break
    } catch {
      const holder = Number(fs.readFileSync(lockFile, { encoding: "utf8", flag: "a+" }) || 0)
      if (!holder || !isProcessAlive(holder) || waited > 180_000) fs.rmSync(lockFile, { force: true })
      else await sleep(200)
    }
  }
  try {
    return await body()
  } finally {
    fs.rmSync(lockFile, { force: true })
  }
}

/**
 * Returns a healthy local MLflow server for `home`, starting a detached one if none is running.
 * Prints nothing; callers print `url` (the UI).
 */
export const ensureLocalServer = async (options: LocalServerOptions = {}): Promise<LocalServer> => {
  const dir = path.join(options.home ?? defaultHome(), "mlflow")
  fs.mkdirSync(dir, { recursive: true })
  const stateFile = path.join(dir, "server.json")
  const reuse = async (): Promise<LocalServer | undefined> => {
    const state = readState(stateFile)
    if (state === undefined || !isProcessAlive(state.pid)) return undefined
    if (portOwnership(state.port, state.pid) === "other") return undefined // its port is someone else's now
    if (!(await healthy(state.url))) {
      // alive but not answering: it may still be starting
      try {
        await waitForHealth(state.url, state.pid, 60_000)
      } catch {
        return undefined
      }
    }
    touchLease(dir)
    return { url: state.url, port: state.port, pid: state.pid, reused: true, dir, store: state.store ?? "sqlite", app: state.app ?? "stock", workers: state.workers ?? 1 }
  }
  const running = await reuse()
  if (running !== undefined) return running
  return withLock(path.join(dir, "server.lock"), async () => {
    const again = await reuse() // another process may have started it while we waited for the lock
    if (again !== undefined) return again
    const bin = options.mlflowBin ?? findMlflowBin()
    const envPort = process.env.VW2_MLFLOW_PORT ? Number(process.env.VW2_MLFLOW_PORT) : undefined
    const fixedPort = options.port ?? envPort
    const range = options.portRange ?? [5500, 5599]
    // a free port can be taken by another process before mlflow binds it: then try the next one
    for (let from = range[0]; ; ) {
      const port = fixedPort ?? (await findFreePort([from, range[1]]))
      try {
        return await startDetached(options, dir, stateFile, bin, port)
      } catch (error) {
        if (!(error instanceof PortTakenError) || fixedPort !== undefined || port >= range[1]) throw error
        options.log?.(`${error.message}; retrying on the next free port`)
        from = port + 1
      }
    }
  })
}

const startDetached = async (options: LocalServerOptions, dir: string, stateFile: string, bin: string, port: number): Promise<LocalServer> => {
  const url = `http://127.0.0.1:${port}`
  const logFile = path.join(dir, "server.log")
  const logFd = fs.openSync(logFile, "a")
  const workers = options.workers ?? defaultWorkers()
  const store = resolveStore(bin, options.store ?? storeFromEnv(), options.log)
  const app = resolveApp(bin, options.app ?? appFromEnv(), options.log)
  touchLease(dir)
  // a first start creates the database; killed mid-migration it leaves tables no later start can create again
  const freshDatabase = !fs.existsSync(databaseFile(dir))
  // the keeper is the detached group leader: it stops mlflow after idleMinutes without a vw2 client
  const child = spawn(process.execPath, [keeperScript, dir, String(idleMinutes()), bin, ...serverArgs(dir, port, workers, store, app)], {
    cwd: dir,
    detached: true,
    stdio: ["ignore", logFd, logFd],
    env: serverEnv()
  })
  fs.closeSync(logFd)
  const spawnError = new Promise<never>((_, reject) => child.once("error", (e) => reject(new Error(`could not start ${bin}: ${e.message}`))))
  child.unref()
  const pid = child.pid ?? -1
  fs.writeFileSync(stateFile, JSON.stringify({ pid, port, url, startedAt: Date.now(), store, app, workers } satisfies ServerState))
  options.log?.(`starting MLflow server on ${url} (${store} store, ${app} app, ${workers} worker(s); log: ${logFile})`)
  const starting = setInterval(() => touchLease(dir), 1000) // startup is not idleness
  try {
    await Promise.race([waitForHealth(url, pid, options.startTimeoutMs ?? 180_000, logFile, port), spawnError])
    touchLease(dir)
  } catch (error) {
    fs.rmSync(stateFile, { force: true })
    if (pid > 0 && isProcessAlive(pid)) await stopGroup(pid)
    if (freshDatabase) {
      for (const suffix of ["", "-wal", "-shm", "-journal"]) fs.rmSync(databaseFile(dir) + suffix, { force: true })
    }
    throw error
  } finally {
    clearInterval(starting)
  }
  return { url, port, pid, reused: false, dir, store, app, workers }
}

/** SIGTERM to the process group of `pid`, SIGKILL after 10 s; resolves once its leader is gone. */
const stopGroup = async (pid: number): Promise<void> => {
  try {
    process.kill(-pid, "SIGTERM")
  } catch {
    return
  }
  const deadline = Date.now() + 10_000
  while (isProcessAlive(pid) && Date.now() < deadline) await sleep(100)
  if (isProcessAlive(pid)) {
    try {
      process.kill(-pid, "SIGKILL")
    } catch {
      // gone between the check and the kill
    }
    const killed = Date.now() + 5_000
    while (isProcessAlive(pid) && Date.now() < killed) await sleep(50)
  }
}

/** Stops the detached server of `home`, if one runs. Returns whether one was stopped. */
export const stopLocalServer = async (options: { readonly home?: string } = {}): Promise<boolean> => {
  const dir = path.join(options.home ?? defaultHome(), "mlflow")
  const stateFile = path.join(dir, "server.json")
  const state = readState(stateFile)
  fs.rmSync(stateFile, { force: true })
  if (state === undefined || !isProcessAlive(state.pid)) return false
  // the server runs in its own process group (detached): stop the gunicorn/uvicorn workers with it
  try {
    process.kill(-state.pid, "SIGTERM")
  } catch {
    process.kill(state.pid, "SIGTERM")
  }
  for (let i = 0; i < 50 && isProcessAlive(state.pid); i++) await sleep(100)
  if (isProcessAlive(state.pid)) process.kill(-state.pid, "SIGKILL")
  return true
}

/**
 * `vw2 mlflow`: runs the server in the foreground for browsing (Ctrl-C stops it). When a detached
 * server for this home is already running, it just prints its URL.
 */
export const serveForeground = async (options: LocalServerOptions = {}): Promise<number> => {
  const log = options.log ?? ((message: string) => process.stdout.write(`${message}\n`))
  const dir = path.join(options.home ?? defaultHome(), "mlflow")
  fs.mkdirSync(dir, { recursive: true })
  const state = readState(path.join(dir, "server.json"))
  if (state !== undefined && isProcessAlive(state.pid) && (await healthy(state.url))) {
    log(`MLflow UI (already running, pid ${state.pid}): ${state.url}`)
    return 0
  }
  const bin = options.mlflowBin ?? findMlflowBin()
  const port = options.port ?? (process.env.VW2_MLFLOW_PORT ? Number(process.env.VW2_MLFLOW_PORT) : await findFreePort(options.portRange ?? [5500, 5599]))
  const url = `http://127.0.0.1:${port}`
  const store = resolveStore(bin, options.store ?? storeFromEnv(), log)
  const app = resolveApp(bin, options.app ?? appFromEnv(), log)
  const workers = options.workers ?? defaultWorkers()
  const child = spawn(bin, serverArgs(dir, port, workers, store, app), { cwd: dir, stdio: ["ignore", "inherit", "inherit"], env: serverEnv() })
  // vw2 runs started meanwhile reuse this server instead of starting a second one on the same database
  const stateFile = path.join(dir, "server.json")
  fs.writeFileSync(stateFile, JSON.stringify({ pid: child.pid ?? -1, port, url, startedAt: Date.now(), store, app, workers } satisfies ServerState))
  child.once("exit", () => {
    if (readState(stateFile)?.pid === child.pid) fs.rmSync(stateFile, { force: true })
  })
  const stop = () => child.kill("SIGTERM")
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
  waitForHealth(url, child.pid, options.startTimeoutMs ?? 180_000, undefined, port).then(
    () => log(`MLflow UI: ${url}  (backend ${databaseFile(dir)}, ${store} store, ${app} app; Ctrl-C to stop)`),
    (error: Error) => log(error.message)
  )
  return new Promise((resolve) => child.once("exit", (code) => resolve(code ?? 0)))
}
