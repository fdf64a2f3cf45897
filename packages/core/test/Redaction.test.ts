import { Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import * as ArtifactStore from "../src/ArtifactStore.ts"
import { flattenConfig, parseOverride, validateSlice } from "../src/Config.ts"
import * as ConfigField from "../src/ConfigField.ts"
import { defineExperiment } from "../src/Experiment.ts"
import { definePipeline } from "../src/Pipeline.ts"
import { Executor } from "../src/Executor.ts"
import { makeInlineExecutor } from "../src/InlineExecutor.ts"
import { planExperiment } from "../src/Planner.ts"
import { isSecretKey, redactCommandLine, redactConfig, redactText, redactUrls } from "../src/Redaction.ts"
import { runPlan } from "../src/Scheduler.ts"
import { defineStage } from "../src/Stage.ts"
import { Tracker } from "../src/Tracker.ts"
import secrets, { connect, pipeline } from "./fixtures/secrets.ts"
import { recordingTracker, tempDir } from "./helpers.ts"

const secretsFile = fileURLToPath(new URL("./fixtures/secrets.ts", import.meta.url))
const inFile = ["tok-IN-FILE-5f1c9a", "hunter2-IN-FILE-77", "pw-IN-URL-3e8d"]

/** Every file under `dir` whose bytes contain `needle`. */
const filesContaining = (dir: string, needle: string): Array<string> =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .filter((file) => fs.readFileSync(file).includes(needle))

describe("secret detection", () => {
  it("finds secrets by the words of a key, not by substrings of other words", () => {
    const secret = ["apiToken", "api_key", "APIKey", "apikey", "API_KEY", "password", "dbPassword", "passwd", "clientSecret", "credentials", "credential", "privateKey", "private_key", "authToken", "token", "SECRET", "x-api-key"]
    const plain = ["maxTokens", "tokensPerFrame", "tokenize", "key", "publicKey", "secretary", "passage", "keyFrames", "apiUrl", "privateMode"]
    expect(secret.filter((k) => !isSecretKey(k))).toEqual([])
    expect(plain.filter(isSecretKey)).toEqual([])
  })

  it("masks only the password of a URL's userinfo", () => {
    expect(redactUrls("postgres://user:pw@host:5432/db")).toBe("postgres://user:***@host:5432/db")
    expect(redactUrls("connect mysql://root:s3cr%40t@10.0.0.1/x and https://example.org/a:b@c")).toBe("connect mysql://root:***@10.0.0.1/x and https://example.org/a:b@c")
    expect(redactUrls("https://user@host/path")).toBe("https://user@host/path")
    expect(redactUrls("redis://:onlypw@cache:6379")).toBe("redis://:***@cache:6379")
  })

  it("hides secret-named values of any depth, keeps empty ones and booleans visible", () => {
    expect(redactConfig({ db: { password: "x", credentials: { user: "u", key: "k" }, useToken: true, token: "" }, lr: 0.1, levels: [8, 5] })).toEqual({
      db: { password: "***", credentials: "***", useToken: true, token: "" },
      lr: 0.1,
      levels: [8, 5]
    })
  })
})

describe("secrets in a planned config", () => {
  const overrides = ["connect.dsn=SET-DSN-9b7e41", "connect.password=SET-PASSWORD-c0ffee"].map(parseOverride)

  it("decodes a ConfigField.Secret to a Redacted for the stage and validates it like any field", () => {
    const ok = validateSlice(connect, ["connect"], { apiToken: "abcd", password: "p", databaseUrl: "u" })
    expect(ok._tag).toBe("ok")
    if (ok._tag !== "ok") return
    expect(String((ok.slice.value as { apiToken: unknown }).apiToken)).toBe("<redacted>")
    expect((ok.slice.encoded as { apiToken: unknown }).apiToken).toBe("abcd") // what is hashed and sent to the worker
    const bad = validateSlice(connect, ["connect"], { apiToken: 12345, password: 99, databaseUrl: "u" })
    expect(bad._tag).toBe("issues")
    if (bad._tag !== "issues") return
    expect(bad.issues.map((i) => i.path).sort()).toEqual(["connect.apiToken", "connect.password"])
    // an error message names the path, never the value of a secret-named key
    expect(bad.issues.find((i) => i.path === "connect.password")!.message).toContain("got ***")
  })

  it("writes *** into params (flattenConfig) for file, --set and URL secrets", () => {
    const plan = planExperiment(secrets, overrides)
    const params = flattenConfig(plan.config)
    expect(params).toEqual({
      "connect.apiToken": "***",
      "connect.dsn": "***",
      "connect.password": "***",
      "connect.databaseUrl": "postgres://vw2user:***@db.example.org:5432/runs",
      "connect.sessionToken": "",
      "connect.replicaUrl": "",
      "connect.retries": "3",
      "connect.maxTokens": "16"
    })
    // the stage run's params come from the invocation's slice (no step prefix): same masking
    expect(flattenConfig(plan.invocations[0]!.config)).toMatchObject({ apiToken: "***", dsn: "***", password: "***" })
  })

  it("hashes secrets by value: different secrets, different invocations; the same secret, the same one", () => {
    const withToken = (apiToken: string) =>
      defineExperiment({ name: "secrets-hash", pipeline, config: { connect: { ...secrets.config.connect, apiToken } } })
    const a = planExperiment(withToken("token-AAAA-1111"))
    const b = planExperiment(withToken("token-BBBB-2222"))
    const a2 = planExperiment(withToken("token-AAAA-1111"))
    expect(a.invocations[0]!.hash).not.toBe(b.invocations[0]!.hash)
    expect(a.configHash).not.toBe(b.configHash)
    expect(a2.invocations[0]!.hash).toBe(a.invocations[0]!.hash)
    // while what is shown of them is the same
    expect(flattenConfig(a.config)).toEqual(flattenConfig(b.config))
  })

  it("masks --set values on the command line: secret-named paths, secret fields, URL passwords", () => {
    planExperiment(secrets, overrides) // validation remembers the secret fields (dsn is one by type, not by name)
    const line = redactCommandLine([
      "/repo/packages/cli/src/bin.ts", "run", "exp.ts",
      "--set", "connect.dsn=SET-DSN-9b7e41",
      "--set=connect.password=SET-PASSWORD-c0ffee",
      "--set", "connect.databaseUrl=mysql://root:URLPW-42aa@db/x",
      "--set", 'connect.nested={"apiKey":"NESTED-KEY-77","n":1}',
      "--set", "connect.retries=5"
    ])
    expect(line).toBe(
      "/repo/packages/cli/src/bin.ts run exp.ts --set connect.dsn=*** --set=connect.password=*** " +
        '--set connect.databaseUrl=mysql://root:***@db/x --set connect.nested={"apiKey":"***","n":1} --set connect.retries=5'
    )
    // free text (a log line) loses the remembered values too
    expect(redactText("dsn is SET-DSN-9b7e41; token tok-IN-FILE-5f1c9a")).toBe("dsn is ***; token ***")
  })

  it("remembers the file's own secret even when a --set replaces it (a copy of the file is masked)", () => {
    const file = defineExperiment({ name: "secrets-file", pipeline, config: { connect: { ...secrets.config.connect, password: "FILE-ONLY-PW-e1e1" } } })
    expect(redactText("password: \"FILE-ONLY-PW-e1e1\"")).toBe('password: "FILE-ONLY-PW-e1e1"') // not seen yet
    planExperiment(file, [parseOverride("connect.password=REPLACED-PW-f2f2")])
    expect(redactText("password: \"FILE-ONLY-PW-e1e1\" or REPLACED-PW-f2f2")).toBe('password: "***" or ***')
  })

  it("masks a secret swept over in the trial's assignments, while each trial still hashes its own value", () => {
    const swept = defineExperiment({
      name: "secrets-sweep",
      pipeline,
      config: secrets.config,
      sweep: { grid: { "connect.apiToken": ["SWEPT-TOKEN-one1", "SWEPT-TOKEN-two2"] } }
    })
    const plan = planExperiment(swept)
    expect(plan.trials.map((t) => t.assignments)).toEqual([{ "connect.apiToken": "***" }, { "connect.apiToken": "***" }])
    expect(new Set(plan.invocations.map((i) => i.hash)).size).toBe(2)
  })
})

describe("secrets leave the process masked", () => {
  it("a real run records no secret in tracker params or tags, nor in the store; the manifest still verifies", async () => {
    const home = tempDir("secrets-run")
    const overrides = ["connect.dsn=RUN-DSN-41d2aa", "connect.databaseUrl=postgres://admin:RUN-URLPW-8c1f@db:5432/x"].map(parseOverride)
    const plan = planExperiment(secrets, overrides)
    const tracker = recordingTracker()
    const summary = await Effect.runPromise(
      runPlan({ plan, experimentFile: secretsFile, tags: { "vw2.command": redactCommandLine(["run", "--set", overrides[0]!.text]) } }).pipe(
        Effect.provide(Layer.mergeAll(ArtifactStore.layer(home), Layer.succeed(Executor, makeInlineExecutor()), Layer.succeed(Tracker, tracker.shape)))
      )
    )
    expect(summary.status).toBe("succeeded")
    const recorded = JSON.stringify([...tracker.runs.values()].map((r) => r.info))
    expect(recorded).toContain('"connect.apiToken":"***"') // params were recorded, masked
    expect(recorded).toContain("postgres://admin:***@db:5432/x")
    for (const secret of [...inFile, "RUN-DSN-41d2aa", "RUN-URLPW-8c1f"]) {
      expect(recorded).not.toContain(secret)
      expect(filesContaining(home, secret)).toEqual([])
    }
    const hash = plan.invocations[0]!.hash
    const store = ArtifactStore.makeArtifactStore(home)
    expect(store.readManifest(hash)!.config).toMatchObject({ apiToken: "***", dsn: "***", password: "***" })
    const verified = await Effect.runPromise(store.verify(hash))
    expect(verified._tag).toBe("valid")
  })

  it("keeps secret fields out of config errors, even when their slice does not decode", () => {
    const vault = defineStage({
      name: "vault",
      version: "1",
      config: Schema.Struct({ conn: ConfigField.Secret, n: ConfigField.positiveInt(1) }),
      inputs: {},
      outputs: {},
      run: () => Effect.void
    })
    const experiment = defineExperiment({ name: "vault", pipeline: definePipeline().step("vault", vault, {}), config: { vault: { conn: "c" } } })
    const error = (sets: Array<string>) => {
      try {
        planExperiment(experiment, sets.map(parseOverride))
      } catch (e) {
        return (e as Error).message
      }
      throw new Error("expected a config error")
    }
    const invalidNeighbour = error(["vault.conn=ERR-CONN-5a5a", "vault.n=0"])
    expect(invalidNeighbour).toContain("--set vault.conn=***")
    expect(invalidNeighbour).toContain("vault.n: Expected")
    expect(invalidNeighbour).not.toContain("ERR-CONN-5a5a")
    expect(error(["vault.conn=123456"])).toContain("vault.conn: Expected string, got ***")
  })

  it("keeps a secret out of a stage's own log of its decoded config", () => {
    const stage = defineStage({
      name: "s",
      version: "1",
      config: Schema.Struct({ token: ConfigField.Secret }),
      inputs: {},
      outputs: {},
      run: () => Effect.void
    })
    const ok = validateSlice(stage, ["s"], { token: "DECODED-abcdef" })
    expect(ok._tag === "ok" && JSON.stringify(ok.slice.value)).toBe('{"token":"<redacted>"}')
  })
})
