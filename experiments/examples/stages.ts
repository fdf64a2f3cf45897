/**
 * The engine's small, real example pipeline (seconds on a CPU; the VideoWorld 2 stages live in @vw2/pipelines):
 *   synthesize  — a 2-D two-moons classification dataset (train/test), deterministic in `dataSeed`
 *   fit         — a tfjs MLP classifier (hidden: [] is logistic regression), seeded by the trial seed
 *   evaluate    — test accuracy + log-loss, and a decision-boundary SVG marked for upload
 *   compare     — joins two evaluations into a small markdown table
 * Everything is plain files, so every artifact can be inspected under .vw2/store/<hash>/.
 */
import * as tf from "@tensorflow/tfjs"
import { defineStage, StageError } from "@vw2/core"
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

interface Dataset {
  readonly x: ReadonlyArray<readonly [number, number]>
  readonly y: ReadonlyArray<number>
}

// Production mode silences tfjs' "install the node backend" banner, which would fill every worker's log.
tf.enableProdMode()

const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, "utf8")) as T
const writeJson = (file: string, value: unknown) => fs.writeFileSync(file, JSON.stringify(value))

/** mulberry32: deterministic data without depending on tfjs' global RNG state */
const rng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const twoMoons = (n: number, noise: number, random: () => number): Dataset => {
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
  const x: Array<[number, number]> = []
  const y: Array<number> = []
  for (let i = 0; i < n; i++) {
    const label = i % 2
    const t = Math.PI * random()
    const [px, py] = label === 0 ? [Math.cos(t), Math.sin(t)] : [1 - Math.cos(t), 0.5 - Math.sin(t)]
    x.push([px + noise * gauss(), py + noise * gauss()])
    y.push(label)
  }
  return { x, y }
}

export const synthesize = defineStage({
  name: "synthesize-moons",
  version: "1",
  config: Schema.Struct({
    trainSize: Schema.Int.check(Schema.isGreaterThanOrEqualTo(10)),
    testSize: Schema.Int.check(Schema.isGreaterThanOrEqualTo(10)),
    noise: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0)),
    dataSeed: Schema.Int
  }),
  inputs: {},
  outputs: { dataset: "moons-dataset" },
  // the dataset depends on dataSeed only, so every trial seed shares it
  seeded: false,
  run: (ctx, config) =>
    Effect.sync(() => {
      const random = rng(config.dataSeed)
      const dir = ctx.outputDir("dataset")
      writeJson(path.join(dir, "train.json"), twoMoons(config.trainSize, config.noise, random))
      writeJson(path.join(dir, "test.json"), twoMoons(config.testSize, config.noise, random))
      ctx.log(`wrote ${config.trainSize} train / ${config.testSize} test points`)
    })
})

const buildModel = (hidden: ReadonlyArray<number>, seed: number, learningRate: number) => {
  const model = tf.sequential()
  let inputShape: Array<number> | undefined = [2]
  hidden.forEach((units, i) => {
    model.add(tf.layers.dense({ units, activation: "tanh", kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 101 + i }), ...(inputShape ? { inputShape } : {}) }))
    inputShape = undefined
  })
  model.add(tf.layers.dense({ units: 1, activation: "sigmoid", kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 101 + 99 }), ...(inputShape ? { inputShape } : {}) }))
  model.compile({ optimizer: tf.train.adam(learningRate), loss: "binaryCrossentropy" })
  return model
}

const saveModel = async (model: tf.LayersModel, dir: string) => {
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    fs.writeFileSync(path.join(dir, "model.json"), JSON.stringify({ modelTopology: artifacts.modelTopology, weightSpecs: artifacts.weightSpecs }))
    fs.writeFileSync(path.join(dir, "weights.bin"), Buffer.from(artifacts.weightData as ArrayBuffer))
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } }
  }))
}

const loadModel = async (dir: string) => {
  const { modelTopology, weightSpecs } = readJson<{ modelTopology: object; weightSpecs: Array<tf.io.WeightsManifestEntry> }>(path.join(dir, "model.json"))
  const weights = fs.readFileSync(path.join(dir, "weights.bin"))
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology, weightSpecs, weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) }))
}

