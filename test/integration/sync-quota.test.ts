import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handler as syncHandler } from "../../functions/scheduled-sync";
import { handler as workerHandler } from "../../functions/sqs-worker";
import type { SyncSummary } from "../../lib/sync/sync";
import { ZohoBooksClient } from "../../lib/zoho/books-client";
import { lambdaContext, sqsEvent, sqsRecord } from "../../local/lambda-events";
import { acceptEverything } from "../../local/queue-mock";
import {
  contactId,
  ORGANIZATION_ID,
  type Sandbox,
  sandboxSecret,
  startSandbox,
} from "../../local/sandbox";
import { type Ledger, startLedger } from "../support/ledger";
import { mockSecretStore } from "../support/secret-store";

// The issue's target: a 10,000-contact organization with 500 inactive contacts (every 20th).
const CONTACTS = 10_000;
const INACTIVE_EVERY = 20;
const SECRET_ID = "zoho/books";
const BULK_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/bulk-queue";
const BULK_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:bulk-queue";
let sandbox: Sandbox;
let ledger: Ledger;
let secret: ReturnType<typeof mockSecretStore>;
const sqs = mockClient(SQSClient);

beforeAll(async () => {
  [sandbox, ledger] = await Promise.all([
    startSandbox({
      contacts: CONTACTS,
      inactiveEvery: INACTIVE_EVERY,
      settings: { rateLimitPerMinute: 100_000 },
    }),
    startLedger(),
  ]);
  ledger.stubEnv();
  vi.stubEnv("ZOHO_SECRET_ID", SECRET_ID);
  vi.stubEnv("ACTIVATION_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/aq");
  vi.stubEnv("ACTIVATION_DLQ_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/adlq");
  vi.stubEnv("BULK_QUEUE_URL", BULK_QUEUE_URL);
  vi.stubEnv("BULK_DLQ_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/bulk-dlq");
  vi.stubEnv("ZOHO_MINUTE_SHARE", "100000"); // not a budget test: the bulk lane must not wait
  secret = mockSecretStore({});
});
afterAll(async () => {
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
  // The handler's container still holds the token of the sandbox before reset(): a dry run
  // (which saves no watermark) lets it take the new one, so each test counts only its own calls.
  await sync({ dry_run: true, source: { type: "inline", contacts: [agreeing[0]] } });
  sandbox.clearRequests();
});

const n = (id: string) => Number(id) - 460_000_000_000_000;
/** The CRM agrees with Books: every contact as it is (9,500 active, 500 inactive). */
const agreeing = Array.from({ length: CONTACTS }, (_, i) => ({
  contact_id: contactId(i + 1),
  status: (i + 1) % INACTIVE_EVERY === 0 ? "inactive" : "active",
}));
const sync = async (input: Record<string, unknown>) =>
  (await syncHandler(
    { organization_id: ORGANIZATION_ID, source: { type: "inline", contacts: agreeing }, ...input },
    lambdaContext("sync"),
  )) as SyncSummary;
const listCalls = () => sandbox.requests().filter((r) => r.endpoint === "contacts.list");
const queued = () =>
  sqs
    .commandCalls(SendMessageBatchCommand)
    .flatMap((c) => (c.args[0].input.Entries ?? []).map((e) => JSON.parse(e.MessageBody ?? "")));

