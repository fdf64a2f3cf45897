/**
 * A linear probe: multinomial logistic regression from code vectors to a label (issue 13 "dldm-probe": what
 * of the ground truth the codes carry, as numbers instead of the paper's UMAP, docs/paper.md "What the paper
 * leaves open"). Features are standardised with the fit set's statistics; full-batch Adam with a small L2
 * penalty. Accuracy is compared with chance = the majority class's share of the scored set.
 */
import * as tf from "@tensorflow/tfjs"

export interface ProbeFit {
  readonly trainAccuracy: number
  readonly testAccuracy: number
  /** majority-class share of the test set */
  readonly chance: number
  readonly classes: number
  readonly trainSize: number
  readonly testSize: number
}

export interface LinearProbeOptions {
  readonly iterations: number
  readonly lr: number
  readonly l2: number
}

/** x: rows of equal length; y: integer labels ≥ 0. Fits on (xTrain, yTrain), scores on (xTest, yTest). */
export const fitLinearProbe = (
  xTrain: ReadonlyArray<ReadonlyArray<number>>,
  yTrain: ReadonlyArray<number>,
  xTest: ReadonlyArray<ReadonlyArray<number>>,
  yTest: ReadonlyArray<number>,
  o: LinearProbeOptions = { iterations: 300, lr: 0.05, l2: 1e-3 }
): ProbeFit => {
  if (xTrain.length === 0 || xTest.length === 0) throw new Error(`linear probe: empty ${xTrain.length === 0 ? "fit" : "test"} set`)
  const classes = Math.max(...yTrain, ...yTest) + 1
  const d = xTrain[0]!.length
  const w = tf.variable(tf.zeros([d, classes]))
  const b = tf.variable(tf.zeros([classes]))
  const opt = tf.train.adam(o.lr)
  try {
    const [xt, xs, yt] = tf.tidy(() => {
      const raw = tf.tensor2d(xTrain.map((r) => [...r]), [xTrain.length, d])
      const { mean, variance } = tf.moments(raw, 0)
      const scale = tf.rsqrt(tf.add(variance, 1e-6))
      const norm = (x: tf.Tensor) => tf.mul(tf.sub(x, mean), scale)
      return [norm(raw), norm(tf.tensor2d(xTest.map((r) => [...r]), [xTest.length, d])), tf.oneHot(tf.tensor1d([...yTrain], "int32"), classes)]
    })
    for (let i = 0; i < o.iterations; i++) {
      const cost = opt.minimize(
        () => tf.add(tf.losses.softmaxCrossEntropy(yt, tf.add(tf.matMul(xt, w), b)), tf.mul(o.l2, tf.sum(tf.square(w)))) as tf.Scalar,
        false,
        [w, b]
      )
      cost?.dispose()
    }
    const accuracy = (x: tf.Tensor2D, y: ReadonlyArray<number>): number => {
      const pred = tf.tidy(() => tf.argMax(tf.add(tf.matMul(x, w), b), 1).dataSync())
      return y.filter((label, i) => pred[i] === label).length / y.length
    }
    const counts = new Map<number, number>()
    for (const label of yTest) counts.set(label, (counts.get(label) ?? 0) + 1)
    const fit = {
      trainAccuracy: accuracy(xt as tf.Tensor2D, yTrain),
      testAccuracy: accuracy(xs as tf.Tensor2D, yTest),
      chance: Math.max(...counts.values()) / yTest.length,
      classes,
      trainSize: yTrain.length,
      testSize: yTest.length
    }
    tf.dispose([xt, xs, yt])
    return fit
  } finally {
    opt.dispose()
    w.dispose()
    b.dispose()
  }
}
