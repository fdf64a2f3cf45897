/** The MiniCraft pieces of @vw2/data this package uses, imported in one place. */
import { MiniCraft } from "@vw2/data"

export const { MiniCraftJudge, getTask, generateMiniCraft, defaultMiniCraftConfig } = MiniCraft
export type Appearance = MiniCraft.Appearance
