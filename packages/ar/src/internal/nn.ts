/** The @vw2/nn pieces this package uses, imported in one place. */
export {
  AdamW,
  asFloatState,
  describeBackend,
  Init,
  Initializers,
  LayerNorm,
  Linear,
  loadCheckpoint,
  maskFrom,
  Mlp,
  Module,
  resumableRng,
  Rng,
  runTraining,
  saveCheckpoint,
  scaledDotProductAttention,
  selectBackend,
  warmupCosine,
  type InitContext,
  type Param
} from "@vw2/nn"
