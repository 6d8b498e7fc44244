import { afterEach, describe, expect, it, vi } from "vitest";
import { bundle, FUNCTIONS, ROOT } from "../../bench/bundle";
import { defaultProvider } from "../../lib/lambda-bundle/credentials-from-env";
import {
  EventStreamSerde,
  eventStreamSerdeProvider,
} from "../../lib/lambda-bundle/no-event-streams";

afterEach(() => {
  vi.unstubAllEnvs();
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

  it.each(FUNCTIONS.filter((name) => name !== "scheduled-token-refresh"))(
    "%s creates its SQS client from a chunk loaded on the first send",
    async (name) => {
      const { metafile, loaded } = await bundle(`${name}-sqs-test`, {
        path: `${ROOT}/functions/${name}.ts`,
      });
      const client = "node_modules/@aws-sdk/client-sqs/dist-es/SQSClient.js";
      const inputsOf = (outputs: string[]) =>
        outputs.flatMap((output) => Object.keys(metafile.outputs[output]?.inputs ?? {}));
      expect(inputsOf(loaded).filter((input) => input.endsWith(client))).toEqual([]);
    },
    60_000,
  );
});
