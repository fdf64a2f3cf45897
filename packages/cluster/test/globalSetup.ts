/**
 * One Ray head for the whole suite (starting one takes 10–20 s): RAY_ADDRESS when given (CI or a head
 * from `vw2 ray up`), else a local head with 2 CPUs and 2 logical GPUs, stopped after the suite.
 */
import type { TestProject } from "vitest/node"
import { RayHead } from "../src/index.ts"

declare module "vitest" {
  export interface ProvidedContext {
    rayAddress: string
  }
}

export default async function setup(project: TestProject) {
  const given = process.env.RAY_ADDRESS
  if (given !== undefined && given !== "") {
    project.provide("rayAddress", given)
    return
  }
  const head = await RayHead.startHead({ cpus: 2, gpus: 2, objectStoreMb: 100 })
  project.provide("rayAddress", head.address)
  return async () => {
    await RayHead.stopHead(head)
  }
}
