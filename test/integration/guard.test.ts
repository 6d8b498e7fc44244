import { randomUUID } from "node:crypto";
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { HELD_TTL_SECONDS } from "../../lib/jobs/records";
import { ledgerKeys } from "../../lib/ledger/keys";
import { DynamoSyncLedger } from "../../lib/sync/state";
import { httpEvent, lambdaContext } from "../../local/lambda-events";
import { type Sandbox, SEED, startSandbox } from "../../local/sandbox";
import { type LocalWorker, startLocalWorker, TABLE } from "../support/local-worker";

// The guard before a deactivation and the reason a rule-driven job carries: jobs on the real
// queue, the worker against the Zoho sandbox (real HTTP) and the local AWS endpoint, the API's
// answers, the job record, the contact's history and the EventBridge event.

let sandbox: Sandbox;
let worker: LocalWorker;

beforeAll(async () => {
  sandbox = await startSandbox({ contacts: 40 });
  worker = await startLocalWorker(sandbox, {
    ZOHO_CONCURRENCY: "1", // one call at a time, so counts of Zoho calls are exact
    ZOHO_MINUTE_SHARE: "1000",
  });
});
afterAll(() => Promise.all([sandbox.close(), worker.close()]));
beforeEach(async () => {
  sandbox.reset();
  await worker.setUp();
  await worker.storeFreshToken();
});
afterEach(() => {
  vi.unstubAllEnvs(); // a test's own variable (ZOHO_DAILY_QUOTA) never reaches the next; setUp stubs the rest again
});

/** Seed contact n: a vendor when n is a multiple of 3, else a customer; inactive when a multiple of 4. */
const contact = (n: number) => String(460_000_000_000_000 + n);
const CUSTOMER = contact(1); // active customer
const OTHER_CUSTOMER = contact(10); // active customer
const VENDOR = contact(15); // active vendor

const REASON = {
  rule: "Account_Type in [Former Customer] → inactive",
  crm_record_id: "5725767000000649013",
  field: "Account_Type",
  value: "Former Customer",
  source: "zoho_crm",
} as const;

async function call(input: Parameters<typeof httpEvent>[0]) {
  const { handler } = await import("../../functions/http-api");
  const response = (await handler(
    httpEvent(input),
    lambdaContext("http-api"),
  )) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: JSON.parse(String(response.body ?? "null")) };
}

/** Puts one job on the activation queue as a sender would (no API in between); its id is the message id. */
async function queueJob(job: Record<string, unknown>): Promise<string> {
  const { MessageId } = await worker.sqs.send(
    new SendMessageCommand({
      QueueUrl: worker.urls.activation.queue,
      MessageBody: JSON.stringify(job),
    }),
  );
  return MessageId as string;
}

/** A guarded sync deactivation queued as a run queues it: its contact's pending item, then the job. */
async function queueSyncDeactivation(contactId: string) {
  const jobId = randomUUID();
  const pending = ledgerKeys.pendingJob(SEED.organizationId, contactId);
  await worker.dynamo.send(
    new PutItemCommand({
      TableName: TABLE,
      Item: { ...pending, job_id: { S: jobId }, action: { S: "deactivate" } },
    }),
  );
  await queueJob({
    contact_id: contactId,
    organization_id: SEED.organizationId,
    action: "deactivate",
    source: "sync",
    job_id: jobId,
    guard: { outstanding: true },
  });
  return { jobId, pending };
}

const record = async (jobId: string) =>
  (await call({ method: "GET", path: `/activations/${jobId}` })).body;
const history = async (contactId: string) =>
  (await call({ method: "GET", path: `/contacts/${contactId}/history` })).body.changes;
const eventsOf = (jobId: string) =>
  worker.aws.events().filter((event) => event.detail.job_id === jobId);
const calls = (endpoint: string) => sandbox.requests().filter((r) => r.endpoint === endpoint);

