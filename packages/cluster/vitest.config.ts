import { suiteConfig } from "../../vitest.shared.ts"

export default suiteConfig({ sharedServer: true })
