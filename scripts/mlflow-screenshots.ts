/**
 * Screenshots of the MLflow UI for docs/mlflow-ui.md, taken against a real server: starts vw2's embedded
 * MLflow server in a temporary VW2_HOME, runs the example sweep (experiments/examples/sweep.ts: 3 learning
 * rates × 2 seeds) into it, then drives headless Chromium over the Chrome DevTools Protocol (Node's own
 * WebSocket, no npm dependency) and writes:
 *   runs-tree.png        the experiment's runs list in the model-training view, run tree expanded
 *   sweep-chart.png      the chart view comparing the six trial runs
 *   sweep-compare.png    MLflow's compare-runs page for the six trials (parallel coordinates)
 *   eval-artifacts.png   an eval stage run's Artifacts tab
 * Usage: npx node scripts/mlflow-screenshots.ts [--out docs/images] [--keep] [--home DIR]
 *   --keep leaves the server running and the temporary VW2_HOME in place, and prints the URL.
 *   --home DIR uses that VW2_HOME (kept); the sweep runs only when its MLflow has no such experiment yet.
 * Needs Chromium or Chrome (VW2_CHROMIUM, else chromium/google-chrome on PATH):
 *   VW2_SETUP_CHROMIUM=1 bash infra/setup.d/50-chromium.sh
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { parseArgs } from "node:util"
import { ensureLocalServer, stopLocalServer } from "../packages/tracking/src/LocalServer.ts"

const repoRoot = path.resolve(import.meta.dirname, "..")
const experimentFile = "experiments/examples/sweep.ts"
const experimentName = "moons-lr-sweep"
const viewport = { width: 1400, height: 900 }
const maxPngBytes = 300 * 1024

const { values } = parseArgs({ options: { out: { type: "string", default: "docs/images" }, keep: { type: "boolean", default: false }, home: { type: "string" } } })
const outDir = path.resolve(values.out)

const findChromium = (): string => {
  for (const candidate of [process.env.VW2_CHROMIUM, "chromium", "chromium-browser", "google-chrome-stable", "google-chrome"]) {
    if (candidate === undefined || candidate === "") continue
    if (spawnSync(candidate, ["--version"], { stdio: "ignore" }).status === 0) return candidate
  }
  console.error("no Chromium found: VW2_SETUP_CHROMIUM=1 bash infra/setup.d/50-chromium.sh (or set VW2_CHROMIUM)")
  process.exit(2)
}

// ---- MLflow REST: find the runs to show ---------------------------------------------------------------

interface MlflowRun {
  readonly info: { readonly run_id: string; readonly run_name: string; readonly experiment_id: string }
  readonly data: { readonly tags?: ReadonlyArray<{ key: string; value: string }> }
}
const tag = (run: MlflowRun, key: string): string | undefined => run.data.tags?.find((t) => t.key === key)?.value

const mlflowPost = async <A>(url: string, endpoint: string, body: unknown): Promise<A> => {
  const response = await fetch(`${url}/api/2.0/mlflow/${endpoint}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  if (!response.ok) throw new Error(`${endpoint}: HTTP ${response.status} ${await response.text()}`)
  return (await response.json()) as A
}

const findRuns = async (url: string) => {
  const { experiments = [] } = await mlflowPost<{ experiments?: ReadonlyArray<{ experiment_id: string; name: string }> }>(url, "experiments/search", { max_results: 100 })
  const experiment = experiments.find((e) => e.name === experimentName)
  if (experiment === undefined) throw new Error(`experiment ${experimentName} not found on ${url}`)
  const { runs = [] } = await mlflowPost<{ runs?: ReadonlyArray<MlflowRun> }>(url, "runs/search", { experiment_ids: [experiment.experiment_id], max_results: 1000 })
  const parentOf = (run: MlflowRun) => tag(run, "mlflow.parentRunId")
  const root = runs.find((run) => parentOf(run) === undefined)
  if (root === undefined) throw new Error("no experiment (root) run")
  const trials = runs.filter((run) => parentOf(run) === root.info.run_id)
  // the last by name (`evalMlp · learningRate=0.1 seed=1`): the same run each time the script runs
  const evalRun = runs.filter((run) => tag(run, "vw2.step") === "evalMlp" && tag(run, "vw2.cache") === "miss")
    .sort((a, b) => a.info.run_name.localeCompare(b.info.run_name)).at(-1)
  if (trials.length === 0 || evalRun === undefined) throw new Error(`expected trial runs and an evalMlp stage run, got ${runs.length} runs`)
  return { experimentId: experiment.experiment_id, root, trials, evalRun, count: runs.length }
}

const hasExperiment = async (url: string): Promise<boolean> => {
  const { experiments = [] } = await mlflowPost<{ experiments?: ReadonlyArray<{ name: string }> }>(url, "experiments/search", { max_results: 100 })
  return experiments.some((e) => e.name === experimentName)
}

/** `vw2 run` of the example sweep, logging to the server started above (CI=1: plain progress lines). */
const runSweep = (home: string, trackingUri: string): void => {
  const run = spawnSync(process.execPath, [path.join(repoRoot, "packages/cli/src/bin.ts"), "run", experimentFile], {
    cwd: repoRoot,
    env: { ...process.env, VW2_HOME: home, MLFLOW_TRACKING_URI: trackingUri, CI: "1" },
    stdio: ["ignore", "inherit", "inherit"]
  })
  if (run.status !== 0) throw new Error(`vw2 run ${experimentFile} exited ${run.status}`)
}

