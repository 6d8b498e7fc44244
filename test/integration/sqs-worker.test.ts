import { ChangeMessageVisibilityCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handler } from "../../functions/sqs-worker";
import {
  FOREIGN_ORGANIZATION_ID,
  SANDBOX_CREDENTIALS,
  type Sandbox,
  SEED,
  sandboxSecret,
  startSandbox,
} from "../sandbox";
import { lambdaContext, sqsEvent, sqsRecord } from "../support/events";
import { mockSecretStore } from "../support/secret-store";

const DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/activation-dlq";
let sandbox: Sandbox;
let secret: ReturnType<typeof mockSecretStore>;
const sqs = mockClient(SQSClient);

beforeAll(async () => {
  sandbox = await startSandbox();
  vi.stubEnv("ZOHO_SECRET_ID", "zoho/books");
  vi.stubEnv("ACTIVATION_DLQ_URL", DLQ_URL);
  vi.stubEnv("SECRET_CACHE_TTL_SECONDS", "0");
  vi.stubEnv("ZOHO_HTTP_TIMEOUT_MS", "500");
  vi.stubEnv("WORKER_CONCURRENCY", "1"); // one call at a time, so counts of Zoho calls are exact
  vi.stubEnv("ZOHO_RATE_LIMIT_PER_MINUTE", "1000");
  secret = mockSecretStore({});
});
afterAll(async () => {
  await sandbox.close();
  vi.unstubAllEnvs();
});
beforeEach(() => {
  sandbox.reset();
  secret.set(sandboxSecret(sandbox, { fresh: true }));
  sqs.reset();
  sqs.on(SendMessageCommand).resolves({ MessageId: "parked" });
  sqs.on(ChangeMessageVisibilityCommand).resolves({});
});

async function run(records: ReturnType<typeof sqsRecord>[]) {
  return (await handler(sqsEvent(records), lambdaContext("sqs-worker"))) as SQSBatchResponse;
}

/** What was parked: body and the reason attributes. */
function parked(): Array<Record<string, string | undefined>> {
  return sqs.commandCalls(SendMessageCommand).map((c) => {
    const input = c.args[0].input;
    expect(input.QueueUrl).toBe(DLQ_URL);
    const attributes = Object.fromEntries(
      Object.entries(input.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue]),
    );
    return { body: input.MessageBody, ...attributes };
  });
}

function visibilityChanges() {
  return sqs.commandCalls(ChangeMessageVisibilityCommand).map((c) => ({
    receipt: c.args[0].input.ReceiptHandle,
    seconds: c.args[0].input.VisibilityTimeout,
  }));
}

const actionCalls = () =>
  sandbox
    .requests()
    .filter((r) => r.endpoint === "contact.active" || r.endpoint === "contact.inactive");

