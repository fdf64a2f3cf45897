/**
 * RGB → luma (ITU-R BT.601) replicated to 3 channels, differentiable at any rank.
 * Kept here until @vw2/nn's `grayscale` stops using `tf.tile`, whose gradient tfjs lacks for rank-5 videos.
 */
import * as tf from "@tensorflow/tfjs"

export const grayscale3 = (x: tf.Tensor): tf.Tensor =>
  tf.tidy(() => {
    if (x.shape[x.rank - 1] !== 3) throw new Error(`grayscale: last axis must be RGB (3), got [${x.shape.join(", ")}]`)
    const y = tf.sum(tf.mul(x, tf.tensor1d([0.299, 0.587, 0.114])), -1, true)
    return tf.mul(y, tf.ones([3])) // broadcast, not tile: keeps the gradient defined for rank-5 videos
  })