// ---- Chrome DevTools Protocol ---------------------------------------------------------------------------

interface EvaluateResult {
  readonly result: { readonly value?: unknown }
  readonly exceptionDetails?: { readonly text: string; readonly exception?: { readonly description?: string } }
}

class Cdp {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  private readonly socket: WebSocket
  private constructor(socket: WebSocket) {
    this.socket = socket
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } }
      const waiter = message.id === undefined ? undefined : this.pending.get(message.id)
      if (waiter === undefined) return
      this.pending.delete(message.id!)
      if (message.error) waiter.reject(new Error(message.error.message))
      else waiter.resolve(message.result)
    })
    socket.addEventListener("close", () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error("Chromium closed the DevTools connection"))
      this.pending.clear()
    })
  }
  static async connect(url: string): Promise<Cdp> {
    const socket = new WebSocket(url)
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve, { once: true })
      socket.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)), { once: true })
    })
    return new Cdp(socket)
  }
  send<A = unknown>(method: string, params: Record<string, unknown> = {}): Promise<A> {
    const id = this.nextId++
    this.socket.send(JSON.stringify({ id, method, params }))
    return new Promise((resolve, reject) => this.pending.set(id, { resolve: (v) => resolve(v as A), reject }))
  }
  /** Evaluates `expression` in the page (awaiting promises) and returns its JSON value. */
  async evaluate<A>(expression: string): Promise<A> {
    const result = await this.send<EvaluateResult>("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true })
    if (result.exceptionDetails) throw new Error(`page: ${result.exceptionDetails.exception?.description ?? result.exceptionDetails.text}`)
    return result.result.value as A
  }
  close() {
    this.socket.close()
  }
}

const launchChromium = async (bin: string, profileDir: string): Promise<{ browser: ChildProcess; page: Cdp }> => {
  const browser = spawn(bin, [
    "--headless=new", "--remote-debugging-port=0", `--user-data-dir=${profileDir}`,
    `--window-size=${viewport.width},${viewport.height}`, "--hide-scrollbars", "--no-first-run", "--no-default-browser-check",
    "--disable-gpu", "--disable-dev-shm-usage", "--lang=en-US",
    // the sandbox needs user namespaces, which containers and root lack
    ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
    "about:blank"
  ], { stdio: "ignore" })
  const portFile = path.join(profileDir, "DevToolsActivePort")
  for (let i = 0; i < 300 && !fs.existsSync(portFile); i++) await sleep(100)
  if (!fs.existsSync(portFile)) throw new Error(`${bin} did not open a DevTools port in 30 s`)
  const port = fs.readFileSync(portFile, "utf8").split("\n")[0]
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as ReadonlyArray<{ type: string; webSocketDebuggerUrl: string }>
  const target = targets.find((t) => t.type === "page")
  if (target === undefined) throw new Error("Chromium has no page target")
  const page = await Cdp.connect(target.webSocketDebuggerUrl)
  await page.send("Page.enable")
  await page.send("Runtime.enable")
  await page.send("Emulation.setDeviceMetricsOverride", { ...viewport, deviceScaleFactor: 1, mobile: false })
  return { browser, page }
}

/** Waits until `predicate` (a page expression) is true; the SPA renders long after the load event. */
const waitFor = async (page: Cdp, predicate: string, what: string, timeoutMs = 60_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await page.evaluate<boolean>(`(() => { try { return Boolean(${predicate}) } catch { return false } })()`)) return
    await sleep(250)
  }
  const text = await page.evaluate<string>("document.body?.innerText.slice(0, 2000) ?? ''")
  throw new Error(`timed out waiting for ${what}; the page shows:\n${text}`)
}

