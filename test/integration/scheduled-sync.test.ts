import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handler as syncHandler } from "../../functions/scheduled-sync";
import { handler as workerHandler } from "../../functions/sqs-worker";
import type { SyncSummary } from "../../lib/sync/sync";
import { lambdaContext, sqsEvent, sqsRecord } from "../../local/lambda-events";
import { acceptEverything, allAccepted } from "../../local/queue-mock";
import {
  contactId,
  ORGANIZATION_ID,
  type Sandbox,
  SEED,
  sandboxSecret,
  startSandbox,
} from "../../local/sandbox";
import { type Ledger, startLedger } from "../support/ledger";
import { mockSecretStore } from "../support/secret-store";

const CONTACTS = 1_200;
const SECRET_ID = "zoho/books";
const BULK_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/bulk-queue";
const BULK_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:bulk-queue";
const BULK_DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/bulk-dlq";
let sandbox: Sandbox;
let ledger: Ledger;
let secret: ReturnType<typeof mockSecretStore>;
const sqs = mockClient(SQSClient);
// Outcome events are accepted by a mock here; test/integration/jobs.test.ts puts them for real.
mockClient(EventBridgeClient)
  .on(PutEventsCommand)
  .resolves({ FailedEntryCount: 0, Entries: [{ EventId: "event" }] });

/** The CRM's export endpoint: answers whatever the test sets. */
let source: { status: number; body: string; contentType: string; hang?: boolean };
let server: Server;
let sourceUrl: string;

