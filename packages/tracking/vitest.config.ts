import { defineConfig } from "vitest/config"

// One MLflow server for the suite (test/globalSetup.ts); files run one after another because the outage
// test kills and restarts that server.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/globalSetup.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000
  }
})
