import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SANDBOX_CREDENTIALS, SEED } from "../../local/sandbox";
import { queueActivations } from "../../local/stack/queues";
import { functionName, type LocalStack, startLocalStack } from "../../local/stack/stack";
import { ledgerOn } from "../support/ledger";

let stack: LocalStack;
const logLines: string[] = [];

beforeAll(async () => {
  stack = await startLocalStack({
    log: (line) => logLines.push(line),
    env: { SECRET_CACHE_TTL_SECONDS: "1", ZOHO_HTTP_TIMEOUT_MS: "2000", LOG_LEVEL: "DEBUG" },
    // These tests make more calls a minute than the service's share of Zoho's 100.
    sandbox: { rateLimitPerMinute: 1000 },
    params: { zohoMinuteShare: "500" },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const post = async (path: string, body?: unknown) => {
  const response = await fetch(`${stack.httpUrl}${path}`, {
    method: "POST",
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field below
  return { status: response.status, body: (await response.json()) as any };
};

/** Polls until `check` holds, or fails after `timeoutMs`. */
async function eventually(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}; poller ${JSON.stringify(stack.poller?.stats)}; last logs:\n${logLines.slice(-15).join("\n")}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const status = (id: string) => stack.sandbox.contact(id)?.status;
const dlq = () => stack.aws.queueMessages("activation-dlq");
const queue = () => stack.aws.queueMessages("activation-queue");
/** the ledger table of the stack, through the local DynamoDB endpoint */
const ledger = () =>
  ledgerOn(
    new DynamoDBClient({
      endpoint: stack.aws.url,
      region: "us-east-1",
      credentials: { accessKeyId: "l", secretAccessKey: "l" },
    }),
    stack.ledgerTable,
  );

describe("the local stack, end to end", () => {
  it("activates one contact through the HTTP API", async () => {
    const id = SEED.inactiveIds[0] as string;
    const { status: code, body } = await post(`/contacts/${id}/active`);
    expect(code).toBe(200);
    expect(body).toMatchObject({ contact_id: id, outcome: "activated" });
    expect(status(id)).toBe("active");
  });

  it("deactivates one contact, and says so again when it is already inactive", async () => {
    expect((await post(`/contacts/${SEED.activeId}/inactive`)).body.outcome).toBe("deactivated");
    expect((await post(`/contacts/${SEED.activeId}/inactive`)).body.outcome).toBe(
      "already_inactive",
    );
    expect(status(SEED.activeId)).toBe("inactive");
  });

  it("refuses a malformed id with 400 and never calls Zoho with it", async () => {
    const { status: code, body } = await post("/contacts/12%2F..%2Fx/active");
    expect(code).toBe(400);
    expect(body.error.code).toBe("INVALID_REQUEST");
    expect(
      stack.sandbox.requests().some((r) => r.url.includes("..") || r.url.includes("%2F")),
    ).toBe(false);
  });

  it("queues 50 items: every valid one done, every unknown one parked with its reason, invalid ones refused", async () => {
    const valid = SEED.inactiveIds.slice(1, 41);
    const unknown = Array.from({ length: 5 }, (_, i) => String(460000099999990 + i));
    const invalid = ["x1", "", "12-3", "4".repeat(26), "1e5"];
    const items = [
      ...valid.map((contact_id) => ({ contact_id })),
      ...unknown.map((contact_id) => ({ contact_id })),
      ...invalid.map((contact_id) => ({ contact_id })),
    ];
    const { status: code, body } = await post("/activations", { items });
    expect(code).toBe(202);
    expect(body.accepted).toBe(45);
    expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([45, 46, 47, 48, 49]);

    await eventually(
      () => valid.every((id) => status(id) === "active") && dlq().length === 5,
      60_000,
      "the batch",
    );
    const parked = dlq().map((m) => ({
      id: JSON.parse(m.body).contact_id,
      code: m.messageAttributes.error_code?.StringValue,
    }));
    expect(parked.sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      unknown.map((id) => ({ id, code: "CONTACT_NOT_FOUND" })),
    );
    await eventually(() => queue().length === 0, 10_000, "the queue to drain");
  });

  it("refreshes the token on schedule into the ledger; the other functions use it without a grant of their own", async () => {
    const secret = () => JSON.parse(stack.aws.secretValue(stack.secretId) ?? "{}");
    const secretBefore = stack.aws.secretValue(stack.secretId);
    // Make the stored token look close to expiry (5 minutes left), so the refresher must act.
    const table = ledger();
    await table.storeToken(
      stack.secretId,
      { ...stack.sandbox.issueToken(), expires_in: 5 * 60 },
      stack.sandbox.url,
    );
    const before = (await table.item(stack.secretId)).access_token;
    const grantsBefore = stack.sandbox.stats().grants;

    const lambda = new LambdaClient({
      endpoint: stack.lambdaUrl,
      region: "us-east-1",
      credentials: { accessKeyId: "l", secretAccessKey: "l" },
    });
    const output = await lambda.send(
      new InvokeCommand({
        FunctionName: functionName("scheduledTokenRefresh"),
        Payload: Buffer.from("{}"),
      }),
    );
    const result = JSON.parse(Buffer.from(output.Payload ?? []).toString());
    expect(result.refreshed).toBe(true);
    const stored = await table.item(stack.secretId);
    expect(stored.access_token).not.toBe(before);
    expect(new Date(Number(stored.token_expires_at)).toISOString()).toBe(result.expires_at);
    // the secret is the operator's: read, never written
    expect(stack.aws.secretValue(stack.secretId)).toBe(secretBefore);
    expect(secret().access_token).toBeUndefined();
    expect(stack.aws.stats().calls["secretsmanager.PutSecretValue"] ?? 0).toBe(0);

    expect((await post(`/contacts/${SEED.inactiveIds[45]}/active`)).status).toBe(200);
    const { body } = await post("/activations", { items: [{ contact_id: SEED.inactiveIds[46] }] });
    expect(body.accepted).toBe(1);
    await eventually(
      () => status(SEED.inactiveIds[46] as string) === "active",
      20_000,
      "the queued job",
    );
    expect(stack.sandbox.stats().grants - grantsBefore).toBe(1); // the refresher's, and no other
  });

  it("retries jobs through a Zoho outage in the middle of a batch, and does them all after recovery", async () => {
    const ids = SEED.inactiveIds.slice(47, 57);
    const parkedBefore = dlq().length;
    stack.sandbox.settings.failNext = 1_000; // every call fails until the outage ends
    const { body } = await post("/activations", {
      items: ids.map((contact_id) => ({ contact_id })),
    });
    expect(body.accepted).toBe(10);
    const failedReceivesBefore = stack.poller?.stats.reportedFailures ?? 0;
    // Each job fails, and the worker sends it again after its first back-off with one attempt.
    const retried = () =>
      queue().filter(
        (m) =>
          ids.includes(JSON.parse(m.body).contact_id) &&
          m.messageAttributes.attempts?.StringValue === "1",
      ).length;
    await eventually(() => retried() === 10, 20_000, "the failed attempts");
    expect(ids.every((id) => status(id) === "inactive")).toBe(true);
    stack.sandbox.settings.failNext = 0;
    await eventually(() => ids.every((id) => status(id) === "active"), 60_000, "the retried jobs");
    expect(dlq().length).toBe(parkedBefore); // none of them parked
    // sent again by the worker, not left to fail their receive
    expect(stack.poller?.stats.reportedFailures ?? 0).toBe(failedReceivesBefore);
  });

  it("carries out jobs from the bulk queue with the same worker, beside the ledger table", async () => {
    expect(stack.env).toMatchObject({
      ZOHO_LEDGER_TABLE: stack.ledgerTable,
      BULK_QUEUE_URL: stack.bulkQueueUrl,
      BULK_DLQ_URL: stack.bulkDlqUrl,
    });
    const table = await fetch(`${stack.aws.url}/__local/tables/${stack.ledgerTable}/items`);
    expect(table.status).toBe(200);

    const id = SEED.inactiveIds[57] as string;
    const sqs = new SQSClient({
      endpoint: stack.aws.url,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    await queueActivations(sqs, stack.bulkQueueUrl, [id]);
    await eventually(() => status(id) === "active", 20_000, "the bulk job");
    expect(stack.bulkPoller?.stats.deleted).toBeGreaterThanOrEqual(1);
    expect(stack.aws.queueMessages("bulk-queue")).toEqual([]);
  });

  it("closes the loop with a CRM: webhook → job → Zoho change → status done → history → event", async () => {
    const id = SEED.inactiveIds[58] as string; // one no other test of the stack touches
    const response = await fetch(`${stack.httpUrl}/webhooks/local?token=${stack.webhookToken}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ contact_id: id, status: "active", event_id: "e2e-1" }).toString(),
    });
    expect(response.status).toBe(202);
    const { job_id: jobId } = (await response.json()) as { job_id: string };
    await eventually(() => status(id) === "active", 20_000, "the webhook's job");
    const get = async (path: string) =>
      // biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field below
      (await fetch(`${stack.httpUrl}${path}`)).json() as Promise<any>;
    let record = await get(`/activations/${jobId}`);
    for (let i = 0; i < 40 && record.state !== "done"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      record = await get(`/activations/${jobId}`);
    }
    expect(record).toMatchObject({
      job_id: jobId,
      state: "done",
      outcome: "activated",
      source: "local",
    });
    const history = await get(`/contacts/${id}/history`);
    expect(history.changes[0]).toMatchObject({
      job_id: jobId,
      action: "activate",
      source: "local",
    });
    expect(stack.aws.events().filter((e) => e.detail.job_id === jobId)).toEqual([
      expect.objectContaining({
        detailType: "Contact status changed",
        source: "zoho-contact-status",
      }),
    ]);
    const wrong = await fetch(`${stack.httpUrl}/webhooks/local?token=wrong`, {
      method: "POST",
      body: "{}",
    });
    expect(wrong.status).toBe(401);
  });

  it("never writes a client secret, a refresh token or an access token to a log line", async () => {
    const token = (await ledger().item(stack.secretId)).access_token;
    expect(token).toBeTruthy();
    const logs = logLines.join("\n");
    expect(logLines.length).toBeGreaterThan(20);
    expect(logs).toContain("Job done");
    for (const value of [
      SANDBOX_CREDENTIALS.client_secret,
      SANDBOX_CREDENTIALS.refresh_token,
      token,
    ]) {
      expect(logs).not.toContain(value);
    }
  });
});
