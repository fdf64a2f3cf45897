import { defineConfig } from "vitest/config"

// One Ray head per suite (globalSetup); test files share it, so they run one at a time.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/globalSetup.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000
  }
})
