export * from "./Stage.ts"
export * from "./ProcessStage.ts"
export * from "./DirectRun.ts"
export * as Tracker from "./Tracker.ts"
export * from "./Pipeline.ts"
export * from "./Experiment.ts"
export * as ConfigField from "./ConfigField.ts"
export * from "./ConfigPath.ts"
export * from "./Canonical.ts"
export * from "./Config.ts"
export * from "./Redaction.ts"
export * from "./Sweep.ts"
export * from "./Planner.ts"
export * from "./Executor.ts"
export * from "./Loader.ts"
export * from "./Scheduler.ts"
export * from "./RunTree.ts"
export {
  decodeEventLine,
  encodeEventLine,
  InvocationEvent,
  isInvocationEvent,
  LifecycleEvent,
  RunEvent,
  type RunObserver,
  type StageContextEvent
} from "./RunEvent.ts"
export * from "./SweepRollup.ts"
// issue 15: early stopping, retries and time limits
export * from "./EarlyStopping.ts"
export * from "./SweepScheduler.ts"
export * from "./StepPolicy.ts"
export * from "./Statistics.ts"
export * as ArtifactStore from "./ArtifactStore.ts"
export * as LocalExecutor from "./LocalExecutor.ts"
export * as InlineExecutor from "./InlineExecutor.ts"
export type { InputArtifactSpec, WorkerSpec } from "./worker/protocol.ts"
export { checkWorkerSpec, workerExitCodes } from "./worker/protocol.ts"
