/** A real dataset in the shared episode layout (written with @vw2/data). */
import { DatasetWriter } from "@vw2/data"

/** Episodes of a coloured square sliding over a gradient, 16×16, `frames` frames each. */
export const writeSquaresDataset = (dir: string, episodes: { train: number; test: number }, frames = 12, size = 16): void => {
  const writer = new DatasetWriter(dir, { name: "squares", source: "test", height: size, width: size, fps: 8 })
  let n = 0
  for (const split of ["train", "test"] as const) {
    for (let e = 0; e < episodes[split]; e++, n++) {
      const ep = writer.beginEpisode({ id: `sq-${split}-${e}`, split, task: "slide", instruction: "slide the square", domain: "d0" })
      const colour = [200 - 40 * (n % 3), 60 + 50 * (n % 2), 40 + 70 * (n % 3)]
      for (let t = 0; t < frames; t++) {
        const rgb = new Uint8Array(size * size * 3)
        for (let y = 0; y < size; y++)
          for (let x = 0; x < size; x++) {
            const inside = y >= 4 && y < 10 && x >= (t + e) % (size - 6) && x < ((t + e) % (size - 6)) + 6
            const i = (y * size + x) * 3
            rgb[i] = inside ? colour[0]! : 20 + 8 * y
            rgb[i + 1] = inside ? colour[1]! : 30
            rgb[i + 2] = inside ? colour[2]! : 40 + 6 * x
          }
        ep.appendFrame(rgb, { step: 0, phase: "slide", state: {} })
      }
      ep.close()
    }
  }
  writer.finish()
}