describe("the sync's cost on a 10,000-contact organization with 500 inactive contacts", () => {
  it.each([
    ["honours", true],
    ["ignores", false],
  ])(
    "costs at most 5 list calls an hourly run when Zoho %s last_modified_time",
    async (_what, honoured) => {
      sandbox.settings.lastModifiedTimeFilter = honoured;
      // The first incremental run has no watermark: the whole inactive list, 500 / 200 a page,
      // and one call to see that nothing changed while it read several pages.
      const first = await sync({});
      expect(first).toMatchObject({
        mode: "incremental",
        listed: ["Status.Inactive"],
        modified_since: null,
        contacts_read: 500,
        list_calls: 4,
        zoho_calls: 4,
        jobs_queued: 0,
      });
      // Later, the same source: only the contacts modified since (none): one call. (The clock
      // moves 30 minutes, not 60: the access token would expire, and the refresher is not running.)
      sandbox.clearRequests();
      sandbox.advanceClock(1800);
      const second = await sync({});
      expect(second.modified_since).not.toBeNull();
      expect(second).toMatchObject({ contacts_read: 0, list_calls: 1, zoho_calls: 1 });
      expect(listCalls()).toHaveLength(1);
      expect(listCalls()[0]?.url).toContain("filter_by=Status.Inactive");
      expect(listCalls()[0]?.url).toContain("last_modified_time=");
      // The daily full reconciliation reads everything: 50 calls, as every run did before.
      sandbox.clearRequests();
      expect(await sync({ mode: "full" })).toMatchObject({
        listed: ["Status.All"],
        contacts_read: CONTACTS,
        list_calls: 50,
        unmatched: 0,
      });
    },
  );

  it("picks up a contact deactivated in Books since the last run, and only that one", async () => {
    // The CRM wants contacts 1-800 active: the 40 inactive ones among them are activated.
    const wanted = agreeing.map((e, i) => (i < 800 ? { ...e, status: "active" } : e));
    const input = { source: { type: "inline", contacts: wanted } };
    const first = await sync(input);
    expect(first).toMatchObject({ to_activate: 40, jobs_queued: 40, list_calls: 4 });
    // The worker carries out the jobs; the pending items go as each job ends.
    const jobs = queued();
    for (let i = 0; i < jobs.length; i += 10) {
      const batch = jobs.slice(i, i + 10);
      expect(
        await workerHandler(
          sqsEvent(batch.map((job) => sqsRecord(job, { eventSourceARN: BULK_QUEUE_ARN }))),
          lambdaContext("worker"),
        ),
      ).toEqual({ batchItemFailures: [] });
    }
    sandbox.advanceClock(1800);
    sandbox.setContactStatus(contactId(7), "inactive"); // someone in Books
    sandbox.clearRequests();
    sqs.resetHistory();
    const next = await sync(input);
    expect(next).toMatchObject({ contacts_read: 1, to_activate: 1, jobs_queued: 1, list_calls: 1 });
    expect(queued().map((j) => j.contact_id)).toEqual([contactId(7)]);
  });

  it("reads the whole inactive list again when the source changes", async () => {
    await sync({});
    sandbox.clearRequests();
    const changed = agreeing.map((e, i) => (i === 19 ? { ...e, status: "active" } : e));
    const summary = await sync({ source: { type: "inline", contacts: changed } });
    expect(summary).toMatchObject({ modified_since: null, list_calls: 4, to_activate: 1 });
    expect(queued().map((j) => j.contact_id)).toEqual([contactId(20)]);
  });

  it("checks an email-named change against every contact: one sharing it elsewhere is left alone", async () => {
    // Contacts 5 and 6 share an address; only 6 is inactive, so only 6 is in the inactive list.
    sandbox.setContactStatus(contactId(6), "inactive");
    const summary = await sync({
      source: { type: "inline", contacts: [{ email: "shared@example.com", status: "active" }] },
    });
    expect(summary).toMatchObject({ to_activate: 0, ambiguous: 1, jobs_queued: 0 });
    expect(summary.ambiguous_sample[0]?.candidates.sort()).toEqual([contactId(5), contactId(6)]);
  });

  it.each(["incremental", "full"])(
    "a %s run leaves alone an email another contact holds as a secondary person, as the API would",
    async (mode) => {
      // contact14@example.com: contact 14's primary email (the only one its list row shows) and
      // a second person of contact 15.
      sandbox.setContactStatus(contactId(14), "inactive");
      const summary = await sync({
        mode,
        source: {
          type: "inline",
          contacts: [{ email: "contact14@example.com", status: "active" }],
        },
      });
      expect(summary).toMatchObject({ to_activate: 0, ambiguous: 1, jobs_queued: 0 });
      expect(summary.ambiguous_sample[0]?.candidates.sort()).toEqual([
        contactId(14),
        contactId(15),
      ]);
      expect(queued()).toEqual([]);
    },
  );

  it("a unique email costs its run one call beyond the listing: its row shows it", async () => {
    sandbox.setContactStatus(contactId(7), "inactive");
    const summary = await sync({
      mode: "full",
      source: { type: "inline", contacts: [{ email: "contact7@example.com", status: "active" }] },
    });
    expect(summary).toMatchObject({ to_activate: 1, jobs_queued: 1, ambiguous: 0 });
    expect(summary.zoho_calls).toBe(summary.list_calls + 1);
    expect(sandbox.requests().filter((r) => r.endpoint === "contact.get")).toEqual([]);
  });
});

