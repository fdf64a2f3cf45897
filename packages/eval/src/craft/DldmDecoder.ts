/**
 * The dLDM as the rollout's clip decoder (paper §3 inference): codes → low-fidelity motion video from the
 * start frame (the VQ-VAE-style decoder) → high-fidelity clip from the VDM (DiT sampler, first frame as
 * condition, codes as causal cross-attention context, the low-fi video as ControlNet hint).
 * Without a VDM (the VideoWorld 1-like baseline) the low-fi video is the output.
 */
import * as tf from "@tensorflow/tfjs"
import type { ClipDecoder } from "@vw2/ar"
import { codeVisibility, readVdmCheckpointConfig, sample, type VdmCheckpointConfig, VideoDiT } from "@vw2/diffusion"
import { type Dldm, loadDldm } from "@vw2/dldm"
import { asFloatState, Init, loadCheckpoint } from "@vw2/nn"

export interface DecoderSampling {
  /** Karras steps (authors: 35) */
  readonly steps: number
  /** classifier-free guidance (authors: 7; 0 = off) */
  readonly cfg: number
  readonly seed: number
}

export interface LoadedDecoder extends ClipDecoder {
  readonly kind: "vdm" | "lowfi"
  readonly dldm: Dldm
  readonly dispose: () => void
}

/** Load the DiT a joint (`dldm`) stage fine-tuned: exactly its saved architecture, switches and weights. */
const loadDiT = async (dir: string): Promise<{ dit: VideoDiT; meta: VdmCheckpointConfig }> => {
  const meta = await readVdmCheckpointConfig(dir)
  const { weights } = await loadCheckpoint(dir)
  const dit = new VideoDiT(Init.seeded(0), meta.dit)
  try {
    dit.loadStateDict(asFloatState(weights, `${dir}/model.safetensors`))
  } catch (e) {
    dit.dispose()
    throw new Error(`${dir}: ${(e as Error).message}`)
  }
  return { dit, meta }
}

export const loadClipDecoder = async (dldmDir: string, vdmDir: string | undefined, sampling: DecoderSampling): Promise<LoadedDecoder> => {
  const { model: dldm } = await loadDldm(dldmDir)
  const loaded = vdmDir === undefined ? undefined : await loadDiT(vdmDir)
  const dit = loaded?.dit
  const c = dldm.config
  const transitions = dldm.geo.transitions
  const frameSize = c.height * c.width * 3
  let calls = 0
  const decode = async (startFrame: Float32Array, codes: Int32Array): Promise<Float32Array> => {
    if (codes.length !== dldm.geo.codesPerClip) throw new Error(`decoder: ${codes.length} codes given, the dLDM decodes ${dldm.geo.codesPerClip} per clip`)
    const out = tf.tidy(() => {
      const first = tf.tensor4d(startFrame, [1, c.height, c.width, 3]) // [1, H, W, 3] in [0, 1]
      const indices = tf.tensor3d(codes, [1, transitions, c.queries], "int32")
      const lowFi = dldm.decodeLowFi(first, indices) // [1, T, H, W, 3] in [0, 1]
      if (dit === undefined) return lowFi
      const context = { codes: dldm.fsq.indicesToCodes(indices), visibleFrom: codeVisibility(transitions, c.temporalCompression) }
      const hint = dit.config.control.enabled ? tf.sub(tf.mul(lowFi, 2), 1) : undefined
      const generated = sample(dit, tf.sub(tf.mul(first, 2), 1), context, hint, {
        frames: c.frames,
        steps: sampling.steps,
        cfg: sampling.cfg,
        seed: sampling.seed + calls,
        objective: loaded!.meta.objective // sample with the objective the DiT was trained with
      })
      return tf.clipByValue(tf.div(tf.add(generated, 1), 2), 0, 1)
    })
    calls++
    const frames = out.dataSync() as Float32Array
    out.dispose()
    const clip = Float32Array.from(frames)
    clip.set(startFrame, 0) // frame 0 is the condition: keep it bit-exact so chained clips join seamlessly
    await new Promise<void>((resolve) => setImmediate(resolve))
    return clip.length === c.frames * frameSize ? clip : clip.subarray(0, c.frames * frameSize)
  }
  return {
    kind: dit === undefined ? "lowfi" : "vdm",
    dldm,
    framesPerClip: c.frames,
    decode,
    dispose: () => {
      dldm.dispose()
      dit?.dispose()
    }
  }
}
