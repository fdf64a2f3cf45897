/** Runs `steps` bench train steps of one spec on the active backend (for `node --cpu-prof` / perf). */
import { buildBenchModel, SPECS } from "../../../bench/models.ts"
import { selectBackend } from "../../nn/src/backend/index.ts"

const [name = "ar-mini", steps = "50"] = process.argv.slice(2)
await selectBackend()
const spec = SPECS.find((s) => s.name === name)
if (spec === undefined) throw new Error(`unknown spec ${name}; known: ${SPECS.map((s) => s.name).join(", ")}`)
const model = buildBenchModel(spec)
for (let i = 0; i < 3; i++) model.step()
const t0 = performance.now()
for (let i = 0; i < Number(steps); i++) model.step()
console.log(`${name}: ${((performance.now() - t0) / Number(steps)).toFixed(2)} ms/step over ${steps} steps`)
model.dispose()
