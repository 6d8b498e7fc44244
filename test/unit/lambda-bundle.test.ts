import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { pathToFileURL } from "node:url";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it, vi } from "vitest";
import { bundle, FUNCTIONS, ROOT } from "../../bench/bundle";
import { lazyEventBridgeClient } from "../../lib/aws/lazy-eventbridge";
import { lazySecretsManagerClient } from "../../lib/aws/lazy-secrets-manager";
import { secretCache } from "../../lib/credentials/secret-cache";
import { defaultProvider } from "../../lib/lambda-bundle/credentials-from-env";
import lazyHttps from "../../lib/lambda-bundle/lazy-https";
import { ReadableStream as LazyReadableStream } from "../../lib/lambda-bundle/lazy-stream-web";
import {
  EventStreamSerde,
  eventStreamSerdeProvider,
} from "../../lib/lambda-bundle/no-event-streams";

const secretsMock = mockClient(SecretsManagerClient);
const eventsMock = mockClient(EventBridgeClient);

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  secretsMock.reset();
  eventsMock.reset();
});

describe("the stand-ins the Lambda bundles use for two AWS SDK modules", () => {
  it("takes the role's credentials from the environment, as Lambda provides them", async () => {
    vi.stubEnv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE");
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", "secret-example");
    vi.stubEnv("AWS_SESSION_TOKEN", "session-example");
    await expect(defaultProvider()()).resolves.toMatchObject({
      accessKeyId: "ASIAEXAMPLE",
      secretAccessKey: "secret-example",
      sessionToken: "session-example",
    });
  });

  it("says so when the environment has no credentials", async () => {
    vi.stubEnv("AWS_ACCESS_KEY_ID", "");
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", "");
    await expect(defaultProvider()()).rejects.toThrow(/environment variable credentials/);
  });

  it("fails clearly if an event-stream operation were ever called", () => {
    // S3's client builds its marshaller up front (test/unit: the sync's S3 source): only its use throws.
    const marshaller = eventStreamSerdeProvider();
    expect(() => marshaller.serialize()).toThrow(/event streams are left out/);
    expect(() => marshaller.deserialize()).toThrow(/event streams are left out/);
    expect(() => new EventStreamSerde()).toThrow(/event streams are left out/);
  });
});

describe("the stand-ins for two Node modules, loaded when first used", () => {
  it("node:https: the real module's Agent and request, loaded on first use", () => {
    const https = createRequire(import.meta.url)("node:https");
    expect(lazyHttps.Agent).toBe(https.Agent);
    expect(lazyHttps.request).toBe(https.request);
    expect(new lazyHttps.Agent({ keepAlive: true })).toBeInstanceOf(https.Agent);
  });

  it("node:stream/web: ReadableStream answers instanceof as Node's own class", () => {
    expect(new ReadableStream()).toBeInstanceOf(LazyReadableStream);
    expect(Readable.from(["a"])).not.toBeInstanceOf(LazyReadableStream);
    expect(LazyReadableStream[Symbol.hasInstance]("text")).toBe(false);
  });
});