beforeAll(async () => {
  [sandbox, ledger] = await Promise.all([
    startSandbox({ contacts: CONTACTS, settings: { rateLimitPerMinute: 100_000 } }),
    startLedger(),
  ]);
  server = createServer((_req, res) => {
    if (source.hang) return; // never answers
    res.writeHead(source.status, { "content-type": source.contentType });
    res.end(source.body);
  });
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  sourceUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/export/contacts.json?token=crm-secret`;
  ledger.stubEnv();
  vi.stubEnv("ZOHO_SECRET_ID", SECRET_ID);
  // the sync queues on the bulk queue; the activation queue is the HTTP API's
  vi.stubEnv(
    "ACTIVATION_QUEUE_URL",
    "https://sqs.us-east-1.amazonaws.com/123456789012/activation-queue",
  );
  vi.stubEnv(
    "ACTIVATION_DLQ_URL",
    "https://sqs.us-east-1.amazonaws.com/123456789012/activation-dlq",
  );
  vi.stubEnv("BULK_QUEUE_URL", BULK_QUEUE_URL);
  vi.stubEnv("BULK_DLQ_URL", BULK_DLQ_URL);
  vi.stubEnv("ZOHO_HTTP_TIMEOUT_MS", "500");
  vi.stubEnv("ZOHO_MINUTE_SHARE", "100000"); // not a budget test: the bulk lane must not wait
  secret = mockSecretStore({});
});
afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await Promise.all([sandbox.close(), ledger.close()]);
  vi.unstubAllEnvs();
});
beforeEach(async () => {
  sandbox.reset();
  sandbox.settings.rateLimitPerMinute = 100_000;
  await ledger.reset();
  secret.set(sandboxSecret(sandbox));
  await ledger.storeToken(SECRET_ID, sandbox.issueToken(), sandbox.url);
  sqs.reset();
  acceptEverything(sqs);
});

const serve = (document: unknown, status = 200) => {
  source = { status, body: JSON.stringify(document), contentType: "application/json" };
};
const sync = async (input: Record<string, unknown>) =>
  (await syncHandler(
    {
      organization_id: ORGANIZATION_ID,
      mode: "full",
      source: { type: "url", url: sourceUrl },
      ...input,
    },
    lambdaContext("sync"),
  )) as SyncSummary;
/** The jobs the sync queued, every one on the bulk queue. */
const queued = () =>
  sqs.commandCalls(SendMessageBatchCommand).flatMap((c) => {
    expect(c.args[0].input.QueueUrl).toBe(BULK_QUEUE_URL);
    return (c.args[0].input.Entries ?? []).map((e) => JSON.parse(e.MessageBody ?? ""));
  });

// The desired state of a CRM that wants 40 inactive contacts back (30 by id, 10 by email, in
// any case), 20 already-active ones kept, 5 contacts retired, 3 unknown, and one ambiguous email.
const inactive = Array.from({ length: CONTACTS }, (_, i) => i + 1)
  .filter((n) => n % 4 === 0 && n !== 12) // the seed's inactive contacts with an email of their own
  .map(contactId);
const wanted = {
  contacts: [
    ...inactive.slice(0, 30).map((contact_id) => ({ contact_id, status: "active" })),
    ...inactive.slice(30, 40).map((id) => ({
      email: ` CONTACT${Number(id) - 460000000000000}@example.com`,
      status: "active",
    })),
    ...Array.from({ length: 20 }, (_, i) => ({
      contact_id: contactId(4 * i + 1),
      status: "active",
    })),
    ...Array.from({ length: 5 }, (_, i) => ({
      contact_id: contactId(4 * i + 2),
      status: "inactive",
    })),
    ...["460000099999991", "460000099999992"].map((contact_id) => ({
      contact_id,
      status: "active",
    })),
    { email: "nobody@example.com", status: "active" },
    { email: SEED.ambiguousEmail, status: "active" },
  ],
};

describe("scheduled-sync against the sandbox (1,200 contacts)", () => {
  it("queues exactly the activations the source asks for, and after the worker, plans nothing", async () => {
    serve(wanted);
    const summary = await sync({});
    expect(summary).toMatchObject({
      organization_id: ORGANIZATION_ID,
      mode: "full",
      dry_run: false,
      listed: ["Status.All"],
      contacts_read: CONTACTS,
      desired: wanted.contacts.length,
      to_activate: 40,
      to_deactivate: 0,
      deactivations_skipped: 5,
      unmatched: 3,
      ambiguous: 1,
      jobs_queued: 40,
      // 1,200 contacts, 200 a page; then each of the 10 changes named by email checked against
      // every contact person (Zoho's email filter; their rows show the address, so no read)
      zoho_calls: 6 + 10,
      list_calls: 6,
    });
    expect(summary.ambiguous_sample[0]?.candidates).toHaveLength(2);
    const jobs = queued();
    expect(jobs.map((j) => j.contact_id).sort()).toEqual(inactive.slice(0, 40).sort());
    for (const job of jobs) {
      expect(job).toEqual({
        contact_id: expect.any(String),
        action: "activate",
        organization_id: ORGANIZATION_ID,
        source: "sync",
        requested_at: expect.any(String),
        job_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
    }
    const listCalls = sandbox
      .requests()
      .filter((r) => r.endpoint === "contacts.list" && !r.url.includes("email="));
    expect(listCalls).toHaveLength(6);
    expect(
      listCalls.every(
        (r) =>
          r.url.includes("filter_by=Status.All") &&
          r.url.includes("per_page=200") &&
          r.url.includes("sort_column=last_modified_time&sort_order=D"),
      ),
    ).toBe(true);

    // The worker carries the jobs out as they come from the bulk queue...
    const result = await workerHandler(
      sqsEvent(jobs.map((job) => sqsRecord(job, { eventSourceARN: BULK_QUEUE_ARN }))),
      lambdaContext("worker"),
    );
    expect(result).toEqual({ batchItemFailures: [] });
    expect(sqs.commandCalls(SendMessageCommand)).toEqual([]); // none parked, none sent again
    for (const id of inactive.slice(0, 40)) expect(sandbox.contact(id)?.status).toBe("active");
    // ...and the next run has nothing left to do (the worker cleared the pending items).
    sqs.resetHistory();
    expect(await sync({})).toMatchObject({
      to_activate: 0,
      jobs_queued: 0,
      unmatched: 3,
      ambiguous: 1,
    });
    expect(queued()).toEqual([]);
  });

  it("queues deactivations only with apply_deactivations", async () => {
    serve(wanted);
    const summary = await sync({ apply_deactivations: true });
    expect(summary).toMatchObject({
      to_activate: 40,
      to_deactivate: 5,
      deactivations_skipped: 0,
      jobs_queued: 45,
    });
    expect(queued().filter((j) => j.action === "deactivate")).toHaveLength(5);
  });

  it("reports the plan of a dry run and queues nothing", async () => {
    serve(wanted);
    expect(await sync({ dry_run: true })).toMatchObject({
      dry_run: true,
      to_activate: 40,
      jobs_queued: 0,
    });
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it("makes no change at all when the plan is larger than max_changes, and says so", async () => {
    serve(wanted);
    await expect(sync({ max_changes: 39 })).rejects.toMatchObject({
      code: "SYNC_LIMIT_EXCEEDED",
      message: expect.stringContaining("would make 40 changes, more than max_changes 39"),
    });
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it("takes the desired state inline too", async () => {
    const summary = await sync({
      source: { type: "inline", contacts: wanted.contacts.slice(0, 3) },
    });
    expect(summary).toMatchObject({ to_activate: 3, jobs_queued: 3 });
  });

  it.each([
    ["answers HTTP 500", () => serve({ error: "down" }, 500), "answered HTTP 500"],
    [
      "times out",
      () => (source = { status: 200, body: "", contentType: "application/json", hang: true }),
      "did not answer within 500 ms",
    ],
    [
      "answers an HTML page",
      () => (source = { status: 200, body: "<html>login</html>", contentType: "text/html" }),
      "did not answer JSON",
    ],
    [
      "answers an invalid document",
      () => serve({ contacts: [{ contact_id: "12", status: "gone" }] }),
      'status must be "active" or "inactive"',
    ],
  ])("queues nothing when the source %s, and says why", async (_what, arrange, why) => {
    arrange();
    const error = (await sync({}).catch((e: unknown) => e)) as Error & { code: string };
    expect(error.code).toBe("SYNC_SOURCE_FAILED");
    expect(error.message).toContain(why);
    expect(error.message).not.toContain("crm-secret"); // the URL's query string may hold a token
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it("counts a name given twice alike once, skips and reports conflicting ones, and goes on", async () => {
    const [a, b, c] = inactive;
    serve({
      contacts: [
        { contact_id: a, status: "active" },
        { contact_id: a, status: "active" }, // the same wish twice: one entry
        { contact_id: b, status: "active" },
        { contact_id: b, status: "inactive" }, // both wishes by id: left alone
        { contact_id: c, status: "active" },
        { email: `contact${Number(c) - 460000000000000}@example.com`, status: "inactive" }, // by email
        { email: "a@x.io", status: "active" },
        { email: " A@x.io", status: "inactive" },
      ],
    });
    const summary = await sync({ apply_deactivations: true });
    expect(summary).toMatchObject({
      duplicates: 1,
      conflicting: 3,
      to_activate: 1,
      jobs_queued: 1,
    });
    expect(summary.conflicting_sample).toEqual([
      { contact_id: b },
      { email: "a@x.io" },
      { contact_id: c },
    ]);
    expect(queued().map((j) => j.contact_id)).toEqual([a]);
  });

  it("reads a CSV export (by content type) like JSON", async () => {
    source = {
      status: 200,
      contentType: "text/csv; charset=utf-8",
      body: `contact_id,email,status\r\n${inactive[0]},,active\r\n,"CONTACT${Number(inactive[1]) - 460000000000000}@example.com",active\r\n`,
    };
    expect(await sync({})).toMatchObject({ desired: 2, to_activate: 2, jobs_queued: 2 });
  });

  it("queues nothing for a contact whose sync job is still waiting", async () => {
    serve({
      contacts: inactive.slice(0, 5).map((contact_id) => ({ contact_id, status: "active" })),
    });
    expect(await sync({})).toMatchObject({ to_activate: 5, jobs_queued: 5 });
    sqs.resetHistory();
    expect(await sync({})).toMatchObject({ to_activate: 0, already_queued: 5, jobs_queued: 0 });
    expect(queued()).toEqual([]);
  });

  it("a worker done with a job before the sync went on: the contact is not held back", async () => {
    const [id] = inactive as [string];
    serve({ contacts: [{ contact_id: id, status: "active" }] });
    // The worker carries each job out the moment SQS has it, before the sync's next write.
    sqs.on(SendMessageBatchCommand).callsFake(async (input) => {
      const records = (input.Entries ?? []).map((e: { MessageBody?: string }) =>
        sqsRecord(JSON.parse(e.MessageBody ?? ""), { eventSourceARN: BULK_QUEUE_ARN }),
      );
      await workerHandler(sqsEvent(records), lambdaContext("worker"));
      return allAccepted(input);
    });
    expect(await sync({})).toMatchObject({ to_activate: 1, jobs_queued: 1 });
    expect(sandbox.contact(id)?.status).toBe("active");
    // Someone retires it in Books again: the next run must queue it, not think it waits.
    sandbox.setContactStatus(id, "inactive");
    expect(await sync({})).toMatchObject({ to_activate: 1, already_queued: 0, jobs_queued: 1 });
  });

  it("jobs SQS would not take hold nothing back: the next run queues them", async () => {
    serve({
      contacts: inactive.slice(0, 3).map((contact_id) => ({ contact_id, status: "active" })),
    });
    sqs.on(SendMessageBatchCommand).rejects(new Error("SQS is down"));
    await expect(sync({})).rejects.toMatchObject({ code: "CONFIGURATION_ERROR" });
    acceptEverything(sqs);
    expect(await sync({})).toMatchObject({ to_activate: 3, already_queued: 0, jobs_queued: 3 });
  });

  it("refuses an invalid input before reading anything", async () => {
    await expect(
      syncHandler({ source: { type: "ftp" } }, lambdaContext("sync")),
    ).rejects.toMatchObject({
      code: "INVALID_REQUEST",
    });
    expect(sandbox.requests()).toEqual([]);
  });
});