export const fit = defineStage({
  name: "fit-mlp",
  version: "1",
  config: Schema.Struct({
    hidden: Schema.Array(Schema.Int.check(Schema.isGreaterThan(0))),
    epochs: Schema.Int.check(Schema.isGreaterThan(0)),
    learningRate: Schema.Number.check(Schema.isGreaterThan(0)),
    batchSize: Schema.Int.check(Schema.isGreaterThan(0))
  }),
  inputs: { dataset: "moons-dataset" },
  outputs: { model: "moons-classifier" },
  resources: () => ({ cpus: 1 }),
  run: (ctx, config, inputs) =>
    Effect.tryPromise({
      try: async () => {
        const data = readJson<Dataset>(path.join(inputs.dataset.dir, "train.json"))
        const model = buildModel(config.hidden, ctx.seed, config.learningRate)
        const x = tf.tensor2d(data.x as Array<[number, number]>)
        const y = tf.tensor2d(data.y.map((v) => [v]))
        await model.fit(x, y, {
          epochs: config.epochs,
          batchSize: config.batchSize,
          shuffle: false,
          verbose: 0,
          callbacks: {
            onEpochEnd: async (epoch, logs) => {
              ctx.metrics({ loss: logs?.loss ?? NaN }, epoch)
              ctx.progress(epoch + 1, config.epochs)
              if (ctx.signal.aborted) model.stopTraining = true
            }
          }
        })
        await saveModel(model, ctx.outputDir("model"))
        tf.dispose([x, y])
        model.dispose()
      },
      catch: (cause) => new StageError({ stage: "fit-mlp", message: cause instanceof Error ? cause.message : String(cause), cause })
    })
})

const boundarySvg = (data: Dataset, predict: (points: Array<[number, number]>) => Array<number>): string => {
  const size = 240
  const [x0, x1, y0, y1] = [-1.5, 2.5, -1.0, 1.5]
  const grid: Array<[number, number]> = []
  const cells = 40
  for (let i = 0; i < cells; i++) for (let j = 0; j < cells; j++) grid.push([x0 + ((j + 0.5) * (x1 - x0)) / cells, y1 - ((i + 0.5) * (y1 - y0)) / cells])
  const p = predict(grid)
  const cell = size / cells
  const rects = grid.map((_, k) => `<rect x="${(k % cells) * cell}" y="${Math.floor(k / cells) * cell}" width="${cell}" height="${cell}" fill="${p[k]! > 0.5 ? "#f6c9a8" : "#a8c8f6"}"/>`)
  const dots = data.x.map(([x, y], k) => `<circle cx="${(((x - x0) / (x1 - x0)) * size).toFixed(1)}" cy="${(((y1 - y) / (y1 - y0)) * size).toFixed(1)}" r="2" fill="${data.y[k] === 1 ? "#c0392b" : "#1f4e9c"}"/>`)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">${rects.join("")}${dots.join("")}</svg>\n`
}

export const evaluate = defineStage({
  name: "evaluate-classifier",
  version: "1",
  config: Schema.Struct({}),
  inputs: { dataset: "moons-dataset", model: "moons-classifier" },
  outputs: { report: "classifier-report" },
  seeded: false,
  run: (ctx, _config, inputs) =>
    Effect.tryPromise({
      try: async () => {
        const test = readJson<Dataset>(path.join(inputs.dataset.dir, "test.json"))
        const model = await loadModel(inputs.model.dir)
        const predict = (points: Array<[number, number]>) =>
          tf.tidy(() => Array.from((model.predict(tf.tensor2d(points)) as tf.Tensor).dataSync()))
        const p = predict(test.x as Array<[number, number]>)
        const accuracy = p.filter((v, i) => (v > 0.5 ? 1 : 0) === test.y[i]).length / p.length
        const eps = 1e-7
        const logLoss = -p.reduce((s, v, i) => s + (test.y[i] === 1 ? Math.log(v + eps) : Math.log(1 - v + eps)), 0) / p.length
        ctx.metrics({ accuracy, logLoss }, 0)
        const dir = ctx.outputDir("report")
        writeJson(path.join(dir, "metrics.json"), { accuracy, logLoss, testSize: p.length })
        fs.writeFileSync(path.join(dir, "boundary.svg"), boundarySvg(test, predict))
        ctx.upload("report/boundary.svg")
        model.dispose()
      },
      catch: (cause) => new StageError({ stage: "evaluate-classifier", message: cause instanceof Error ? cause.message : String(cause), cause })
    })
})

export const compare = defineStage({
  name: "compare-reports",
  version: "1",
  config: Schema.Struct({ labels: Schema.Tuple([Schema.String, Schema.String]) }),
  inputs: { a: "classifier-report", b: "classifier-report" },
  outputs: { table: "comparison" },
  seeded: false,
  run: (ctx, config, inputs) =>
    Effect.sync(() => {
      const rows = [inputs.a, inputs.b].map((input, i) => ({ label: config.labels[i]!, ...readJson<{ accuracy: number; logLoss: number }>(path.join(input.dir, "metrics.json")) }))
      const lines = ["| model | accuracy | log-loss |", "|---|---|---|", ...rows.map((r) => `| ${r.label} | ${r.accuracy.toFixed(3)} | ${r.logLoss.toFixed(3)} |`)]
      fs.writeFileSync(path.join(ctx.outputDir("table"), "comparison.md"), lines.join("\n") + "\n")
      ctx.upload("table/comparison.md")
      ctx.metrics({ accuracyGap: rows[0]!.accuracy - rows[1]!.accuracy }, 0)
    })
})
