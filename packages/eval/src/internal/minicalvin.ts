/**
 * The MiniCALVIN pieces of @vw2/data this package uses, imported in one place. Temporary: @vw2/data's index
 * does not export the minicalvin module yet, so these come from its source files; switch to "@vw2/data".
 */
export { DEFAULT_EP_LEN, evaluateLongHorizon, type LongHorizonReport } from "../../../data/src/minicalvin/Protocol.ts"
export type { Observation, Policy } from "../../../data/src/minicalvin/Expert.ts"
export { generateMiniCalvin } from "../../../data/src/minicalvin/Demos.ts"
