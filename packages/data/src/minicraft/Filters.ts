/**
 * Image filters shared by the exact judge (its blurred references) and the classifier judge's degradations, on
 * interleaved RGB frames [H, W, 3].
 */

/**
 * One pass of the 3×3 binomial filter ([1 2 1] ⊗ [1 2 1] / 16, renormalised at the borders) from `src` into `out`;
 * a Uint8Array output is rounded to the nearest level.
 */
export const binomialBlurInto = (src: ArrayLike<number>, out: Uint8Array | Float32Array, width: number, height: number): void => {
  const round = out instanceof Uint8Array
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0
        let weight = 0
        for (let dy = -1; dy <= 1; dy++) {
          const yy = y + dy
          if (yy < 0 || yy >= height) continue
          for (let dx = -1; dx <= 1; dx++) {
            const xx = x + dx
            if (xx < 0 || xx >= width) continue
            const w = (dx === 0 ? 2 : 1) * (dy === 0 ? 2 : 1)
            sum += w * src[(yy * width + xx) * 3 + c]!
            weight += w
          }
        }
        out[(y * width + x) * 3 + c] = round ? Math.round(sum / weight) : sum / weight
      }
    }
  }
}
