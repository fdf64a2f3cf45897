import { defineConfig } from "vitest/config"

// The pure-JS backend (VW2_TF_BACKEND=cpu, CI's second pass) runs the same train steps 20–60× slower than
// the native one: the timeout is a hang guard, not a speed target, so it grows with the backend.
const pureJs = process.env.VW2_TF_BACKEND === "cpu"

export default defineConfig({
  test: { include: ["test/**/*.test.ts"], testTimeout: pureJs ? 900_000 : 120_000, hookTimeout: pureJs ? 900_000 : 300_000 }
})