describe("sqs-worker", () => {
  it("carries out a batch and reports no failures", async () => {
    const records = SEED.inactiveIds
      .slice(0, 5)
      .map((id) => sqsRecord({ contact_id: id, action: "activate", source: "api" }));
    records.push(sqsRecord({ contact_id: SEED.activeId, action: "deactivate" }));
    expect(await run(records)).toEqual({ batchItemFailures: [] });
    for (const id of SEED.inactiveIds.slice(0, 5))
      expect(sandbox.contact(id)?.status).toBe("active");
    expect(sandbox.contact(SEED.activeId)?.status).toBe("inactive");
    expect(parked()).toEqual([]);
  });

  it("treats an already active contact as done", async () => {
    expect(await run([sqsRecord({ contact_id: SEED.activeId })])).toEqual({
      batchItemFailures: [],
    });
  });

  it.each([
    ["a body that is not JSON", "{not json", "INVALID_REQUEST"],
    ["a body without a contact", { action: "activate" }, "INVALID_REQUEST"],
    ["an id with letters", { contact_id: "12ab" }, "INVALID_REQUEST"],
    ["an unknown action", { contact_id: "1", action: "delete" }, "INVALID_REQUEST"],
  ])("parks %s in the DLQ at once, without calling Zoho", async (_what, body, code) => {
    const record = sqsRecord(body);
    expect(await run([record])).toEqual({ batchItemFailures: [] });
    expect(parked()).toEqual([
      expect.objectContaining({
        body: record.body,
        error_code: code,
        source_message_id: record.messageId,
      }),
    ]);
    expect(actionCalls()).toEqual([]);
  });

  it("parks a job whose contact does not exist, with Zoho's code", async () => {
    const record = sqsRecord({ contact_id: SEED.unknownId });
    expect(await run([record])).toEqual({ batchItemFailures: [] });
    expect(parked()).toEqual([
      expect.objectContaining({ error_code: "CONTACT_NOT_FOUND", zoho_code: "1002" }),
    ]);
  });

  it("parks a job for an organization Zoho refuses", async () => {
    await run([
      sqsRecord({ contact_id: SEED.inactiveId, organization_id: FOREIGN_ORGANIZATION_ID }),
    ]);
    expect(parked()).toEqual([
      expect.objectContaining({ error_code: "INVALID_ORGANIZATION", zoho_code: "6024" }),
    ]);
  });

  it("resolves a job named by email (trimmed, any case) to its one contact", async () => {
    const contact = sandbox.contact(SEED.inactiveId);
    const email = ` ${contact?.email?.toUpperCase()} `;
    expect(await run([sqsRecord({ email, action: "activate" })])).toEqual({
      batchItemFailures: [],
    });
    expect(sandbox.contact(SEED.inactiveId)?.status).toBe("active");
  });

  it("parks a job whose email matches several contacts, naming the candidates", async () => {
    await run([sqsRecord({ email: SEED.ambiguousEmail })]);
    const [entry] = parked();
    expect(entry?.error_code).toBe("CONTACT_AMBIGUOUS");
    expect(JSON.parse(String(entry?.error_details)).candidates).toHaveLength(2);
    expect(actionCalls()).toEqual([]);
  });

  it("parks a job whose email matches no contact", async () => {
    await run([sqsRecord({ email: "nobody@nowhere.example" })]);
    expect(parked()).toEqual([expect.objectContaining({ error_code: "CONTACT_NOT_FOUND" })]);
  });

  it("after a per-minute rate limit, sends none of the rest and keeps them invisible until the next minute", async () => {
    sandbox.settings.rateLimitPerMinute = 3;
    // Start at the top of a sandbox minute, so the window cannot roll over during the test.
    sandbox.advanceClock(60 - ((Date.now() / 1000) % 60) + 0.1);
    const records = SEED.inactiveIds.slice(0, 10).map((id) => sqsRecord({ contact_id: id }));
    const result = await run(records);
    // 3 pass, the 4th is refused with code 44, the other 6 never leave.
    expect(actionCalls()).toHaveLength(4);
    expect(result.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(
      records.slice(3).map((r) => r.messageId),
    );
    const changes = visibilityChanges();
    expect(changes.map((c) => c.receipt).sort()).toEqual(
      records
        .slice(3)
        .map((r) => r.receiptHandle)
        .sort(),
    );
    for (const { seconds } of changes) {
      expect(seconds).toBeGreaterThan(0);
      expect(seconds).toBeLessThanOrEqual(60);
    }
    expect(parked()).toEqual([]);
  });

  it("after the daily cap (45), keeps the batch invisible for hours, capped at SQS's 12", async () => {
    sandbox.settings.dailyLimit = 0;
    const records = SEED.inactiveIds.slice(0, 3).map((id) => sqsRecord({ contact_id: id }));
    const result = await run(records);
    expect(result.batchItemFailures).toHaveLength(3);
    expect(actionCalls()).toHaveLength(1);
    for (const { seconds } of visibilityChanges()) {
      expect(seconds).toBeGreaterThan(3600 / 2);
      expect(seconds).toBeLessThanOrEqual(43_200);
    }
  });

  it("a rate limit for one organization holds back its jobs, named or default, and no other's", async () => {
    sandbox.settings.dailyLimit = 0;
    const records = [
      sqsRecord({
        contact_id: SEED.inactiveIds[0],
        organization_id: SANDBOX_CREDENTIALS.organization_id,
      }),
      sqsRecord({ contact_id: SEED.inactiveIds[1] }), // the secret's default: the same organization
      sqsRecord({ contact_id: SEED.inactiveIds[2], organization_id: FOREIGN_ORGANIZATION_ID }),
    ];
    const result = await run(records);
    expect(result.batchItemFailures.map((f) => f.itemIdentifier)).toEqual([
      records[0]?.messageId,
      records[1]?.messageId,
    ]);
    expect(actionCalls()).toHaveLength(2); // the first, refused with 45, and the other organization's
    expect(parked()).toEqual([expect.objectContaining({ error_code: "INVALID_ORGANIZATION" })]);
  });

  it("reports a job failed and brings it back after a short back-off when Zoho keeps failing", async () => {
    sandbox.settings.failNext = 10;
    const record = sqsRecord(
      { contact_id: SEED.inactiveId },
      { attributes: { ...sqsRecord({}).attributes, ApproximateReceiveCount: "2" } },
    );
    const result = await run([record]);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: record.messageId }]);
    expect(visibilityChanges()).toEqual([{ receipt: record.receiptHandle, seconds: 60 }]);
    expect(parked()).toEqual([]);
  });

  it("does the same job twice without harm when SQS delivers it twice", async () => {
    const record = sqsRecord({ contact_id: SEED.inactiveId });
    const result = await run([record, { ...record }]);
    expect(result).toEqual({ batchItemFailures: [] });
    expect(sandbox.contact(SEED.inactiveId)?.status).toBe("active");
  });

  it("retries, never parks, a job that fails because the secret is unreadable", async () => {
    secret.set({ nonsense: true });
    const record = sqsRecord({ contact_id: SEED.inactiveId });
    const result = await run([record]);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: record.messageId }]);
    expect(parked()).toEqual([]);
  });
});
