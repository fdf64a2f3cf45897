/**
 * Promise views of the Effect services, so tests read as a script against a real server: each method
 * that returns an Effect runs it (`Effect.runPromise`: a failure rejects with the typed error itself).
 */
import { Effect, Exit, Scope } from "effect"
import { type MlflowClientOptions, type MlflowTrackerOptions, type MlflowTrackerShape, makeMlflowClient, makeMlflowTracker } from "../../src/index.ts"

export type Promised<T> = {
  readonly [K in keyof T]: T[K] extends (...args: infer P) => Effect.Effect<infer A, infer _E, never> ? (...args: P) => Promise<A> : T[K]
}

export const promised = <T extends object>(target: T): Promised<T> =>
  new Proxy(target, {
    get: (t, key) => {
      const value: unknown = Reflect.get(t, key, t)
      if (typeof value !== "function") return value
      return (...args: Array<unknown>) => {
        const result: unknown = value.apply(t, args)
        return Effect.isEffect(result) ? Effect.runPromise(result as Effect.Effect<unknown, unknown, never>) : result
      }
    }
  }) as Promised<T>

/** A REST client for tests: `await client.getRun(id)`. */
export const testClient = (options: MlflowClientOptions) => promised(makeMlflowClient(options))

export type TestTracker = Promised<Omit<MlflowTrackerShape, "flush">> & {
  /** the Effect service itself (for `Layer.succeed(Tracker.Tracker, tracker.shape)`) */
  readonly shape: MlflowTrackerShape
  readonly flush: () => Promise<void>
  /** closes the tracker's scope: flushes, stops its fibers, spools what is left */
  readonly close: () => Promise<void>
}

/** A tracker in a scope of its own, closed by `close()`. */
export const openTracker = async (options: MlflowTrackerOptions): Promise<TestTracker> => {
  const scope = Effect.runSync(Scope.make())
  const shape = await Effect.runPromise(Scope.provide(makeMlflowTracker(options), scope))
  const view = promised(shape)
  return Object.assign(Object.create(null) as object, {
    shape,
    flush: () => Effect.runPromise(shape.flush),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }, Object.fromEntries(Object.keys(shape).filter((key) => key !== "flush").map((key) => [key, Reflect.get(view, key)]))) as TestTracker
}
