export * from "./Stage.ts"
export * as Tracker from "./Tracker.ts"