describe("the guard before a deactivation", () => {
  it("keeps a customer with an open invoice active: the job ends held, with the amounts in its record, history and event", async () => {
    sandbox.setContactAmounts(CUSTOMER, { outstanding_receivable_amount: 250.5 });
    const jobId = await queueJob({
      contact_id: CUSTOMER,
      action: "deactivate",
      source: "sync",
      reason: REASON,
      guard: { outstanding: true },
    });
    expect((await worker.runOnce()).response).toEqual({ batchItemFailures: [] });

    expect(sandbox.contact(CUSTOMER)?.status).toBe("active");
    expect(calls("contact.get")).toHaveLength(1);
    expect(calls("contact.inactive")).toEqual([]);
    // acknowledged: nothing left to retry, nothing parked
    expect(worker.messages("activation-queue")).toEqual([]);
    expect(worker.messages("activation-dlq")).toEqual([]);

    const held = {
      code: "OUTSTANDING_BALANCE",
      contact_type: "customer",
      amounts: { outstanding_receivable_amount: 250.5, unused_credits_receivable_amount: 0 },
    };
    const job = await record(jobId);
    expect(job).toMatchObject({
      state: "held",
      contact_id: CUSTOMER,
      reason: REASON,
      request: { action: "deactivate", guard: { outstanding: true } },
      held,
    });
    expect(job.held.message).toMatch(/outstanding_receivable_amount 250.5/);
    expect(job.outcome).toBeUndefined();
    expect(job.attempts).toEqual([expect.objectContaining({ result: "OUTSTANDING_BALANCE" })]);

    expect(await history(CUSTOMER)).toEqual([
      expect.objectContaining({
        job_id: jobId,
        action: "deactivate",
        outcome: "held",
        reason: REASON,
        held: expect.objectContaining(held),
      }),
    ]);
    const events = eventsOf(jobId);
    expect(events.map((event) => event.detailType)).toEqual(["Activation held"]);
    expect(events[0]?.detail).toMatchObject({ state: "held", reason: REASON, held });
  });

  it("a held sync job ends: its contact's pending item says why for 20 h, so runs report it held instead of queueing it again", async () => {
    sandbox.setContactAmounts(CUSTOMER, { outstanding_receivable_amount: 1 });
    const { jobId, pending } = await queueSyncDeactivation(CUSTOMER);
    await worker.runOnce();
    expect((await record(jobId)).state).toBe("held");
    const { Item } = await worker.dynamo.send(
      new GetItemCommand({ TableName: TABLE, Key: pending, ConsistentRead: true }),
    );
    const expiresIn = Number(Item?.expires_at?.N) - Date.now() / 1000;
    expect(expiresIn).toBeGreaterThan(HELD_TTL_SECONDS - 60);
    expect(expiresIn).toBeLessThanOrEqual(HELD_TTL_SECONDS + 1);
    const held = {
      code: "OUTSTANDING_BALANCE",
      contact_type: "customer",
      amounts: expect.objectContaining({ outstanding_receivable_amount: 1 }),
    };
    const ledger = new DynamoSyncLedger({ dynamo: worker.dynamo, table: TABLE });
    const contacts = await ledger.pendingContacts(SEED.organizationId);
    expect(contacts.get(CUSTOMER)).toEqual({ held: expect.objectContaining(held) });
    // past its 20 h, the next run may queue the contact again (and the guard reads it again)
    const later = new DynamoSyncLedger({
      dynamo: worker.dynamo,
      table: TABLE,
      now: () => new Date(Date.now() + (HELD_TTL_SECONDS + 1) * 1000),
    });
    expect((await later.pendingContacts(SEED.organizationId)).has(CUSTOMER)).toBe(false);
  });

  it("a sync job that ends done clears its contact's pending item", async () => {
    const { jobId, pending } = await queueSyncDeactivation(OTHER_CUSTOMER);
    await worker.runOnce();
    expect((await record(jobId)).state).toBe("done");
    const { Item } = await worker.dynamo.send(
      new GetItemCommand({ TableName: TABLE, Key: pending, ConsistentRead: true }),
    );
    expect(Item).toBeUndefined();
  });

  it("keeps a customer with unused credits active", async () => {
    sandbox.setContactAmounts(CUSTOMER, { unused_credits_receivable_amount: 40 });
    const jobId = await queueJob({
      contact_id: CUSTOMER,
      action: "deactivate",
      guard: { outstanding: true },
    });
    await worker.runOnce();
    expect(sandbox.contact(CUSTOMER)?.status).toBe("active");
    expect(await record(jobId)).toMatchObject({
      state: "held",
      held: { amounts: { unused_credits_receivable_amount: 40 } },
    });
  });

  it("keeps a vendor with an outstanding payable active", async () => {
    sandbox.setContactAmounts(VENDOR, { outstanding_payable_amount: 1200 });
    const jobId = await queueJob({
      contact_id: VENDOR,
      action: "deactivate",
      reason: { ...REASON, source: "hubspot" },
      guard: { outstanding: true },
    });
    await worker.runOnce();
    expect(sandbox.contact(VENDOR)?.status).toBe("active");
    expect(calls("contact.inactive")).toEqual([]);
    expect(await record(jobId)).toMatchObject({
      state: "held",
      held: {
        code: "OUTSTANDING_BALANCE",
        contact_type: "vendor",
        amounts: { outstanding_payable_amount: 1200 },
      },
    });
    expect(eventsOf(jobId).map((event) => event.detailType)).toEqual(["Activation held"]);
  });

  it("a vendor is not held for a customer's amounts, nor a customer for a vendor's", async () => {
    sandbox.setContactAmounts(VENDOR, { outstanding_receivable_amount: 99 });
    sandbox.setContactAmounts(OTHER_CUSTOMER, { outstanding_payable_amount: 99 });
    const vendorJob = await queueJob({
      contact_id: VENDOR,
      action: "deactivate",
      guard: { outstanding: true },
    });
    const customerJob = await queueJob({
      contact_id: OTHER_CUSTOMER,
      action: "deactivate",
      guard: { outstanding: true },
    });
    await worker.runOnce();
    expect(sandbox.contact(VENDOR)?.status).toBe("inactive");
    expect(sandbox.contact(OTHER_CUSTOMER)?.status).toBe("inactive");
    expect((await record(vendorJob)).state).toBe("done");
    expect((await record(customerJob)).state).toBe("done");
  });

  it("deactivates a customer with nothing outstanding: one read, then the action, and the reason everywhere", async () => {
    const jobId = await queueJob({
      contact_id: OTHER_CUSTOMER,
      action: "deactivate",
      source: "sync",
      reason: REASON,
      guard: { outstanding: true },
    });
    await worker.runOnce();
    expect(sandbox.contact(OTHER_CUSTOMER)?.status).toBe("inactive");
    expect(sandbox.requests().map((r) => r.endpoint)).toEqual(["contact.get", "contact.inactive"]);
    const job = await record(jobId);
    expect(job).toMatchObject({ state: "done", outcome: "deactivated", reason: REASON });
    expect(job.held).toBeUndefined();
    expect(await history(OTHER_CUSTOMER)).toEqual([
      expect.objectContaining({ job_id: jobId, outcome: "deactivated", reason: REASON }),
    ]);
    expect(eventsOf(jobId)).toEqual([
      expect.objectContaining({
        detailType: "Contact status changed",
        detail: expect.objectContaining({ reason: REASON, state: "done" }),
      }),
    ]);
  });

  it("a job without the guard deactivates regardless of the balance, without reading the contact", async () => {
    sandbox.setContactAmounts(CUSTOMER, { outstanding_receivable_amount: 250 });
    const unguarded = await queueJob({ contact_id: CUSTOMER, action: "deactivate" });
    sandbox.setContactAmounts(VENDOR, { outstanding_payable_amount: 10 });
    const guardOff = await queueJob({
      contact_id: VENDOR,
      action: "deactivate",
      guard: { outstanding: false },
    });
    await worker.runOnce();
    expect(sandbox.contact(CUSTOMER)?.status).toBe("inactive");
    expect(sandbox.contact(VENDOR)?.status).toBe("inactive");
    expect(calls("contact.get")).toEqual([]);
    expect((await record(unguarded)).state).toBe("done");
    expect((await record(guardOff)).state).toBe("done");
  });

  it("an activation ignores the guard: no read", async () => {
    const inactive = SEED.inactiveIds[0] as string;
    sandbox.setContactAmounts(inactive, { outstanding_receivable_amount: 5 });
    await queueJob({ contact_id: inactive, action: "activate", guard: { outstanding: true } });
    await worker.runOnce();
    expect(sandbox.contact(inactive)?.status).toBe("active");
    expect(calls("contact.get")).toEqual([]);
  });

  it("the guard's read takes a permit from the budget: with one call left for the day, the action waits", async () => {
    // Zoho reports no quota here, so the ledger counts against ZOHO_DAILY_QUOTA alone.
    sandbox.settings.rateLimitHeaders = false;
    vi.stubEnv("ZOHO_DAILY_QUOTA", "1");
    const jobId = await queueJob({
      contact_id: OTHER_CUSTOMER,
      action: "deactivate",
      guard: { outstanding: true },
    });
    await worker.runOnce();
    expect(calls("contact.get")).toHaveLength(1);
    expect(calls("contact.inactive")).toEqual([]);
    expect(sandbox.contact(OTHER_CUSTOMER)?.status).toBe("active");
    expect(await record(jobId)).toMatchObject({
      state: "waiting",
      waiting_for: "ZOHO_DAILY_LIMIT",
    });
    expect(worker.messages("activation-queue")).toHaveLength(1); // sent again, not lost
  });

  it("a read Zoho fails is a Zoho error like any other: retried, never a deactivation unchecked", async () => {
    sandbox.setContactAmounts(CUSTOMER, { outstanding_receivable_amount: 250 });
    sandbox.settings.failNext = 10; // more than the inline retries
    const jobId = await queueJob({
      contact_id: CUSTOMER,
      action: "deactivate",
      guard: { outstanding: true },
    });
    await worker.runOnce();
    expect(calls("contact.get").length).toBeGreaterThan(1); // retried inline first
    expect(calls("contact.inactive")).toEqual([]);
    expect(sandbox.contact(CUSTOMER)?.status).toBe("active");
    expect(await record(jobId)).toMatchObject({
      state: "waiting",
      waiting_for: "ZOHO_UNAVAILABLE",
    });
    expect(worker.messages("activation-queue")).toEqual([
      expect.objectContaining({ attempts: "1", waiting_for: "ZOHO_UNAVAILABLE" }),
    ]);
    expect(worker.messages("activation-dlq")).toEqual([]);
  });

  it("parks a guarded job whose contact does not exist, as an unguarded one", async () => {
    await queueJob({
      contact_id: SEED.unknownId,
      action: "deactivate",
      guard: { outstanding: true },
    });
    await worker.runOnce();
    expect(worker.messages("activation-dlq")).toEqual([
      expect.objectContaining({ error_code: "CONTACT_NOT_FOUND" }),
    ]);
    expect(calls("contact.inactive")).toEqual([]);
  });
});