describe("pages of the contact list while contacts change (the sandbox, as zoho-facts.md says)", () => {
  const token = () => ({
    accessToken: sandbox.issueToken().access_token,
    apiDomain: sandbox.url,
    expiresAt: Date.now() + 3_600_000,
  });
  const books = () =>
    new ZohoBooksClient({
      tokens: {
        getAccessToken: async () => token(),
        replaceRejectedToken: async () => token(),
      },
    });

  /** Lists page by page, calling `between` after each page; returns the ids seen. */
  async function listWhile(
    query: Parameters<ZohoBooksClient["listAllContacts"]>[0],
    between: (page: number) => void,
  ): Promise<Set<string>> {
    const seen = new Set<string>();
    for await (const page of books().listAllContacts(query)) {
      for (const c of page.contacts) seen.add(c.contact_id);
      between(page.page);
    }
    return seen;
  }

  it("newest first (sort_column=last_modified_time, D): only contacts modified during the listing can be missed, and the next run reads them", async () => {
    const before = new Set(sandbox.contacts().map((c) => c.contact_id));
    const start = new Date(sandbox.now());
    const query = {
      organizationId: ORGANIZATION_ID,
      filterBy: "Status.All" as const,
      sortColumn: "last_modified_time" as const,
      sortOrder: "D" as const,
    };
    const modified = new Set<string>();
    const seen = await listWhile(query, (page) => {
      // After each page, change contacts already read and contacts not read yet.
      sandbox.advanceClock(1);
      for (const k of [1, 2, 3, 5, 7]) {
        const id = contactId(page * 200 + 1_000 - k * 150);
        if (!sandbox.contact(id)) continue;
        modified.add(id);
        const c = sandbox.contact(id);
        sandbox.setContactStatus(id, c?.status === "active" ? "inactive" : "active");
      }
    });
    const missed = [...before].filter((id) => !seen.has(id));
    expect(missed.length).toBeGreaterThan(0); // moved to the front, behind the cursor
    for (const id of missed) expect(modified.has(id)).toBe(true);
    // The next run asks for what changed since this listing started: every missed contact.
    const next = await listWhile({ ...query, modifiedSince: start }, () => undefined);
    for (const id of missed) expect(next.has(id)).toBe(true);
  });

  it("in the default order, a contact leaving a status list mid-listing shifts the next page", async () => {
    const inactive = sandbox.contacts().filter((c) => c.status === "inactive");
    expect(inactive).toHaveLength(500);
    const seen = await listWhile(
      { organizationId: ORGANIZATION_ID, filterBy: "Status.Inactive" },
      (page) => {
        if (page === 1) sandbox.setContactStatus(inactive[0]?.contact_id ?? "", "active");
      },
    );
    // The first row of page 2 moved onto page 1, already read: skipped. Hence the full pass.
    expect(seen.has(inactive[200]?.contact_id ?? "")).toBe(false);
    expect(n(inactive[200]?.contact_id ?? "0")).toBe(201 * INACTIVE_EVERY);
  });
});
