/**
 * The vitest settings the package suites share, so a timeout or a suite layout is decided in one place.
 * Each package's vitest.config.ts is `export default suiteConfig({...})`.
 */
import { defineConfig } from "vitest/config"

export interface SuiteOptions {
  /**
   * The suite runs model train steps: on the pure-JS backend (VW2_TF_BACKEND=cpu, CI's second pass) they
   * are 20–60× slower than on the native one, and the timeout is a hang guard, not a speed target.
   */
  readonly trainsModels?: boolean
  /**
   * One real server for the whole suite (test/globalSetup.ts: an MLflow server, a Ray head); test files
   * share it, so they run one after another.
   */
  readonly sharedServer?: boolean
}

export const suiteConfig = (options: SuiteOptions = {}) => {
  const slow = options.trainsModels === true && process.env.VW2_TF_BACKEND === "cpu"
  return defineConfig({
    test: {
      include: ["test/**/*.test.ts"],
      ...(options.sharedServer === true ? { globalSetup: ["test/globalSetup.ts"], fileParallelism: false } : {}),
      testTimeout: slow ? 900_000 : 120_000,
      hookTimeout: slow ? 900_000 : 300_000
    }
  })
}
