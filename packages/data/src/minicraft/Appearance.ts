/**
 * Appearance of a MiniCraft episode: everything that changes how a frame looks but carries no task
 * information (table colour and texture, paper colour and pattern, lighting, camera, distractors, skin tone,
 * sensor noise). Train and test draw each appearance factor from disjoint catalogues, so the test split shows
 * unseen tables, papers, distractors and lighting — the paper's cross-environment split in miniature
 * (docs/paper.md, "Evaluation"). The camera geometry of test lies inside the train ranges (`VIEW_RANGES`).
 */
import { Schema } from "effect"
import type { Rng } from "./Rng.ts"
import { rngFor } from "./Rng.ts"
import type { Rgb } from "./Raster.ts"

export type Split = "train" | "test"
export const SPLITS: ReadonlyArray<Split> = ["train", "test"]

const Color = Schema.Tuple([Schema.Number, Schema.Number, Schema.Number])
const TableTexture = Schema.Literals(["plain", "grain", "stripes", "checker", "dots"])
const PaperPattern = Schema.Literals(["plain", "grid", "stripes", "dots"])
const DistractorShape = Schema.Literals(["cup", "pen", "book", "ruler"])
export type TableTexture = typeof TableTexture.Type
export type PaperPattern = typeof PaperPattern.Type
export type DistractorShape = typeof DistractorShape.Type

export const Distractor = Schema.Struct({
  shape: DistractorShape,
  color: Color,
  /** world position of the centre, size (world units) and rotation (radians) */
  x: Schema.Number,
  y: Schema.Number,
  size: Schema.Number,
  rotation: Schema.Number
})
export type Distractor = typeof Distractor.Type

/** Stored in every episode's meta.json (`appearance`), so the judge can re-render the episode's scene. */
export const Appearance = Schema.Struct({
  table: Schema.Struct({ name: Schema.String, color: Color, texture: TableTexture, textureScale: Schema.Number, textureAngle: Schema.Number, contrast: Schema.Number }),
  paper: Schema.Struct({ name: Schema.String, color: Color, backColor: Color, pattern: PaperPattern, patternScale: Schema.Number }),
  view: Schema.Struct({ name: Schema.String, offsetX: Schema.Number, offsetY: Schema.Number, zoom: Schema.Number, rotation: Schema.Number }),
  lighting: Schema.Struct({ name: Schema.String, brightness: Schema.Number, tint: Color, gradient: Schema.Number, gradientAngle: Schema.Number }),
  skin: Schema.Struct({ name: Schema.String, color: Color }),
  distractors: Schema.Array(Distractor),
  /**
   * where the arm of a bare fingertip comes from (world coordinates, beyond the right edge of the view);
   * episodes give each step its own arm line (Timeline's `armLine`)
   */
  armAnchor: Schema.Struct({ x: Schema.Number, y: Schema.Number }),
  /** sensor noise: amplitude in uint8 steps, and its seed */
  noise: Schema.Struct({ amplitude: Schema.Number, seed: Schema.Number })
})
export type Appearance = typeof Appearance.Type

/** Reads an appearance back from JSON (e.g. meta.json), naming `source` in the error. */
export const decodeAppearance = (value: unknown, source: string): Appearance => {
  try {
    return Schema.decodeUnknownSync(Appearance)(value)
  } catch (e) {
    throw new Error(`${source}: appearance does not match the MiniCraft appearance schema: ${(e as Error).message}`)
  }
}

const rgb = (r: number, g: number, b: number): Rgb => [r / 255, g / 255, b / 255]

interface Named<A> {
  readonly name: string
  readonly value: A
}

/** Catalogues: each split has its own entries; none is shared between train and test. */
const TABLE_COLORS: Record<Split, ReadonlyArray<Named<Rgb>>> = {
  train: [
    { name: "slate", value: rgb(112, 118, 124) },
    { name: "felt-green", value: rgb(52, 106, 72) },
    { name: "navy", value: rgb(46, 60, 102) },
    { name: "walnut", value: rgb(92, 62, 44) }
  ],
  test: [
    { name: "teal", value: rgb(36, 122, 128) },
    { name: "maroon", value: rgb(118, 38, 52) },
    { name: "marble", value: rgb(200, 202, 206) }
  ]
}
const TABLE_TEXTURES: Record<Split, ReadonlyArray<TableTexture>> = { train: ["plain", "grain", "stripes"], test: ["checker", "dots"] }

const PAPER_COLORS: Record<Split, ReadonlyArray<Named<Rgb>>> = {
  train: [
    { name: "lemon", value: rgb(242, 222, 84) },
    { name: "sky", value: rgb(118, 178, 236) },
    { name: "rose", value: rgb(236, 128, 166) }
  ],
  test: [
    { name: "lime", value: rgb(146, 212, 84) },
    { name: "mint", value: rgb(96, 200, 196) },
    { name: "lavender", value: rgb(172, 138, 224) }
  ]
}
const PAPER_PATTERNS: Record<Split, ReadonlyArray<PaperPattern>> = { train: ["plain", "grid"], test: ["stripes", "dots"] }

const SKINS: ReadonlyArray<Named<Rgb>> = [
  { name: "light", value: rgb(232, 184, 152) },
  { name: "medium", value: rgb(198, 140, 102) },
  { name: "deep", value: rgb(150, 98, 66) }
]

