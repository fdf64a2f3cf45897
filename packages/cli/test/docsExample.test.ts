/**
 * The experiment file docs/experiments.md shows ("Writing your own experiment file") is run as written,
 * from a directory outside the repository, with the commands the docs give: the docs cannot drift from
 * what the engine accepts.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { sandbox, vw2 } from "./cliHarness.ts"

const docs = fs.readFileSync(new URL("../../../docs/experiments.md", import.meta.url), "utf8")
const exampleBlock = (marker: string): string => {
  const at = docs.indexOf(`<!-- docs-example: ${marker}`)
  if (at < 0) throw new Error(`docs/experiments.md has no docs-example ${marker}`)
  const match = /```ts\n([\s\S]*?)```/.exec(docs.slice(at))
  if (match === null) throw new Error(`docs-example ${marker} is not followed by a ts block`)
  return match[1]!
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw2-docs-example-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

describe("docs/experiments.md: writing your own experiment file", () => {
  it("plans, runs, caches and validates as the docs say", () => {
    const file = path.join(dir, "word-count.ts")
    fs.writeFileSync(file, exampleBlock("user-experiment"))
    const box = sandbox("docs-example")

    const plan = vw2(box, ["plan", file, "--json"])
    expect(plan.status).toBe(0)
    expect(JSON.parse(plan.stdout).summary).toMatchObject({ trials: 3, invocations: 4, toRun: 4 })

    const first = vw2(box, ["run", file, "--no-track"])
    expect(first.status).toBe(0)
    expect(first.stdout).toContain("4 ran, 0 cached")
    const second = vw2(box, ["run", file, "--no-track"])
    expect(second.status).toBe(0)
    expect(second.stdout).toContain("0 ran, 4 cached")

    const top2 = JSON.parse(plan.stdout).trials.find((t: { assignments: Record<string, unknown> }) => t.assignments["top.k"] === 2)
    expect(fs.readFileSync(path.join(box.home, "store", top2.invocations.top, "report", "top.md"), "utf8")).toBe("- the: 3\n- and: 2\n")

    const bad = vw2(box, ["run", file, "--set", "top.k=0"])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain(`${file}: invalid config`)
    expect(bad.stderr).toContain("top.k: Expected a value greater than 0, got 0")

    const rerun = vw2(box, ["plan", file, "--json", "--set", "count.minLength=4"])
    const statuses = JSON.parse(rerun.stdout).invocations.map((i: { step: string; status: string }) => `${i.step}:${i.status}`)
    expect(statuses).toEqual(["count:to-run", "top:to-run", "top:to-run", "top:to-run"])
  })
})
