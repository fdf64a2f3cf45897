/**
 * Backward bilinear warp of one frame by per-pixel flow fields: out[t](p) = frame(p + flow[t](p)), sampled
 * bilinearly, coordinates clamped to the border. Differentiable in the flow (through the bilinear weights),
 * which is what the low-fi decoder's `flowWarp` output needs. Hand-written because tfjs has no grid-sample
 * op: four batched gathers plus a lerp.
 */
import * as tf from "@tensorflow/tfjs"

/** frame [B, H, W, C], flow [B, T, H, W, 2] (dx, dy in pixels) → [B, T, H, W, C] */
export function warpByFlow(frame: tf.Tensor4D, flow: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, h, w, c] = frame.shape
    const t = flow.shape[1]
    if (flow.shape[0] !== b || flow.shape[2] !== h || flow.shape[3] !== w || flow.shape[4] !== 2) {
      throw new Error(`warpByFlow: flow must be [${b}, T, ${h}, ${w}, 2], got [${flow.shape.join(", ")}]`)
    }
    const gx = tf.reshape(tf.range(0, w, 1, "float32"), [1, 1, 1, w])
    const gy = tf.reshape(tf.range(0, h, 1, "float32"), [1, 1, h, 1])
    const [fx, fy] = tf.unstack(flow, 4) as [tf.Tensor4D, tf.Tensor4D]
    const x = tf.clipByValue(tf.add(gx, fx), 0, w - 1)
    const y = tf.clipByValue(tf.add(gy, fy), 0, h - 1)
    // the corner indices carry no gradient, the weights do; they are rebuilt off the tape because tfjs
    // differentiates gather's integer indices whenever a taped path reaches them (even through a detach)
    const offTape = (v: tf.Tensor) => tf.tensor(tf.floor(v).dataSync(), v.shape, "float32")
    const x0 = offTape(x)
    const y0 = offTape(y)
    const wx = tf.expandDims(tf.sub(x, x0), -1)
    const wy = tf.expandDims(tf.sub(y, y0), -1)
    const x0i = tf.cast(x0, "int32")
    const y0i = tf.cast(y0, "int32")
    const int = (n: number) => tf.scalar(n, "int32")
    const x1i = tf.minimum(tf.add(x0i, int(1)), int(w - 1))
    const y1i = tf.minimum(tf.add(y0i, int(1)), int(h - 1))
    const flat = tf.reshape(frame, [b, h * w, c])
    const at = (yy: tf.Tensor, xx: tf.Tensor) =>
      tf.reshape(tf.gather(flat, tf.reshape(tf.add(tf.mul(yy, int(w)), xx), [b, t * h * w]), 1, 1), [b, t, h, w, c])
    const top = tf.add(tf.mul(at(y0i, x0i), tf.sub(1, wx)), tf.mul(at(y0i, x1i), wx))
    const bottom = tf.add(tf.mul(at(y1i, x0i), tf.sub(1, wx)), tf.mul(at(y1i, x1i), wx))
    return tf.add(tf.mul(top, tf.sub(1, wy)), tf.mul(bottom, wy)) as tf.Tensor5D
  })
}
