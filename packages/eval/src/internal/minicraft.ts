/**
 * The MiniCraft pieces of @vw2/data this package uses, imported in one place. Temporary: @vw2/data's index
 * does not export the minicraft module yet, so these come from its source files; switch to "@vw2/data".
 */
export { MiniCraftJudge } from "../../../data/src/minicraft/Judge.ts"
export { getTask } from "../../../data/src/minicraft/Tasks.ts"
export type { Appearance } from "../../../data/src/minicraft/Appearance.ts"
export { defaultMiniCraftConfig, generateMiniCraft } from "../../../data/src/minicraft/Generate.ts"
