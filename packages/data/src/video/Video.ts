/** The public video-folder API (re-exported by the package as the `Video` namespace). */
export * from "./Ffmpeg.ts"
export * from "./Annotation.ts"
export * from "./VideoFolder.ts"
