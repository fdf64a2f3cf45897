import { readCodeDataset } from "@vw2/ar"
import { Dataset } from "@vw2/data"
import { selectBackend } from "@vw2/nn"
import { loadClipDecoder } from "./src/craft/DldmDecoder.ts"
import { videoSsim } from "./src/Ssim.ts"
import { fromUnitFloat, makeVideo } from "./src/Video.ts"
await selectBackend()
const S = "/tmp/vw2-e7/store/"
const dldm = S + "94fe06647ec23bccee4bede9785e5477a1be16c98f07fe31644a69aad1651d11"
const codes = readCodeDataset(S + "9c63d5f0b9a803841c10865808c16534d5050baaa3e8875016f3ed9c0bd5f478/codes", { split: "test" })
const ds = Dataset.open(S + "50f6865c122645a5c94069ab60d684e205bef632a2f92be65f04da81ced3a5c7/dataset")
const ep = codes.episodes[0]!
const k = 3
const gt = makeVideo(ds.readFrames(ep.id, Array.from({ length: 9 }, (_, t) => k * 8 + t)), 9, 32, 32)
const start = Float32Array.from(gt.data.subarray(0, 32 * 32 * 3), (b) => b / 255)
const clipCodes = ep.codes.slice(k * 16, (k + 1) * 16)
for (const [name, vdm] of [["lowfi", undefined], ["vdm", dldm + "/vdm"]] as const) {
  for (const cfg of [0, 3]) {
    const dec = await loadClipDecoder(dldm + "/checkpoint", vdm, { steps: 8, cfg, seed: 0 })
    const out = await dec.decode(start, clipCodes)
    const v = fromUnitFloat(out, 9, 32, 32)
    const mean = out.reduce((s, x) => s + x, 0) / out.length
    console.log(name, "cfg", cfg, "ssim vs gt", videoSsim(gt, v).toFixed(3), "mean", mean.toFixed(3), "gt mean", (gt.data.reduce((s, x) => s + x, 0) / gt.data.length / 255).toFixed(3))
    dec.dispose()
    if (vdm === undefined) break
  }
}
// copy-first-frame baseline
const frozen = new Uint8Array(gt.data.length); for (let t = 0; t < 9; t++) frozen.set(gt.data.subarray(0, 3072), t * 3072)
console.log("frozen first frame ssim", videoSsim(gt, makeVideo(frozen, 9, 32, 32)).toFixed(3))
