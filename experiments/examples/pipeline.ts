/**
 * The example DAG: one dataset, two independent model branches (they run in parallel on the local
 * executor), one comparison.
 *
 *   data ─┬─ mlp ──── evalMlp ────┬─ compare
 *         └─ linear ─ evalLinear ─┘
 */
import { definePipeline } from "@vw2/core"
import { compare, evaluate, fit, synthesize } from "./stages.ts"

export const moonsPipeline = definePipeline()
  .step("data", synthesize, {})
  .step("mlp", fit, { dataset: "data.dataset" })
  .step("linear", fit, { dataset: "data.dataset" })
  .step("evalMlp", evaluate, { dataset: "data.dataset", model: "mlp.model" })
  .step("evalLinear", evaluate, { dataset: "data.dataset", model: "linear.model" })
  .step("compare", compare, { a: "evalMlp.report", b: "evalLinear.report" })

export const moonsConfig = {
  data: { trainSize: 400, testSize: 200, noise: 0.15, dataSeed: 7 },
  mlp: { hidden: [16, 16], epochs: 40, learningRate: 0.03, batchSize: 32 },
  linear: { hidden: [], epochs: 40, learningRate: 0.05, batchSize: 32 },
  evalMlp: {},
  evalLinear: {},
  compare: { labels: ["mlp 16x16", "logistic"] }
} as const
