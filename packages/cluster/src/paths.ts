/** Where the cluster package finds its Python side: the pinned venv (infra/setup.d/20-ray.sh) and the bridge. */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const repoRoot = path.resolve(fileURLToPath(new URL("../../..", import.meta.url)))

/** python/ holds the `vw2_ray_bridge` package (put on PYTHONPATH when starting the bridge). */
export const bridgePythonPath = fileURLToPath(new URL("../python", import.meta.url))

export const rayVenv = path.join(repoRoot, ".venvs", "ray")

/** The venv's interpreter (`VW2_RAY_PYTHON` overrides); fails naming the setup step when it is missing. */
export const rayPython = (): string => {
  const python = process.env.VW2_RAY_PYTHON ?? path.join(rayVenv, "bin", "python")
  if (!fs.existsSync(python)) throw new Error(`${python}: no Ray venv; run \`bash infra/setup.d/20-ray.sh\` (or npm run setup)`)
  return python
}

/** The venv's `ray` CLI, next to its interpreter. */
export const rayCli = (): string => path.join(path.dirname(rayPython()), "ray")
