/**
 * Row gather with a scatter-add gradient computed in plain JS. On the tfjs CPU backend the built-in
 * gradient of `gather` (UnsortedSegmentSum) and the one-hot-matmul alternative both cost far more than
 * the O(rows × width) the gradient needs; this keeps embedding lookups and loss-row selection cheap.
 */
import * as tf from "@tensorflow/tfjs"

/** table [V, D], ids (int) [N] → [N, D]; d table = Σ over rows of the incoming gradient. */
export const gatherRows = (table: tf.Tensor2D, ids: Int32Array): tf.Tensor2D => {
  const [v, d] = table.shape
  for (const id of ids) if (id < 0 || id >= v) throw new RangeError(`gatherRows: id ${id} outside [0, ${v})`)
  const op = tf.customGrad(((t: tf.Tensor) => {
    const value = tf.gather(t, tf.tensor1d(ids, "int32"))
    return {
      value,
      gradFunc: (dy: tf.Tensor) => {
        const g = dy.dataSync() as Float32Array
        const out = new Float32Array(v * d)
        for (let r = 0; r < ids.length; r++) {
          const base = ids[r]! * d
          for (let c = 0; c < d; c++) out[base + c]! += g[r * d + c]!
        }
        return [tf.tensor2d(out, [v, d])]
      }
    }
  }) as unknown as Parameters<typeof tf.customGrad>[0])
  return op(table) as tf.Tensor2D
}