const DISTRACTORS: Record<Split, ReadonlyArray<DistractorShape>> = { train: ["cup", "pen"], test: ["book", "ruler"] }
const DISTRACTOR_COLORS: ReadonlyArray<Rgb> = [rgb(230, 230, 230), rgb(40, 40, 40), rgb(200, 60, 50), rgb(60, 120, 200), rgb(90, 170, 90)]

/**
 * Where a distractor may lie: the top-left corner, which neither the tray, the figures nor the sheets' big
 * flaps use (v2 keeps clutter out of the work area: one small item, away from every step's motion).
 */
const DISTRACTOR_SLOT = { x: -0.86, y: -0.86 }

/**
 * Camera geometry per split. Geometry is not an appearance factor: a small model cannot extrapolate to
 * unseen rotations or zooms, so the test ranges lie inside the train ranges (test views are new draws,
 * not a new regime); what is unseen in test is the look (tables, papers, lighting, distractors).
 * Rotation in degrees; test rotations are drawn with either sign from `rotationDeg`.
 */
export const VIEW_RANGES: Record<Split, { readonly rotationDeg: readonly [number, number]; readonly zoom: readonly [number, number]; readonly offset: readonly [number, number] }> = {
  train: { rotationDeg: [-8, 8], zoom: [0.94, 1.06], offset: [-0.05, 0.05] },
  test: { rotationDeg: [3, 7], zoom: [0.95, 1.03], offset: [-0.04, 0.04] }
}

const mix = (a: Rgb, b: Rgb, t: number): Rgb => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
const WHITE: Rgb = [1, 1, 1]
const deg = Math.PI / 180
const signed = (rng: Rng, lo: number, hi: number): number => (rng.next() < 0.5 ? -1 : 1) * rng.uniform(lo, hi)

/** Draws an appearance of `split`'s domain. */
export const sampleAppearance = (split: Split, rng: Rng): Appearance => {
  const tableColor = rng.pick(TABLE_COLORS[split])
  const texture = rng.pick(TABLE_TEXTURES[split])
  const paperColor = rng.pick(PAPER_COLORS[split])
  const pattern = rng.pick(PAPER_PATTERNS[split])
  const range = VIEW_RANGES[split]
  const view = {
    name: "tabletop",
    offsetX: rng.uniform(...range.offset),
    offsetY: rng.uniform(...range.offset),
    zoom: rng.uniform(...range.zoom),
    rotation: (split === "train" ? rng.uniform(...range.rotationDeg) : signed(rng, ...range.rotationDeg)) * deg
  }
  const lighting =
    split === "train"
      ? { name: "warm", brightness: rng.uniform(0.95, 1.05), tint: [rng.uniform(1.0, 1.05), rng.uniform(0.97, 1.0), rng.uniform(0.88, 0.94)] as Rgb, gradient: rng.uniform(0, 0.12), gradientAngle: rng.uniform(0, 2 * Math.PI) }
      : { name: "cool", brightness: rng.uniform(0.86, 0.94), tint: [rng.uniform(0.88, 0.93), rng.uniform(0.98, 1.02), rng.uniform(1.04, 1.1)] as Rgb, gradient: rng.uniform(0.15, 0.25), gradientAngle: rng.uniform(0, 2 * Math.PI) }
  const skin = rng.pick(SKINS)
  const distractors: Distractor[] = [
    {
      shape: rng.pick(DISTRACTORS[split]),
      color: rng.pick(DISTRACTOR_COLORS),
      x: DISTRACTOR_SLOT.x + rng.uniform(-0.04, 0.04),
      y: DISTRACTOR_SLOT.y + rng.uniform(-0.04, 0.04),
      size: rng.uniform(0.08, 0.11),
      rotation: rng.uniform(0, Math.PI)
    }
  ]
  return {
    table: { name: tableColor.name, color: tableColor.value, texture, textureScale: rng.uniform(0.12, 0.22), textureAngle: rng.uniform(0, Math.PI), contrast: rng.uniform(0.08, 0.16) },
    paper: { name: paperColor.name, color: paperColor.value, backColor: mix(paperColor.value, WHITE, 0.55), pattern, patternScale: rng.uniform(0.09, 0.14) },
    view,
    lighting,
    skin: { name: skin.name, color: skin.value },
    distractors,
    armAnchor: { x: 1.45, y: rng.uniform(0.2, 0.7) },
    noise: { amplitude: rng.int(4), seed: rng.int(0x7fffffff) }
  }
}

/**
 * The factor names that make up a domain. Train and test never share a table, paper or lighting name; the
 * view is named for the record only (both splits draw "tabletop" views from nested ranges).
 */
export const domainFactors = (appearance: Appearance): { readonly table: string; readonly paper: string; readonly view: string; readonly lighting: string } => ({
  table: `${appearance.table.name}/${appearance.table.texture}`,
  paper: `${appearance.paper.name}/${appearance.paper.pattern}`,
  view: appearance.view.name,
  lighting: appearance.lighting.name
})

export const domainOf = (appearance: Appearance): string => {
  const f = domainFactors(appearance)
  return `table=${f.table};paper=${f.paper};view=${f.view};light=${f.lighting}`
}

/** The appearance of episode `index` of `task` in `split` for dataset seed `seed` (the generator's draw). */
export const episodeAppearance = (seed: number, task: string, split: Split, index: number): Appearance =>
  sampleAppearance(split, rngFor(seed, task, split, String(index), "appearance"))
