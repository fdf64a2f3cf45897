export * from "./VideoWorld2.ts"