describe("a bundled SDK client over the node:https stand-in", () => {
  it("sends its request through Node's https (refused here: nothing listens on port 9)", async () => {
    const { file, metafile } = await bundle("https-stand-in-test", {
      contents: `import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
        export async function send() {
          const client = new DynamoDBClient({ region: "us-east-1", endpoint: "https://127.0.0.1:9",
            maxAttempts: 1, credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "example" } });
          try { await client.send(new ListTablesCommand({})); return "answered"; }
          catch (error) { return error.code ?? error.name + ": " + error.message; }
        }`,
    });
    expect(Object.keys(metafile.inputs)).toContain("lib/lambda-bundle/lazy-https.ts");
    const run = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { send } = await import(${JSON.stringify(pathToFileURL(file).href)});
         process.stdout.write(await send());`,
      ],
      { env: { PATH: process.env.PATH }, encoding: "utf8" },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe("ECONNREFUSED");
  }, 60_000);
});

describe("the AWS SDK clients created on their first send", () => {
  it("Secrets Manager: one real client behind every read, and the secret cache reads through it", async () => {
    secretsMock
      .on(GetSecretValueCommand)
      .resolves({ SecretString: '{"v":1}', VersionId: "version-1" });
    const secretsManager = lazySecretsManagerClient();
    expect(secretsMock.calls()).toHaveLength(0);
    const cache = secretCache({
      secretsManager,
      secretId: "zoho",
      what: "the Zoho secret",
      maxAgeSeconds: 0,
      parse: (text) => JSON.parse(text ?? ""),
    });
    await expect(cache.get()).resolves.toMatchObject({ value: { v: 1 }, versionId: "version-1" });
    await cache.get();
    const calls = secretsMock.commandCalls(GetSecretValueCommand, { SecretId: "zoho" });
    expect(calls).toHaveLength(2);
    expect(calls[0]?.thisValue).toBeInstanceOf(SecretsManagerClient);
    expect(calls[1]?.thisValue).toBe(calls[0]?.thisValue);
  });

  it("Secrets Manager: the SDK's errors reach the secret cache, which maps them", async () => {
    secretsMock
      .on(GetSecretValueCommand)
      .rejects(Object.assign(new Error("no such secret"), { name: "ResourceNotFoundException" }));
    const cache = secretCache({
      secretsManager: lazySecretsManagerClient(),
      secretId: "zoho",
      what: "the Zoho secret",
      maxAgeSeconds: 300,
      parse: (text) => text,
    });
    await expect(cache.get()).rejects.toMatchObject({ code: "CONFIGURATION_ERROR" });
  });

  it("EventBridge: one real client behind every event; destroyed only once created", async () => {
    eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    const destroyed = vi.spyOn(EventBridgeClient.prototype, "destroy");
    lazyEventBridgeClient().destroy();
    expect(destroyed).not.toHaveBeenCalled();

    const events = lazyEventBridgeClient();
    const command = new PutEventsCommand({
      Entries: [{ Source: "test", DetailType: "t", Detail: "{}" }],
    });
    await expect(events.send(command)).resolves.toEqual({ FailedEntryCount: 0 });
    await events.send(command);
    const calls = eventsMock.commandCalls(PutEventsCommand);
    expect(calls).toHaveLength(2);
    expect(calls[1]?.thisValue).toBe(calls[0]?.thisValue);
    events.destroy();
    await vi.waitFor(() => expect(destroyed).toHaveBeenCalledTimes(1));
  });
});

describe("each function's Lambda bundle, built with serverless.yml's esbuild options", () => {
  it.each(FUNCTIONS)(
    "%s leaves out the SDK's credential chain and event streams",
    async (name) => {
      const { metafile, bytes } = await bundle(`${name}-test`, {
        path: `${ROOT}/functions/${name}.ts`,
      });
      const inputs = Object.keys(metafile.inputs);
      expect(inputs).toContain("lib/lambda-bundle/credentials-from-env.ts");
      expect(
        inputs.filter((input) => /credential-provider-(node|ini|sso)|nested-clients/.test(input)),
      ).toEqual([]);
      expect(inputs.filter((input) => input.includes("/event-streams/"))).toEqual([]);
      expect(bytes).toBeLessThan(600 * 1024);
    },
    60_000,
  );

  it("the sync parses the S3 client only on a run with an `s3` source (a chunk of its own)", async () => {
    const { metafile, loaded } = await bundle("scheduled-sync-s3-test", {
      path: `${ROOT}/functions/scheduled-sync.ts`,
    });
    const inputsOf = (outputs: string[]) =>
      outputs.flatMap((output) => Object.keys(metafile.outputs[output]?.inputs ?? {}));
    const s3 = (input: string) => input.includes("node_modules/@aws-sdk/client-s3/");
    expect(inputsOf(loaded).filter(s3)).toEqual([]);
    expect(inputsOf(Object.keys(metafile.outputs)).filter(s3)).not.toEqual([]);
    // nor S3's REST-XML protocol, which the SDK's shared barrels would carry into the eager chunk
    // without lib/lambda-bundle/plugins.cjs
    expect(inputsOf(loaded).filter((input) => input.includes("/protocols/xml/"))).toEqual([]);
  }, 60_000);

  it("the sync's S3 chunk, a copy of the SDK of its own, reads an object", async () => {
    const { metafile } = await bundle("scheduled-sync-s3-read-test", {
      path: `${ROOT}/functions/scheduled-sync.ts`,
    });
    const [chunk] =
      Object.entries(metafile.outputs).find(([, output]) =>
        output.entryPoint?.startsWith("lib/sync/s3-client.ts"),
      ) ?? [];
    expect(chunk).toBeDefined();
    const script = `
      import { createServer } from "node:http";
      let asked;
      const server = createServer((req, res) => { asked = req.method + " " + req.url; res.end("id,email\\n1,a@example.com\\n"); });
      await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
      const { S3Client, GetObjectCommand } = await import(${JSON.stringify(pathToFileURL(`${ROOT}/${chunk}`).href)});
      const s3 = new S3Client({ region: "us-east-1", endpoint: "http://127.0.0.1:" + server.address().port,
        forcePathStyle: true, credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "example" } });
      const object = await s3.send(new GetObjectCommand({ Bucket: "desired", Key: "contacts.csv" }));
      process.stdout.write(JSON.stringify({ asked, body: await object.Body.transformToString() }));
      server.close();`;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { PATH: process.env.PATH },
      encoding: "utf8",
    });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      asked: "GET /desired/contacts.csv?x-id=GetObject",
      body: "id,email\n1,a@example.com\n",
    });
  }, 60_000);

  it("the HTTP API parses queueing and the webhook route only on a request that queues", async () => {
    const { metafile, loaded } = await bundle("http-api-intake-test", {
      path: `${ROOT}/functions/http-api.ts`,
    });
    const inputsOf = (outputs: string[]) =>
      outputs.flatMap((output) => Object.keys(metafile.outputs[output]?.inputs ?? {}));
    const intake = (input: string) =>
      input.startsWith("lib/webhooks/") ||
      input === "lib/jobs/queue.ts" ||
      input.includes("node_modules/@aws-sdk/client-sqs/");
    expect(inputsOf(loaded).filter(intake)).toEqual([]);
    expect(inputsOf(Object.keys(metafile.outputs)).filter(intake)).toEqual(
      expect.arrayContaining(["lib/webhooks/config.ts", "lib/jobs/queue.ts"]),
    );
  }, 60_000);

  it("the HTTP API parses the Zoho path only on a route that calls Zoho (or reads its secret)", async () => {
    const { metafile, loaded } = await bundle("http-api-zoho-path-test", {
      path: `${ROOT}/functions/http-api.ts`,
    });
    const inputsOf = (outputs: string[]) =>
      outputs.flatMap((output) => Object.keys(metafile.outputs[output]?.inputs ?? {}));
    const zohoPath = [
      "lib/zoho-path.ts",
      "lib/activation.ts",
      "lib/credentials/token-store.ts",
      "lib/ledger/budget.ts",
      "lib/zoho/books-client.ts",
      "lib/zoho/accounts.ts",
    ];
    const zoho = (input: string) => zohoPath.includes(input) || input.includes("/p-retry/");
    expect(inputsOf(loaded).filter(zoho)).toEqual([]);
    expect(inputsOf(Object.keys(metafile.outputs)).filter(zoho)).toEqual(
      expect.arrayContaining(zohoPath),
    );
  }, 60_000);

  it.each(FUNCTIONS.filter((name) => name !== "scheduled-token-refresh"))(
    "%s loads its SQS client and commands from a chunk, on the first send",
    async (name) => {
      const { metafile, loaded } = await bundle(`${name}-sqs-test`, {
        path: `${ROOT}/functions/${name}.ts`,
      });
      const inputsOf = (outputs: string[]) =>
        outputs.flatMap((output) => Object.keys(metafile.outputs[output]?.inputs ?? {}));
      const sqs = (input: string) => input.includes("node_modules/@aws-sdk/client-sqs/");
      // nothing of the SQS package (client, commands, schemas, errors) at import ...
      expect(inputsOf(loaded).filter(sqs)).toEqual([]);
      // ... and the commands lib/jobs/queue.ts sends are in the chunk it loads
      const inChunks = inputsOf(Object.keys(metafile.outputs))
        .filter(sqs)
        .map((input) => input.slice(input.indexOf("/dist-es/") + 1));
      expect(inChunks).toEqual(
        expect.arrayContaining([
          "dist-es/SQSClient.js",
          "dist-es/commands/SendMessageBatchCommand.js",
          "dist-es/commands/SendMessageCommand.js",
          "dist-es/commands/ChangeMessageVisibilityCommand.js",
        ]),
      );
    },
    60_000,
  );

  it.each(FUNCTIONS)(
    "%s loads Secrets Manager, EventBridge's client, node:https and web streams only when used",
    async (name) => {
      const { metafile, loaded } = await bundle(`${name}-lazy-test`, {
        path: `${ROOT}/functions/${name}.ts`,
      });
      const eager = loaded.flatMap((output) => Object.keys(metafile.outputs[output]?.inputs ?? {}));
      expect(eager.filter((input) => input.includes("/@aws-sdk/client-secrets-manager/"))).toEqual(
        [],
      );
      expect(eager.filter((input) => input.endsWith("/EventBridgeClient.js"))).toEqual([]);
      const eagerImports = loaded.flatMap((output) =>
        (metafile.outputs[output]?.imports ?? []).map(({ path }) => path),
      );
      expect(eagerImports).not.toContain("node:https");
      expect(eagerImports).not.toContain("node:stream/web");
      expect(Object.keys(metafile.inputs)).toEqual(
        expect.arrayContaining([
          "lib/lambda-bundle/lazy-https.ts",
          "lib/lambda-bundle/lazy-stream-web.ts",
        ]),
      );
    },
    60_000,
  );
});
