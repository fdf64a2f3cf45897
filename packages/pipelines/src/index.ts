export * from "./Presets.ts"
export * from "./RobotTokenize.ts"
export * from "./VideoWorld2.ts"
export * from "./WarmupEngine.ts"
