export * from "./TfjsNode.ts"
export * from "./Wasm.ts"
export * from "./KernelBridge.ts"