describe("the reason and the guard over HTTP", () => {
  it("POST /activations takes an item's reason and guard, and the record answers them", async () => {
    sandbox.setContactAmounts(CUSTOMER, { outstanding_receivable_amount: 7 });
    const accepted = await call({
      method: "POST",
      path: "/activations",
      body: JSON.stringify({
        items: [
          {
            contact_id: CUSTOMER,
            action: "deactivate",
            reason: { ...REASON, rule: "  padded  " },
            guard: { outstanding: true },
          },
        ],
      }),
    });
    expect(accepted).toMatchObject({ status: 202, body: { accepted: 1, rejected: [] } });
    const [jobId] = accepted.body.job_ids as [string];
    expect(await record(jobId)).toMatchObject({
      state: "queued",
      reason: { ...REASON, rule: "padded" },
      request: { guard: { outstanding: true } },
    });
    await worker.runOnce();
    expect(await record(jobId)).toMatchObject({ state: "held", reason: { rule: "padded" } });
    expect(sandbox.contact(CUSTOMER)?.status).toBe("active");
  });

  it("POST /activations never guards an item that does not ask", async () => {
    sandbox.setContactAmounts(CUSTOMER, { outstanding_receivable_amount: 7 });
    await call({
      method: "POST",
      path: "/activations",
      body: JSON.stringify({ items: [{ contact_id: CUSTOMER, action: "deactivate" }] }),
    });
    await worker.runOnce();
    expect(sandbox.contact(CUSTOMER)?.status).toBe("inactive");
    expect(calls("contact.get")).toEqual([]);
  });

  it.each([
    ["a reason that is not an object", { reason: "churned" }, /reason must be a JSON object/],
    [
      "a reason with an unknown key",
      { reason: { ...REASON, score: 3 } },
      /reason does not take score/,
    ],
    [
      "a reason without its record id",
      { reason: { ...REASON, crm_record_id: undefined } },
      /crm_record_id/,
    ],
    ["a blank rule", { reason: { ...REASON, rule: "   " } }, /reason.rule must not be empty/],
    [
      "a rule too long",
      { reason: { ...REASON, rule: "r".repeat(201) } },
      /reason.rule is at most 200/,
    ],
    [
      "a record id too long",
      { reason: { ...REASON, crm_record_id: "1".repeat(65) } },
      /at most 64/,
    ],
    ["a field too long", { reason: { ...REASON, field: "f".repeat(101) } }, /at most 100/],
    [
      "a value too long",
      { reason: { ...REASON, value: "v".repeat(201) } },
      /reason.value is at most 200/,
    ],
    ["an unknown source", { reason: { ...REASON, source: "salesforce" } }, /reason.source must be/],
    ["a guard that is not an object", { guard: true }, /guard must be a JSON object/],
    [
      "a guard with a string",
      { guard: { outstanding: "yes" } },
      /guard.outstanding must be true or false/,
    ],
    [
      "a guard with an unknown key",
      { guard: { outstanding: true, credit: true } },
      /guard does not take credit/,
    ],
  ])(
    "refuses an item with %s (400 INVALID_REQUEST), queuing nothing",
    async (_what, extra, message) => {
      const answer = await call({
        method: "POST",
        path: "/activations",
        body: JSON.stringify({ items: [{ contact_id: CUSTOMER, action: "deactivate", ...extra }] }),
      });
      expect(answer.body).toMatchObject({
        accepted: 0,
        rejected: [{ index: 0, error: { code: "INVALID_REQUEST" } }],
      });
      expect(answer.body.rejected[0].error.message).toMatch(message);
      expect(worker.messages("activation-queue")).toEqual([]);
    },
  );

  it("parks a queue message with a bad reason at once, with the reason of the refusal", async () => {
    await queueJob({ contact_id: CUSTOMER, action: "deactivate", reason: { rule: "x" } });
    await worker.runOnce();
    expect(worker.messages("activation-dlq")).toEqual([
      expect.objectContaining({ error_code: "INVALID_REQUEST" }),
    ]);
    expect(sandbox.requests().filter((r) => r.endpoint !== "token")).toEqual([]);
  });

  it("POST /contacts/{id}/inactive?guard=outstanding: 409 OUTSTANDING_BALANCE with the amounts, the contact left active, the job held", async () => {
    sandbox.setContactAmounts(CUSTOMER, { outstanding_receivable_amount: 80 });
    const answer = await call({
      method: "POST",
      path: `/contacts/${CUSTOMER}/inactive`,
      pathParameters: { contact_id: CUSTOMER },
      query: { guard: "outstanding" },
    });
    expect(answer.status).toBe(409);
    expect(answer.body.error).toMatchObject({
      code: "OUTSTANDING_BALANCE",
      details: {
        contact_id: CUSTOMER,
        contact_type: "customer",
        amounts: { outstanding_receivable_amount: 80, unused_credits_receivable_amount: 0 },
      },
    });
    expect(sandbox.contact(CUSTOMER)?.status).toBe("active");
    expect(calls("contact.inactive")).toEqual([]);
    const job = await record(answer.body.error.details.job_id);
    expect(job).toMatchObject({ state: "held", request: { guard: { outstanding: true } } });
    expect((await history(CUSTOMER))[0]).toMatchObject({ outcome: "held" });
  });

  it("POST /contacts/{id}/inactive?guard=outstanding deactivates a contact with nothing outstanding", async () => {
    const answer = await call({
      method: "POST",
      path: `/contacts/${OTHER_CUSTOMER}/inactive`,
      pathParameters: { contact_id: OTHER_CUSTOMER },
      query: { guard: "outstanding" },
    });
    expect(answer).toMatchObject({ status: 200, body: { outcome: "deactivated" } });
    expect(sandbox.requests().map((r) => r.endpoint)).toEqual(["contact.get", "contact.inactive"]);
  });

  it("POST /contacts/{id}/inactive without ?guard is not guarded", async () => {
    sandbox.setContactAmounts(CUSTOMER, { outstanding_receivable_amount: 80 });
    const answer = await call({
      method: "POST",
      path: `/contacts/${CUSTOMER}/inactive`,
      pathParameters: { contact_id: CUSTOMER },
    });
    expect(answer).toMatchObject({ status: 200, body: { outcome: "deactivated" } });
    expect(calls("contact.get")).toEqual([]);
  });

  it.each([
    ["inactive", "Outstanding", /guard must be "outstanding"/],
    ["inactive", "", /guard must be "outstanding"/],
    ["active", "outstanding", /guard applies to deactivations only/],
  ])(
    "POST /contacts/{id}/%s?guard=%s is refused with 400 before any Zoho call",
    async (verb, guard, message) => {
      const answer = await call({
        method: "POST",
        path: `/contacts/${CUSTOMER}/${verb}`,
        pathParameters: { contact_id: CUSTOMER },
        query: { guard },
      });
      expect(answer.status).toBe(400);
      expect(answer.body.error).toMatchObject({ code: "INVALID_REQUEST" });
      expect(answer.body.error.message).toMatch(message);
      expect(sandbox.requests().filter((r) => r.endpoint !== "token")).toEqual([]);
    },
  );
});
