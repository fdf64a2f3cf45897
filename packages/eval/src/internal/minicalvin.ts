/** The MiniCALVIN pieces of @vw2/data this package uses, imported in one place. */
import { MiniCalvin } from "@vw2/data"

export const { DEFAULT_EP_LEN, evaluateLongHorizon, generateMiniCalvin } = MiniCalvin
export type LongHorizonReport = MiniCalvin.LongHorizonReport