const pageText = (needle: string) => `document.body.innerText.includes(${JSON.stringify(needle)})`

/** Drags the right edge of the runs table's "Run Name" header by `dx` pixels (ag-grid's resize handle). */
const widenRunNameColumn = async (page: Cdp, dx: number) => {
  const box = await page.evaluate<{ x: number; y: number } | null>(`(() => {
    const handle = document.querySelector('.ag-header-cell[col-id="attributes.\\u0060Run Name\\u0060"] .ag-header-cell-resize')
    const r = handle?.getBoundingClientRect()
    // its right half lies under the next header cell: grab its left edge
    return r ? { x: r.x + 2, y: r.y + r.height / 2 } : null
  })()`)
  if (box === null) throw new Error("no resize handle on the Run Name column")
  const mouse = (type: string, x: number, buttons = 1) => page.send("Input.dispatchMouseEvent", { type, x, y: box.y, button: "left", buttons, clickCount: 1 })
  await mouse("mousePressed", box.x)
  for (let step = 1; step <= 10; step++) await mouse("mouseMoved", box.x + (dx * step) / 10)
  await mouse("mouseReleased", box.x + dx, 0)
  await sleep(300)
  const width = await page.evaluate<number>(`document.querySelector('.ag-header-cell[col-id="attributes.\\u0060Run Name\\u0060"]')?.getBoundingClientRect().width ?? 0`)
  if (width < 190 + dx / 2) console.warn(`warning: the Run Name column is ${width}px wide after the drag: names may be cut`)
}

/** Clicks the element whose own text is exactly `text` (artifact tree nodes, tabs). */
const clickText = async (page: Cdp, text: string) => {
  const found = await page.evaluate<boolean>(`(() => {
    // the innermost element with exactly that text (the last in document order is the deepest)
    const node = [...document.querySelectorAll('body *')].filter((e) => e.textContent?.trim() === ${JSON.stringify(text)}).at(-1)
    node?.click()
    return node !== undefined
  })()`)
  if (!found) throw new Error(`nothing on the page reads ${JSON.stringify(text)}`)
  await sleep(1000)
}

const typeInto = async (page: Cdp, selector: string, text: string) => {
  const found = await page.evaluate<boolean>(`(() => { const e = document.querySelector(${JSON.stringify(selector)}); e?.focus(); return e !== null })()`)
  if (!found) throw new Error(`no ${selector} on the page`)
  await page.send("Input.insertText", { text })
}

/** MLflow 3.17 opens its assistant panel beside every page; it only takes room in a screenshot. */
const closeAssistant = async (page: Cdp) => {
  await page.evaluate(`document.querySelector('button[data-component-id="mlflow.assistant.chat_panel.close"]')?.click()`)
  await sleep(500)
}

const screenshot = async (page: Cdp, file: string): Promise<number> => {
  await sleep(750) // let charts finish their transitions
  const { data } = await page.send<{ data: string }>("Page.captureScreenshot", { format: "png", captureBeyondViewport: false })
  const png = Buffer.from(data, "base64")
  fs.writeFileSync(file, png)
  if (png.length > maxPngBytes) console.warn(`warning: ${file} is ${(png.length / 1024).toFixed(0)} KB (> ${maxPngBytes / 1024} KB)`)
  return png.length
}

const navigate = async (page: Cdp, url: string) => {
  await page.send("Page.navigate", { url })
  await waitFor(page, "document.readyState === 'complete'", `load of ${url}`)
}

// ---- the four views ------------------------------------------------------------------------------------

