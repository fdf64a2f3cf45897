/**
 * The step-wise success plot: success rate (%) against step k, one line per task/method. Declared as a
 * Vega-Lite spec, rendered headless to SVG by Vega, rasterised to PNG by resvg (no canvas, no browser).
 */
import { Resvg } from "@resvg/resvg-js"
import * as vega from "vega"
import * as vegaLite from "vega-lite"

export interface StepSeries {
  /** legend label, e.g. "fold-plane" or "VideoWorld 2 / fold-plane" */
  readonly label: string
  /** success rate in % at step 1..K (index 0 is step 1) */
  readonly successPct: ReadonlyArray<number>
}

export const stepSuccessSpec = (series: ReadonlyArray<StepSeries>, title: string): vegaLite.TopLevelSpec => ({
  $schema: "https://vega.github.io/schema/vega-lite/v6.json",
  title,
  width: 420,
  height: 260,
  background: "white",
  data: { values: series.flatMap((s) => s.successPct.map((v, i) => ({ series: s.label, step: i + 1, success: v }))) },
  mark: { type: "line", point: true },
  encoding: {
    x: { field: "step", type: "ordinal", title: "step k" },
    y: { field: "success", type: "quantitative", title: "step-wise success (%)", scale: { domain: [0, 100] } },
    color: { field: "series", type: "nominal", title: null }
  }
})

export const renderSvg = async (spec: vegaLite.TopLevelSpec): Promise<string> => {
  const compiled = vegaLite.compile(spec).spec
  const view = new vega.View(vega.parse(compiled), { renderer: "none" })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

/** PNG bytes of the step-wise success plot. */
export const stepSuccessPng = async (series: ReadonlyArray<StepSeries>, title = "step-wise success"): Promise<Uint8Array> => {
  if (series.length === 0) throw new Error("stepSuccessPng: no series to plot")
  const svg = await renderSvg(stepSuccessSpec(series, title))
  const png = new Resvg(svg, { background: "white", fitTo: { mode: "zoom", value: 2 } }).render().asPng()
  return new Uint8Array(png)
}
