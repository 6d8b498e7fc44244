import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { APIGatewayProxyStructuredResultV2, SQSBatchResponse } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { handler as httpApi } from "../../functions/http-api";
import { handler as worker } from "../../functions/sqs-worker";
import { ERROR_TABLE } from "../../lib/errors";
import { httpEvent, lambdaContext, sqsEvent, sqsRecord } from "../../local/lambda-events";
import { acceptEverything } from "../../local/queue-mock";
import { type Sandbox, SEED, sandboxSecret, startSandbox } from "../../local/sandbox";
import { type Ledger, startLedger } from "../support/ledger";
import { mockSecretStore } from "../support/secret-store";

// Whatever a caller or a queue sends: never a 5xx for bad input, always a known error code, and
// no value that is not 1-25 digits ever in a URL Zoho sees (the sandbox records every URL).

const SECRET_ID = "zoho/books";
const DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/activation-dlq";
let sandbox: Sandbox;
let ledger: Ledger;
const sqs = mockClient(SQSClient);
// Outcome events are accepted by a mock here; test/integration/jobs.test.ts puts them for real.
mockClient(EventBridgeClient)
  .on(PutEventsCommand)
  .resolves({ FailedEntryCount: 0, Entries: [{ EventId: "event" }] });
const ZOHO_URL =
  /^\/books\/v3\/contacts(\/\d{1,25}\/(active|inactive)\?organization_id=\d{1,25}|\?organization_id=\d{1,25}&filter_by=Status\.All&page=\d+&per_page=200&email=[^&]+)$/;

beforeAll(async () => {
  [sandbox, ledger] = await Promise.all([
    startSandbox({ settings: { rateLimitPerMinute: 1_000_000 } }),
    startLedger(),
  ]);
  ledger.stubEnv();
  vi.stubEnv("ZOHO_SECRET_ID", SECRET_ID);
  vi.stubEnv(
    "ACTIVATION_QUEUE_URL",
    "https://sqs.us-east-1.amazonaws.com/123456789012/activation-queue",
  );
  vi.stubEnv("ACTIVATION_DLQ_URL", DLQ_URL);
  // this suite is about input, not Zoho's budget: nothing here may be limited
  vi.stubEnv("ZOHO_MINUTE_SHARE", "1000000");
  vi.stubEnv("ZOHO_DAILY_QUOTA", "1000000");
  mockSecretStore(sandboxSecret(sandbox));
  await ledger.storeToken(SECRET_ID, sandbox.issueToken(), sandbox.url);
  acceptEverything(sqs);
});
afterAll(async () => {
  await Promise.all([sandbox.close(), ledger.close()]);
  vi.unstubAllEnvs();
});

const anything = fc.oneof(
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.constantFrom(
    "",
    "..",
    "%2F",
    "../../x",
    "1/../2",
    "12?x=1",
    "１２３",
    "1e3",
    "-1",
    " 1",
    "0x1F",
    "null",
  ),
  fc.stringMatching(/^\d{1,30}$/),
  fc.constantFrom(...SEED.inactiveIds.slice(0, 5), SEED.unknownId),
);
const item = fc.oneof(
  fc.record(
    {
      contact_id: anything,
      action: fc.oneof(fc.constantFrom("activate", "deactivate"), fc.string()),
    },
    { requiredKeys: [] },
  ),
  fc.record(
    { email: fc.oneof(fc.emailAddress(), fc.string()), organization_id: anything },
    { requiredKeys: [] },
  ),
  fc.anything(),
);
const body = fc.oneof(
  fc.json(),
  fc.string(),
  fc.record({ items: fc.array(item, { maxLength: 12 }) }).map((b) => JSON.stringify(b)),
  fc.record({ items: fc.anything() }).map((b) => JSON.stringify(b)),
);

describe("fuzzing the HTTP API", () => {
  it("answers bad input with a 4xx and a known code, never a 5xx, and lets no bad value reach Zoho", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "POST", "PUT", "DELETE"),
        fc.oneof(
          anything.map((id) => ({ path: `/contacts/${id}/active`, id })),
          anything.map((id) => ({ path: `/contacts/${id}/inactive`, id })),
          fc.constant({ path: "/activations", id: undefined }),
          fc.constant({ path: "/health", id: undefined }),
          fc.string().map((path) => ({ path: `/${path}`, id: undefined })),
        ),
        fc.option(fc.record({ organization_id: anything }), { nil: undefined }),
        // absent, and null as serverless-offline sends it
        fc.oneof(fc.constant(undefined), fc.constant(null), body),
        fc.boolean(),
        async (method, { path, id }, query, text, base64) => {
          const event = httpEvent({
            method,
            path,
            ...(id === undefined ? {} : { pathParameters: { contact_id: id } }),
            ...(query ? { query } : {}),
            ...(text == null
              ? {}
              : {
                  body: base64 ? Buffer.from(text).toString("base64") : text,
                  isBase64Encoded: base64,
                }),
          });
          if (text === null) Object.assign(event, { body: null });
          const response = (await httpApi(
            event,
            lambdaContext("fuzz"),
          )) as APIGatewayProxyStructuredResultV2;
          const status = response.statusCode ?? 0;
          expect(status, String(response.body)).toBeLessThan(500);
          if (status >= 400) {
            const error = JSON.parse(String(response.body)).error;
            expect(Object.keys(ERROR_TABLE)).toContain(error.code);
            expect(error.message.length).toBeGreaterThan(0);
            expect(String(response.body)).not.toMatch(/\n\s+at /);
          }
        },
      ),
      { numRuns: 400 },
    );
    for (const request of sandbox.requests().filter((r) => r.endpoint !== "token")) {
      expect(request.url).toMatch(ZOHO_URL);
    }
  }, 60_000);
});

describe("fuzzing queue messages", () => {
  it("never throws, and parks every job it cannot do instead of failing it, with a known code", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.string(),
            fc.json(),
            item.map((i) => JSON.stringify(i)),
          ),
          { minLength: 1, maxLength: 10 },
        ),
        async (bodies) => {
          sqs.resetHistory();
          const result = (await worker(
            sqsEvent(bodies.map((b) => sqsRecord(b))),
            lambdaContext("fuzz"),
          )) as SQSBatchResponse;
          // A healthy Zoho: every job is done or parked, none left failing nor sent again.
          expect(result.batchItemFailures).toEqual([]);
          for (const call of sqs.commandCalls(SendMessageCommand)) {
            expect(call.args[0].input.QueueUrl).toBe(DLQ_URL);
            const code = call.args[0].input.MessageAttributes?.error_code?.StringValue;
            expect([
              "INVALID_REQUEST",
              "CONTACT_NOT_FOUND",
              "CONTACT_AMBIGUOUS",
              "INVALID_ORGANIZATION",
            ]).toContain(code);
          }
        },
      ),
      { numRuns: 200 },
    );
    for (const request of sandbox.requests().filter((r) => r.endpoint !== "token")) {
      expect(request.url).toMatch(ZOHO_URL);
    }
  }, 60_000);
});