const main = async () => {
  const chromium = findChromium()
  const home = values.home === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), "vw2-mlflow-shots-")) : path.resolve(values.home)
  const keep = values.keep || values.home !== undefined
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-chromium-"))
  const started = Date.now()
  let browser: ChildProcess | undefined
  try {
    // started here, not by `vw2 run`: the run then logs straight to it rather than spooling and replaying
    const server = await ensureLocalServer({ home, log: (m) => console.log(m) })
    console.log(`MLflow server ${server.url} (VW2_HOME=${home})`)
    if (values.home === undefined || !(await hasExperiment(server.url))) runSweep(home, server.url)
    const { experimentId, trials, evalRun, count } = await findRuns(server.url)
    console.log(`experiment ${experimentId}: ${count} runs, ${trials.length} trials; eval run ${evalRun.info.run_name}`)

    const launched = await launchChromium(chromium, profileDir)
    browser = launched.browser
    const page = launched.page
    fs.mkdirSync(outDir, { recursive: true })
    const ui = `${server.url}/#/experiments/${experimentId}`
    const shots: Array<[string, number]> = []

    // (1) runs list, model-training view: the experiment run and its first trial expanded show the tree
    await navigate(page, `${ui}/runs?workflowType=machine_learning`)
    await waitFor(page, `document.querySelectorAll('[role="row"] [data-component-id*="runnamecellrenderer"]').length > 0`, "the runs list")
    await closeAssistant(page)
    for (let level = 0; level < 2; level++) {
      // the first collapsed expander ("+" icon) in the run-name column; expanding reveals the next level
      const expanded = await page.evaluate<boolean>(`(() => {
        const plus = [...document.querySelectorAll('[role="row"] button[data-component-id*="runnamecellrenderer"]')]
          .find((b) => b.querySelector('path')?.getAttribute('d')?.startsWith('M7.25 7.25V4.5'))
        plus?.click()
        return plus !== undefined
      })()`)
      if (!expanded) throw new Error(`no run to expand at level ${level}: is the run tree nested?`)
      await sleep(1500)
    }
    await widenRunNameColumn(page, 220)
    shots.push(["runs-tree.png", await screenshot(page, path.join(outDir, "runs-tree.png"))])

    // (2) chart view of the trial runs (compareRunsMode=CHART renders the charts without a click)
    // trial runs only (they carry vw2.trial), best first; ordering by a metric also un-nests them from the parent
    const trialsOnly = encodeURIComponent("tags.`vw2.trial` LIKE '%'")
    const byAccuracy = encodeURIComponent("metrics.`evalMlp/accuracy`")
    await navigate(page, `${ui}/runs?workflowType=machine_learning&compareRunsMode=CHART&searchFilter=${trialsOnly}&orderByKey=${byAccuracy}&orderByAsc=false`)
    await waitFor(page, pageText("Add chart"), "the chart view")
    await closeAssistant(page)
    await typeInto(page, 'input[placeholder="Search metric charts"]', "evalMlp/")
    await waitFor(page, pageText("evalMlp/accuracy") + " && " + pageText("evalMlp/logLoss"), "the evalMlp charts")
    await sleep(2000) // the bars are drawn after the chart cards
    shots.push(["sweep-chart.png", await screenshot(page, path.join(outDir, "sweep-chart.png"))])

    // (3) MLflow's compare-runs page for the trials: a parallel-coordinates plot of swept param → metric
    const trialIds = encodeURIComponent(JSON.stringify(trials.map((t) => t.info.run_id)))
    await navigate(page, `${server.url}/#/compare-runs?runs=${trialIds}&experiments=${encodeURIComponent(JSON.stringify([experimentId]))}&workflowType=machine_learning`)
    await waitFor(page, pageText("Parallel Coordinates Plot") + " && " + pageText("mlp.learningRate"), "the compare-runs page")
    await closeAssistant(page)
    await sleep(2000) // the plot draws after the table
    shots.push(["sweep-compare.png", await screenshot(page, path.join(outDir, "sweep-compare.png"))])

    // (4) an eval stage run's artifacts
    await navigate(page, `${ui}/runs/${evalRun.info.run_id}/artifacts?workflowType=machine_learning`)
    await waitFor(page, pageText("manifest.json"), "the artifact list")
    await closeAssistant(page)
    await clickText(page, "report")
    await clickText(page, "boundary.svg")
    await sleep(1500) // the preview loads the file
    shots.push(["eval-artifacts.png", await screenshot(page, path.join(outDir, "eval-artifacts.png"))])

    page.close()
    for (const [name, bytes] of shots) console.log(`${path.join(values.out, name)}  ${(bytes / 1024).toFixed(0)} KB`)
    console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    if (keep) console.log(`kept: ${ui}/runs?workflowType=machine_learning  (VW2_HOME=${home}; the server stops after VW2_MLFLOW_IDLE_MINUTES without a vw2 client, or: kill -- -${server.pid})`)
  } finally {
    if (browser !== undefined && browser.exitCode === null) {
      // wait for it to exit: a closing Chromium still writes into its profile directory
      const exited = new Promise((resolve) => browser!.once("exit", resolve))
      browser.kill("SIGTERM")
      await Promise.race([exited, sleep(10_000)])
    }
    if (!keep) {
      await stopLocalServer({ home })
      fs.rmSync(home, { recursive: true, force: true })
    }
    fs.rmSync(profileDir, { recursive: true, force: true })
  }
}

await main()
