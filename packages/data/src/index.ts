export * from "./formats/errors.ts"
export * from "./formats/npy.ts"
export * from "./formats/npz.ts"
