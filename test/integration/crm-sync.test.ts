import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handler as syncHandler } from "../../functions/scheduled-sync";
import { handler as workerHandler } from "../../functions/sqs-worker";
import { TokenStore } from "../../lib/credentials/token-store";
import { HubSpotClient } from "../../lib/crm/hubspot-client";
import { ZohoCrmClient } from "../../lib/crm/zoho-crm-client";
import { JobRecords } from "../../lib/jobs/records";
import { DynamoCrmLedger } from "../../lib/sync/crm-state";
import { type CrmSyncDependencies, runScheduledSync } from "../../lib/sync/crm-sync";
import { DynamoSyncLedger } from "../../lib/sync/state";
import { parseSyncInput, type SyncSummary } from "../../lib/sync/sync";
import { ZohoBooksClient } from "../../lib/zoho/books-client";
import { type HubSpotSandbox, startHubSpotSandbox } from "../../local/hubspot";
import { lambdaContext, sqsEvent, sqsRecord } from "../../local/lambda-events";
import { acceptEverything } from "../../local/queue-mock";
import {
  CRM_SCOPES,
  contactId,
  crmAccountId,
  crmContactId,
  DEFAULT_SETTINGS,
  mixedCrmLinks,
  ORGANIZATION_ID,
  type Sandbox,
  SEED,
  sandboxSecret,
  startSandbox,
} from "../../local/sandbox";
import { type Ledger, startLedger } from "../support/ledger";

// The scheduled sync reading Zoho CRM and HubSpot itself (issue 18, items 1-5 and 8), through
// real HTTP to the local Zoho sandbox (Books and CRM v8 on one API domain) and the local HubSpot.

const SMALL = 300; // Books contacts, CRM accounts and HubSpot records of the behaviour tests
const BIG = 10_000; // the bench's size: 10,000 CRM accounts linked to 10,000 Books contacts
const SECRET_ID = "zoho/books";
const HUBSPOT_SECRET_ID = "hubspot/private-app";
const BULK_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/bulk-queue";
const BULK_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:bulk-queue";
const ALL_SCOPES = [...DEFAULT_SETTINGS.grantedScopes, ...CRM_SCOPES];
const DAY = 86_400_000;

let small: Sandbox;
let big: Sandbox;
let hubspot: HubSpotSandbox;
let ledger: Ledger;
/** the Zoho sandbox the Zoho secret points at in this test */
let zoho: Sandbox;
const sqs = mockClient(SQSClient);
const secrets = mockClient(SecretsManagerClient);
mockClient(EventBridgeClient)
  .on(PutEventsCommand)
  .resolves({ FailedEntryCount: 0, Entries: [{ EventId: "event" }] });

beforeAll(async () => {
  [small, big, hubspot, ledger] = await Promise.all([
    startSandbox({
      contacts: SMALL,
      // list rows carry the integration's link unless a test says otherwise (lookups tested apart)
      settings: { rateLimitPerMinute: 100_000, grantedScopes: ALL_SCOPES, booksListCrmIds: true },
      crm: { linkOf: mixedCrmLinks },
    }),
    startSandbox({
      contacts: BIG,
      settings: { rateLimitPerMinute: 100_000, grantedScopes: ALL_SCOPES, booksListCrmIds: true },
    }),
    startHubSpotSandbox({ records: SMALL, settings: { searchLagMs: 0 } }),
    startLedger(),
  ]);
  ledger.stubEnv();
  vi.stubEnv("ZOHO_SECRET_ID", SECRET_ID);
  vi.stubEnv("BULK_QUEUE_URL", BULK_QUEUE_URL);
  vi.stubEnv("BULK_DLQ_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/bulk-dlq");
  vi.stubEnv(
    "ACTIVATION_QUEUE_URL",
    "https://sqs.us-east-1.amazonaws.com/123456789012/activation-queue",
  );
  vi.stubEnv(
    "ACTIVATION_DLQ_URL",
    "https://sqs.us-east-1.amazonaws.com/123456789012/activation-dlq",
  );
  vi.stubEnv("ZOHO_HTTP_TIMEOUT_MS", "5000");
  vi.stubEnv("ZOHO_MINUTE_SHARE", "100000"); // not a budget test: the bulk lane must not wait
  vi.stubEnv("HUBSPOT_SECRET_ID", HUBSPOT_SECRET_ID);
  vi.stubEnv("HUBSPOT_API_URL", hubspot.url);
  // Two secrets, each read by its own id: the Zoho connection's and the HubSpot token's.
  secrets
    .on(GetSecretValueCommand)
    .callsFake((input: { SecretId?: string }) =>
      input.SecretId === HUBSPOT_SECRET_ID
        ? { SecretString: JSON.stringify({ access_token: hubspot.token }), VersionId: "h1" }
        : { SecretString: JSON.stringify(sandboxSecret(zoho)), VersionId: `z-${zoho.url}` },
    );
}, 60_000);
afterAll(async () => {
  await Promise.all([small.close(), big.close(), hubspot.close(), ledger.close()]);
  vi.unstubAllEnvs();
});
beforeEach(async () => {
  for (const sandbox of [small, big]) {
    sandbox.reset();
    sandbox.settings.grantedScopes = [...ALL_SCOPES];
  }
  hubspot.reset();
  zoho = small;
  await ledger.reset();
  sqs.reset();
  acceptEverything(sqs);
}, 60_000); // after a run over 10,000 accounts the ledger holds 10,000 links to delete

/**
 * A run as the deployed function wires it, with a token store, Books, CRM and HubSpot clients of
 * its own (so each test grants its own token, and a changed grant is seen at once).
 */
function wire(sandbox: Sandbox) {
  zoho = sandbox;
  const secretsManager = new SecretsManagerClient({});
  const tokens = new TokenStore({
    secretId: SECRET_ID,
    secretsManager,
    dynamo: ledger.dynamo,
    table: ledger.table,
  });
  const crm = new ZohoCrmClient({ tokens, timeoutMs: 5000 });
  const hs = new HubSpotClient({
    secretsManager,
    secretId: HUBSPOT_SECRET_ID,
    baseUrl: hubspot.url,
    timeoutMs: 5000,
  });
  const deps = {
    now: () => new Date(),
    books: new ZohoBooksClient({ tokens, lane: "bulk", timeoutMs: 5000 }),
    tokens,
    sqs: new SQSClient({}),
    records: new JobRecords({ dynamo: ledger.dynamo, table: ledger.table, retentionDays: 400 }),
    ledger: new DynamoSyncLedger({ dynamo: ledger.dynamo, table: ledger.table }),
    crmLedger: new DynamoCrmLedger({ dynamo: ledger.dynamo, table: ledger.table }),
    queueUrl: BULK_QUEUE_URL,
    timeoutMs: 5000,
    zohoCrm: () => crm,
    hubspot: () => hs,
  } satisfies CrmSyncDependencies;
  return {
    crm,
    hs,
    deps,
    run: (input: Record<string, unknown>) =>
      runScheduledSync(deps, parseSyncInput({ organization_id: ORGANIZATION_ID, ...input })),
  };
}

/** The CRM sync's items in the test ledger, read and written as a run does. */
const ledgerLinks = () => new DynamoCrmLedger({ dynamo: ledger.dynamo, table: ledger.table });

/** The jobs queued, every one on the bulk queue. */
const queued = () =>
  sqs.commandCalls(SendMessageBatchCommand).flatMap((c) => {
    expect(c.args[0].input.QueueUrl).toBe(BULK_QUEUE_URL);
    return (c.args[0].input.Entries ?? []).map((e) => JSON.parse(e.MessageBody ?? ""));
  });

const accountsByType = {
  type: "zoho_crm",
  module: "Accounts",
  rules: [{ field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] }],
  match: ["books_id_field:Books_Contact_Id", "zcrm_link"],
};
const coqlCalls = (sandbox: Sandbox) => sandbox.crm.stats().calls["crm.coql"] ?? 0;
const isoAgo = (days: number) =>
  new Date(Date.now() - days * DAY).toISOString().replace(/\.\d{3}Z$/, "+00:00");

describe("zoho_crm source: a run from the CRM to Books", () => {
  it("queues an activation for a Former Customer turned Customer and a guarded deactivation for the reverse, each with its reason", async () => {
    const { run } = wire(small);
    // Account 4's contact is inactive (every 4th), account 1's active; both linked by the integration.
    await small.crm.updateRecord("Accounts", crmAccountId(4), { Account_Type: "Customer" });
    await small.crm.updateRecord("Accounts", crmAccountId(1), { Account_Type: "Former Customer" });
    const summary = await run({ mode: "full", source: accountsByType, apply_deactivations: true });
    expect(summary).toMatchObject({
      source_type: "zoho_crm",
      to_activate: 1,
      to_deactivate: 1,
      jobs_queued: 2,
      crm_calls: 1,
      listed: ["Status.All"],
    });
    expect(queued().sort((a, b) => a.action.localeCompare(b.action))).toEqual([
      {
        contact_id: contactId(4),
        action: "activate",
        organization_id: ORGANIZATION_ID,
        source: "sync",
        requested_at: expect.any(String),
        job_id: expect.any(String),
        reason: {
          rule: "Account_Type is Customer",
          crm_record_id: crmAccountId(4),
          field: "Account_Type",
          value: "Customer",
          source: "zoho_crm",
        },
      },
      {
        contact_id: contactId(1),
        action: "deactivate",
        organization_id: ORGANIZATION_ID,
        source: "sync",
        requested_at: expect.any(String),
        job_id: expect.any(String),
        reason: {
          rule: "Account_Type is Former Customer",
          crm_record_id: crmAccountId(1),
          field: "Account_Type",
          value: "Former Customer",
          source: "zoho_crm",
        },
        guard: { outstanding: true },
      },
    ]);
  });

  it("puts no guard on a deactivation when the input turns it off, and none on activations", async () => {
    const { run } = wire(small);
    await small.crm.updateRecord("Accounts", crmAccountId(1), { Account_Type: "Former Customer" });
    await run({
      mode: "full",
      source: accountsByType,
      apply_deactivations: true,
      guard: { outstanding: false },
    });
    expect(queued()).toEqual([expect.not.objectContaining({ guard: expect.anything() })]);
  });

  it("leaves a deactivation the rules want alone without apply_deactivations, and counts it", async () => {
    const { run } = wire(small);
    // account 5 holds its Books contact's id (mixedCrmLinks "field"): matched without a lookup
    await small.crm.updateRecord("Accounts", crmAccountId(5), { Account_Type: "Former Customer" });
    expect(await run({ mode: "full", source: accountsByType })).toMatchObject({
      to_deactivate: 0,
      deactivations_skipped: 1,
      jobs_queued: 0,
    });
    expect(queued()).toEqual([]);
  });

  it("never deactivates for absence: a deleted CRM account changes nothing", async () => {
    const { run } = wire(small);
    // account 1 (Customer, contact 1 active) and account 8 (Former Customer, contact 8 inactive) go
    await small.crm.deleteRecord("Accounts", crmAccountId(1));
    await small.crm.deleteRecord("Accounts", crmAccountId(8));
    const summary = await run({ mode: "full", source: accountsByType, apply_deactivations: true });
    expect(summary).toMatchObject({ to_activate: 0, to_deactivate: 0, jobs_queued: 0 });
    expect(queued()).toEqual([]);
  });

  it("leaves alone a contact two records want in different states, and reports it as conflicting", async () => {
    const { run } = wire(small);
    // account 5 names contact 5 by its Books id and is a Customer; account 6 now names it too, as a Former Customer
    await small.crm.updateRecord("Accounts", crmAccountId(6), {
      Books_Contact_Id: contactId(5),
      Account_Type: "Former Customer",
    });
    await small.crm.updateRecord("Accounts", crmAccountId(5), { Account_Type: "Customer" });
    const summary = await run({ mode: "full", source: accountsByType, apply_deactivations: true });
    expect(summary).toMatchObject({ conflicting: 1, jobs_queued: 0 });
    expect(summary.conflicting_sample).toEqual([{ contact_id: contactId(5) }]);
    expect(queued()).toEqual([]);
  });

  it("dry_run answers per contact the rule, the CRM record and the deciding value, and queues nothing", async () => {
    const { run } = wire(small);
    await small.crm.updateRecord("Accounts", crmAccountId(8), { Account_Type: "Customer" });
    const summary = await run({ mode: "full", source: accountsByType, dry_run: true });
    expect(summary.planned).toEqual([
      {
        contact_id: contactId(8),
        action: "activate",
        reason: {
          rule: "Account_Type is Customer",
          crm_record_id: crmAccountId(8),
          field: "Account_Type",
          value: "Customer",
          source: "zoho_crm",
        },
      },
    ]);
    expect(summary.jobs_queued).toBe(0);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it("reports unmatched records with their CRM ids (full run) and queues nothing for them", async () => {
    const { run } = wire(small);
    // mixedCrmLinks: account 10 is linked to nothing, 17 by email only (Accounts carry no email).
    await small.crm.updateRecord("Accounts", crmAccountId(20), { Account_Type: "Customer" });
    await small.crm.updateRecord("Accounts", crmAccountId(17), { Account_Type: "Former Customer" });
    const summary = await run({ mode: "full", source: accountsByType, apply_deactivations: true });
    const unmatched = new Set((summary.unmatched_records ?? []).map((r) => r.crm_record_id));
    expect(summary.unmatched).toBe(
      Array.from({ length: SMALL }, (_, i) => i + 1).filter(
        (n) => (n % 10 === 0 || n % 10 === 7) && !(n % 7 === 0 && n % 4 !== 0), // Prospects: no opinion
      ).length,
    );
    expect(summary.unmatched_records).toHaveLength(20); // capped
    expect(queued()).toEqual([]);
    // the changed ones are among what the summary can name, never queued
    expect(summary.jobs_queued).toBe(0);
    expect(unmatched.has(crmAccountId(10))).toBe(true);
  });

  it("reports a CRM contact whose email names two Books contacts as ambiguous, with the candidates, and queues nothing", async () => {
    const { run } = wire(small);
    // CRM contacts 5 and 6 carry the shared address of Books contacts 5 and 6.
    for (const n of [5, 6])
      await small.crm.updateRecord("Contacts", crmContactId(n), {
        Last_Activity_Time: isoAgo(1),
      });
    const summary = await run({
      mode: "full",
      source: {
        type: "zoho_crm",
        module: "Contacts",
        rules: [
          { activity_field: "Last_Activity_Time", active_within_days: 30, inactive_after_days: 60 },
        ],
        match: ["email"],
      },
    });
    expect(summary).toMatchObject({ desired: 2, matched: 0, ambiguous: 2, jobs_queued: 0 });
    expect(summary.ambiguous_records).toEqual([
      { crm_record_id: crmContactId(5), by: "email", candidates: SEED.ambiguousIds },
      { crm_record_id: crmContactId(6), by: "email", candidates: SEED.ambiguousIds },
    ]);
    expect(queued()).toEqual([]);
  });

  it("learns the integration's link with GET /contacts?zcrm_account_id= when list rows do not carry it, one Books call a record", async () => {
    const { run } = wire(small);
    small.settings.booksListCrmIds = false;
    await small.crm.updateRecord("Accounts", crmAccountId(4), { Account_Type: "Customer" });
    const summary = await run({
      mode: "full",
      source: { ...accountsByType, match: ["zcrm_link"] },
    });
    // Every Customer (a record that can change something without apply_deactivations) is looked
    // up once: accounts 1..300 but the Former Customers (every 4th) and the Prospects (every
    // 7th otherwise), plus account 4 made a Customer above.
    const customers = Array.from({ length: SMALL }, (_, i) => i + 1).filter(
      (n) => n === 4 || (n % 4 !== 0 && n % 7 !== 0),
    );
    const lookups = small.requests().filter((r) => r.url.includes("zcrm_account_id="));
    expect(summary.link_lookups).toBe(customers.length);
    expect(lookups).toHaveLength(customers.length);
    expect(summary.link_lookups_skipped).toBe(0);
    // the listing (300 contacts, 2 pages) and one call a lookup
    expect(summary.zoho_calls).toBe(2 + customers.length);
    expect(queued()).toEqual([
      expect.objectContaining({ contact_id: contactId(4), action: "activate" }),
    ]);
  });

  it("an incremental run looks up no link for a record that names its Books contact by id", async () => {
    const { run } = wire(small);
    small.settings.booksListCrmIds = false;
    const input = {
      mode: "incremental",
      source: accountsByType, // books_id_field:Books_Contact_Id, then zcrm_link
    };
    await run(input); // the watermark
    // account 5 names contact 5 (active) by id and stays a Customer; account 4 (linked by the
    // integration only) becomes one while its contact 4 is inactive
    await small.crm.updateRecord("Accounts", crmAccountId(5), { Last_Activity_Time: isoAgo(1) });
    await small.crm.updateRecord("Accounts", crmAccountId(4), { Account_Type: "Customer" });
    const mark = small.requests().length;
    const summary = await run(input);
    const lookups = small
      .requests()
      .slice(mark)
      .filter((r) => r.url.includes("zcrm_account_id="))
      .map((r) => new URL(r.url, small.url).searchParams.get("zcrm_account_id"));
    expect(summary).toMatchObject({ crm_records_read: 2, link_lookups: 1, jobs_queued: 1 });
    expect(lookups).toEqual([crmAccountId(4)]);
  });

  it("looks up at most 200 links a run, leaves the rest alone (no job, not unmatched), and starts further on the next day", async () => {
    const { run, deps } = wire(small);
    small.settings.booksListCrmIds = false;
    const input = {
      mode: "full",
      source: { ...accountsByType, match: ["zcrm_link"] },
      apply_deactivations: true,
    };
    const lookedUp = (from = 0) =>
      new Set(
        small
          .requests()
          .slice(from)
          .filter((r) => r.url.includes("zcrm_account_id="))
          .map((r) => new URL(r.url, small.url).searchParams.get("zcrm_account_id")),
      );
    const today = await run(input);
    // 268 accounts have an opinion (all but 32 Prospects), each needing a lookup
    expect(today).toMatchObject({ link_lookups: 200, link_lookups_skipped: 68 });
    const first = lookedUp();
    expect(first.size).toBe(200);
    // unmatched: only records looked up that no contact is linked to (mixedCrmLinks), never a skipped one
    const unlinked = [...first].filter(
      (id) => mixedCrmLinks(Number(id?.slice(-9))) !== "integration",
    );
    expect(today.unmatched).toBe(unlinked.length);
    const mark = small.requests().length;
    deps.now = () => new Date(Date.now() + DAY);
    // the 200 learned are kept in the ledger: the next run looks up only the other 68
    expect(await run(input)).toMatchObject({
      link_lookups: 68,
      link_lookups_skipped: 0,
      links_known: 200,
      links_learned: 68,
    });
    const next = lookedUp(mark);
    expect(new Set([...first, ...next]).size).toBe(268);
    // every link is learned once: a third run looks none up
    const third = small.requests().length;
    expect(await run(input)).toMatchObject({ link_lookups: 0, links_known: 268 });
    expect(lookedUp(third).size).toBe(0);
  });

  it("engagement rule: active within 180 days, inactive after 3650, nothing in between, end to end", async () => {
    const { run, deps } = wire(small);
    const source = {
      type: "zoho_crm",
      module: "Accounts",
      // the seed's activity is 340 to 640 days old: all in this rule's band
      rules: [
        {
          activity_field: "Last_Activity_Time",
          active_within_days: 180,
          inactive_after_days: 3650,
        },
      ],
      match: ["zcrm_link"],
    };
    const step = async (days: number) => {
      await small.crm.updateRecord("Accounts", crmAccountId(1), {
        Last_Activity_Time: isoAgo(days),
      });
      sqs.resetHistory();
      const summary = await run({ mode: "full", source, apply_deactivations: true });
      return { summary, jobs: queued() };
    };
    // active contact 1, recent activity: wanted active, already active
    expect((await step(10)).jobs).toEqual([]);
    // in the band: no opinion (and COQL does not even read it)
    const band = await step(2000);
    expect(band.jobs).toEqual([]);
    expect(band.summary.crm_records_read).toBe(0);
    // past the inactive threshold: one guarded deactivation, with the last activity as the value
    const old = await step(4000);
    expect(old.jobs).toEqual([
      expect.objectContaining({
        contact_id: contactId(1),
        action: "deactivate",
        guard: { outstanding: true },
        reason: {
          rule: `no activity for 3650 days (last ${isoAgo(4000).slice(0, 10)})`,
          crm_record_id: crmAccountId(1),
          field: "Last_Activity_Time",
          value: expect.stringMatching(new RegExp(`^${isoAgo(4000).slice(0, 10)}T`)),
          source: "zoho_crm",
        },
      }),
    ]);
    // The worker deactivates it and ends the job; back in the band, nothing brings it back...
    await deps.books.markInactive(contactId(1), ORGANIZATION_ID);
    await deps.ledger.unmarkPending(ORGANIZATION_ID, [contactId(1)]);
    expect((await step(2000)).jobs).toEqual([]);
    // ...until an activity within 180 days does.
    expect((await step(3)).jobs).toEqual([
      expect.objectContaining({ contact_id: contactId(1), action: "activate" }),
    ]);
  });
});

describe("zoho_crm source: what the ledger keeps between runs (Books statuses, learned links)", () => {
  const input = { source: accountsByType, apply_deactivations: true };

  it("an incremental run after a full one reads only the Books contacts modified since, and finds a change made in Books", async () => {
    const { run } = wire(small);
    const full = await run({ ...input, mode: "full" });
    expect(full).toMatchObject({ books_read: "listing", books_statuses_kept: true });
    // Someone deactivates contact 1 in Books; its CRM account (a Customer) is touched in the CRM.
    small.setContactStatus(contactId(1), "inactive");
    await small.crm.updateRecord("Accounts", crmAccountId(1), { Last_Activity_Time: isoAgo(1) });
    const mark = small.requests().length;
    const incremental = await run({ ...input, mode: "incremental" });
    expect(incremental).toMatchObject({
      books_read: "statuses",
      listed: ["Status.All"],
      contacts_read: 1,
      zoho_calls: 1,
      to_activate: 1,
      jobs_queued: 1,
      books_statuses_kept: true,
    });
    const [listing, ...more] = small
      .requests()
      .slice(mark)
      .filter((r) => r.url.includes("/contacts"))
      .map((r) => new URL(r.url, small.url).searchParams);
    expect(more).toEqual([]);
    expect(listing?.get("filter_by")).toBe("Status.All");
    expect(listing?.get("sort_column")).toBe("last_modified_time");
    expect(listing?.get("sort_order")).toBe("D");
    expect(queued()).toEqual([
      expect.objectContaining({ contact_id: contactId(1), action: "activate" }),
    ]);
  });

  it("a stale kept status makes no wrong change: the job sets what the CRM wants, and the worker finds it already so", async () => {
    const { run } = wire(small);
    await run({ ...input, mode: "full" });
    // The kept statuses say contact 1 is inactive; in Books it is active, and not modified since.
    const crm = ledgerLinks();
    const kept = await crm.booksStatuses(ORGANIZATION_ID);
    kept?.statuses.set(contactId(1), "inactive");
    await crm.saveBooksStatuses(ORGANIZATION_ID, kept as NonNullable<typeof kept>);
    await small.crm.updateRecord("Accounts", crmAccountId(1), { Last_Activity_Time: isoAgo(1) });
    const summary = await run({ ...input, mode: "incremental" });
    expect(summary).toMatchObject({ books_read: "statuses", jobs_queued: 1 });
    const jobs = queued();
    expect(jobs).toEqual([
      expect.objectContaining({ contact_id: contactId(1), action: "activate" }),
    ]);
    const records = new JobRecords({
      dynamo: ledger.dynamo,
      table: ledger.table,
      retentionDays: 400,
    });
    await workerHandler(
      sqsEvent(jobs.map((job) => sqsRecord(job, { eventSourceARN: BULK_QUEUE_ARN }))),
      lambdaContext("worker"),
    );
    expect(await records.get(jobs[0].job_id)).toMatchObject({
      state: "done",
      outcome: "already_active",
    });
    expect(small.contact(contactId(1))?.status).toBe("active");
  });

  it("lists Books as before when no statuses are kept, or when a record may be matched by email", async () => {
    const { run } = wire(small);
    await small.crm.updateRecord("Accounts", crmAccountId(4), { Account_Type: "Customer" });
    const first = await run({ ...input, mode: "incremental" });
    // no watermark yet: every record is read, and both status lists listed
    expect(first).toMatchObject({
      books_read: "listing",
      listed: ["Status.Inactive", "Status.Active"],
    });
    // a first incremental run keeps no statuses: it did not see every contact
    expect(first.books_statuses_kept).toBeUndefined();
    await run({ ...input, mode: "full", source: { ...accountsByType, match: ["email"] } });
    await small.crm.updateRecord("Accounts", crmAccountId(8), { Account_Type: "Customer" });
    const byEmail = await run({
      ...input,
      mode: "incremental",
      source: { ...accountsByType, match: ["zcrm_link", "email"] },
    });
    expect(byEmail).toMatchObject({ books_read: "listing" });
  });

  it("forgets a kept link Books contradicts: a contact that no longer exists, a contact the rows link elsewhere", async () => {
    const { run } = wire(small);
    small.settings.booksListCrmIds = false;
    const crm = ledgerLinks();
    // learned earlier: account 4 → a contact since deleted; account 8 → contact 4 (since relinked)
    await crm.saveLinks(ORGANIZATION_ID, "Accounts", {
      put: new Map([
        [crmAccountId(4), { contacts: ["460000000999999"], from: "lookup" as const }],
        [crmAccountId(8), { contacts: [contactId(4)], from: "lookup" as const }],
      ]),
      remove: [],
    });
    await small.crm.updateRecord("Accounts", crmAccountId(4), { Account_Type: "Customer" });
    const source = { ...accountsByType, match: ["zcrm_link"] };
    const full = await run({ mode: "full", source });
    // the deleted contact's link is forgotten and account 4 looked up again in the same run
    expect(full.links_forgotten).toBe(1);
    const lookups = small
      .requests()
      .filter((r) => r.url.includes("zcrm_account_id="))
      .map((r) => new URL(r.url, small.url).searchParams.get("zcrm_account_id"));
    expect(lookups).toContain(crmAccountId(4));
    expect((await crm.links(ORGANIZATION_ID, "Accounts")).get(crmAccountId(4))).toEqual({
      contacts: [contactId(4)],
      from: "lookup",
    });
    // Rows that carry the link say contact 4 is account 4's, not account 8's.
    small.settings.booksListCrmIds = true;
    await run({ mode: "full", source });
    const links = await crm.links(ORGANIZATION_ID, "Accounts");
    expect(links.get(crmAccountId(8))).toEqual({ contacts: [contactId(8)], from: "rows" });
    // (the same link learned by a lookup is kept as it is: no write)
    expect(links.get(crmAccountId(4))?.contacts).toEqual([contactId(4)]);
    // contact 4 got one job, from account 4 (a Customer): never one from account 8's kept link
    expect(queued().filter((j) => j.contact_id === contactId(4))).toEqual([
      expect.objectContaining({
        action: "activate",
        reason: expect.objectContaining({ crm_record_id: crmAccountId(4) }),
      }),
    ]);
  });

  it("an incremental run matches by the links kept, with no lookup, when list rows carry none", async () => {
    const { run } = wire(small);
    small.settings.booksListCrmIds = false;
    const source = { ...accountsByType, match: ["zcrm_link"] };
    // the full run learns the links of the Customers (what can change without deactivations)
    const full = await run({ mode: "full", source });
    expect(full.link_lookups).toBeGreaterThan(0);
    // contact 1 is deactivated in Books; its account, a Customer, is touched in the CRM
    small.setContactStatus(contactId(1), "inactive");
    await small.crm.updateRecord("Accounts", crmAccountId(1), { Last_Activity_Time: isoAgo(1) });
    const mark = small.requests().length;
    const incremental = await run({ mode: "incremental", source });
    expect(incremental).toMatchObject({
      books_read: "statuses",
      link_lookups: 0,
      zoho_calls: 1,
      jobs_queued: 1,
    });
    const books = small
      .requests()
      .slice(mark)
      .filter((r) => r.url.includes("/contacts"));
    expect(books).toHaveLength(1);
    expect(queued()).toEqual([
      expect.objectContaining({ contact_id: contactId(1), action: "activate" }),
    ]);
  });
});

describe("zoho_crm source: failures end the run with nothing queued", () => {
  it("names a CRM scope the grant lacks before any CRM call, and queues nothing", async () => {
    small.settings.grantedScopes = ALL_SCOPES.filter((s) => !/modules\.accounts/i.test(s));
    const { run } = wire(small);
    await small.crm.updateRecord("Accounts", crmAccountId(4), { Account_Type: "Customer" });
    await expect(run({ mode: "full", source: accountsByType })).rejects.toMatchObject({
      code: "CRM_UNAUTHORIZED",
      message: expect.stringContaining("ZohoCRM.modules.Accounts.READ"),
      details: { missing_scopes: ["ZohoCRM.modules.Accounts.READ"], module: "Accounts" },
    });
    expect(coqlCalls(small)).toBe(0);
    expect(queued()).toEqual([]);
  });

  it("maps the CRM's own 401 OAUTH_SCOPE_MISMATCH (a token stored without its scope) to CRM_UNAUTHORIZED naming the scopes", async () => {
    small.settings.grantedScopes = ALL_SCOPES.filter((s) => !/coql/i.test(s));
    // a token stored before the service kept the grant's scope: the check cannot run first
    await ledger.storeToken(SECRET_ID, small.issueToken(), small.url);
    const { run } = wire(small);
    await expect(run({ mode: "full", source: accountsByType })).rejects.toMatchObject({
      code: "CRM_UNAUTHORIZED",
      message: expect.stringContaining("ZohoCRM.coql.READ"),
    });
    expect(coqlCalls(small)).toBe(1);
    expect(queued()).toEqual([]);
  });

  it("maps 403 NO_PERMISSION to CRM_UNAUTHORIZED", async () => {
    small.settings.crmNoPermission = true;
    const { run } = wire(small);
    await expect(run({ mode: "full", source: accountsByType })).rejects.toMatchObject({
      code: "CRM_UNAUTHORIZED",
      message: expect.stringContaining("NO_PERMISSION"),
    });
  });

  it("maps a CRM 500 to CRM_UNAVAILABLE", async () => {
    small.settings.crmFailNext = 1;
    const { run } = wire(small);
    await expect(run({ mode: "full", source: accountsByType })).rejects.toMatchObject({
      code: "CRM_UNAVAILABLE",
    });
    expect(queued()).toEqual([]);
  });

  it.each(["RATE_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS"] as const)(
    "maps a CRM 429 with code %s to CRM_RATE_LIMITED (by the HTTP status)",
    async (code) => {
      small.settings.crmRateLimitCode = code;
      small.settings.crmCreditsPerDay = 0;
      const { run } = wire(small);
      await expect(run({ mode: "full", source: accountsByType })).rejects.toMatchObject({
        code: "CRM_RATE_LIMITED",
        message: expect.stringContaining(code),
      });
    },
  );

  it("maps a CRM that does not answer in time to CRM_UNAVAILABLE (504)", async () => {
    small.settings.crmLatencyMs = 1_000;
    const { deps } = wire(small);
    const crm = new ZohoCrmClient({ tokens: deps.tokens, timeoutMs: 200 });
    await expect(
      runScheduledSync(
        { ...deps, zohoCrm: () => crm },
        parseSyncInput({ organization_id: ORGANIZATION_ID, mode: "full", source: accountsByType }),
      ),
    ).rejects.toMatchObject({ code: "CRM_UNAVAILABLE", statusCode: 504 });
    expect(queued()).toEqual([]);
  });

  it("keeps the grant's scope with the token in the ledger, and puts no token in an error", async () => {
    small.settings.grantedScopes = ALL_SCOPES.filter((s) => !/coql/i.test(s));
    const { run } = wire(small);
    const failure = await run({ mode: "full", source: accountsByType }).catch((e) => e);
    expect(failure.code).toBe("CRM_UNAUTHORIZED");
    const item = await ledger.item(SECRET_ID);
    expect(item.token_scope?.split(" ")).toEqual(small.settings.grantedScopes);
    expect(JSON.stringify({ m: failure.message, d: failure.details })).not.toContain(
      item.access_token,
    );
  });

  it("a CRM 429 on the third page ends the run with CRM_RATE_LIMITED: nothing queued, the watermark where it was", async () => {
    const { run, deps } = wire(big);
    const first = await run({ mode: "full", source: accountsByType, apply_deactivations: true });
    expect(first.jobs_queued).toBe(0);
    const watermark = await deps.ledger.state(ORGANIZATION_ID);
    expect(watermark).toBeDefined();
    for (let n = 1; n <= 30; n++)
      if (n % 4 !== 0 && n % 7 !== 0)
        await big.crm.updateRecord("Accounts", crmAccountId(n), {
          Account_Type: "Former Customer",
        });
    // two more pages of 2,000 rows (3 credits each), then 429
    big.settings.crmCreditsPerDay = big.crm.credits().used + 6;
    await expect(
      run({ mode: "full", source: accountsByType, apply_deactivations: true }),
    ).rejects.toMatchObject({ code: "CRM_RATE_LIMITED" });
    expect(coqlCalls(big)).toBe(5 + 3);
    expect(queued()).toEqual([]);
    expect(await deps.ledger.state(ORGANIZATION_ID)).toEqual(watermark);
  }, 60_000);
});

describe("zoho_crm source: what a run costs (10,000 accounts linked to 10,000 Books contacts)", () => {
  it("full: ≤ 5 COQL calls of 2,000 rows; incremental after 500 changed: ≤ 5 CRM calls", async () => {
    const { run, deps } = wire(big);
    const full = await run({ mode: "full", source: accountsByType, apply_deactivations: true });
    // every account but the Prospects has an opinion: 8,929 rows
    expect(full).toMatchObject({ crm_records_read: 8_929, crm_calls: 5, jobs_queued: 0 });
    expect(coqlCalls(big)).toBe(5);
    expect(big.crm.stats().creditsSpent).toBe(15);
    console.info("full run", { crm_calls: full.crm_calls, zoho_calls: full.zoho_calls });

    // 500 Former Customers (inactive contacts) become Customers again
    const changed = Array.from({ length: 500 }, (_, i) => 4 * (i + 1));
    for (const n of changed)
      await big.crm.updateRecord("Accounts", crmAccountId(n), { Account_Type: "Customer" });
    const incremental = await run({
      mode: "incremental",
      source: accountsByType,
      apply_deactivations: true,
      max_changes: 500,
    });
    // Books: the statuses the full run kept, and the contacts modified since (none): one call
    expect(incremental).toMatchObject({
      crm_records_read: 500,
      crm_calls: 1,
      to_activate: 500,
      jobs_queued: 500,
      listed: ["Status.All"],
      books_read: "statuses",
      contacts_read: 0,
      link_lookups: 0,
      zoho_calls: 1,
    });
    expect(incremental.crm_calls).toBeLessThanOrEqual(5);
    expect(incremental.zoho_calls).toBeLessThanOrEqual(5);
    expect(new Set(queued().map((j) => j.contact_id))).toEqual(new Set(changed.map(contactId)));
    console.info("incremental run", {
      crm_calls: incremental.crm_calls,
      zoho_calls: incremental.zoho_calls,
    });
    // Half an hour later the overlap (10 minutes before the last read) reads the 500 again: their
    // jobs are waiting, so nothing is queued twice.
    const later = (minutes: number) => () => new Date(Date.now() + minutes * 60_000);
    deps.now = later(30);
    sqs.resetHistory();
    const overlap = await run({
      mode: "incremental",
      source: accountsByType,
      apply_deactivations: true,
    });
    expect(overlap).toMatchObject({ crm_records_read: 500, already_queued: 500, jobs_queued: 0 });
    // A quiet hour: one COQL call that answers 204, no Books call.
    deps.now = later(60);
    const quiet = await run({
      mode: "incremental",
      source: accountsByType,
      apply_deactivations: true,
    });
    expect(quiet).toMatchObject({
      crm_records_read: 0,
      crm_calls: 1,
      zoho_calls: 0,
      jobs_queued: 0,
    });
  }, 120_000);
});

const companiesByStage = {
  type: "hubspot",
  object: "companies",
  rules: [{ field: "lifecyclestage", active: ["customer"], inactive: ["other"] }],
  match: ["books_id_field:zoho_books_contact_id"],
};
const companyId = (i: number) => String(2_000_000 + i);

describe("hubspot source", () => {
  it("queues the changes HubSpot's lifecycle stages ask for, with reason and guard", async () => {
    const { run } = wire(small);
    hubspot.update("companies", companyId(4), { lifecyclestage: "customer" });
    hubspot.update("companies", companyId(1), { lifecyclestage: "other" });
    const summary = await run({
      mode: "full",
      source: companiesByStage,
      apply_deactivations: true,
    });
    expect(summary).toMatchObject({
      source_type: "hubspot",
      crm_records_read: SMALL,
      crm_calls: 2,
      to_activate: 1,
      to_deactivate: 1,
      jobs_queued: 2,
    });
    expect(queued()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          contact_id: contactId(4),
          action: "activate",
          reason: {
            rule: "lifecyclestage is customer",
            crm_record_id: companyId(4),
            field: "lifecyclestage",
            value: "customer",
            source: "hubspot",
          },
        }),
        expect.objectContaining({
          contact_id: contactId(1),
          action: "deactivate",
          guard: { outstanding: true },
        }),
      ]),
    );
  });

  it("names the missing scope on HubSpot's 403, and queues nothing", async () => {
    hubspot.settings.grantedScopes = ["crm.objects.contacts.read"];
    const { run } = wire(small);
    await expect(run({ mode: "full", source: companiesByStage })).rejects.toMatchObject({
      code: "CRM_UNAUTHORIZED",
      message: expect.stringContaining("crm.objects.companies.read"),
    });
    expect(queued()).toEqual([]);
  });

  it.each([
    ["a revoked token (401)", () => (hubspot.settings.tokenRevoked = true), "CRM_UNAUTHORIZED"],
    ["a 500", () => (hubspot.settings.failNext = 1), "CRM_UNAVAILABLE"],
  ])(
    "maps %s to %s, queues nothing, and puts no token in the error",
    async (_what, arrange, code) => {
      arrange();
      const { run } = wire(small);
      const failure = await run({ mode: "full", source: companiesByStage }).catch((e) => e);
      expect(failure.code).toBe(code);
      expect(JSON.stringify({ m: failure.message, d: failure.details })).not.toContain(
        hubspot.token,
      );
      expect(queued()).toEqual([]);
    },
  );

  it("a HubSpot 429 on the second page ends the run with CRM_RATE_LIMITED: nothing queued, the watermark where it was", async () => {
    const { run, deps } = wire(small);
    hubspot.update("companies", companyId(4), { lifecyclestage: "customer" });
    hubspot.settings.searchPerSecond = 1; // our pace is 4 a second: the second search is refused
    await expect(
      run({ mode: "full", source: companiesByStage, apply_deactivations: true }),
    ).rejects.toMatchObject({
      code: "CRM_RATE_LIMITED",
      message: expect.stringContaining("SECONDLY"),
    });
    expect(queued()).toEqual([]);
    expect(await deps.ledger.state(ORGANIZATION_ID)).toBeUndefined();
  });

  it("reads past HubSpot's 10,000 results a query by paging on hs_object_id, at most 4 searches a second", async () => {
    const many = await startHubSpotSandbox({ records: 10_050, settings: { searchLagMs: 0 } });
    try {
      const { deps } = wire(big);
      const hs = new HubSpotClient({
        secretsManager: new SecretsManagerClient({}),
        secretId: HUBSPOT_SECRET_ID,
        baseUrl: many.url,
      });
      const started = Date.now();
      const summary = await runScheduledSync(
        { ...deps, hubspot: () => hs },
        parseSyncInput({
          organization_id: ORGANIZATION_ID,
          mode: "full",
          source: companiesByStage,
          apply_deactivations: true,
          dry_run: true,
        }),
      );
      const elapsed = Date.now() - started;
      expect(summary).toMatchObject({ crm_records_read: 10_050, crm_calls: 51 });
      // records 10,001-10,050 name Books contacts the big sandbox does not have
      expect(summary.unmatched).toBe(50);
      expect(summary.unmatched_records?.[0]).toEqual({
        crm_record_id: companyId(10_001),
        notes: [
          `zoho_books_contact_id names Books contact ${contactId(10_001)}, which does not exist`,
        ],
      });
      expect(many.stats().throttled.SECONDLY).toBe(0);
      expect(elapsed).toBeGreaterThanOrEqual(50 * 250);
    } finally {
      await many.close();
    }
  }, 60_000);
});

describe("the deployed handler", () => {
  const sync = async (input: Record<string, unknown>) =>
    (await syncHandler(
      { organization_id: ORGANIZATION_ID, mode: "full", ...input },
      lambdaContext("sync"),
    )) as SyncSummary;

  it("runs a zoho_crm schedule input as the contract shows it", async () => {
    await small.crm.updateRecord("Accounts", crmAccountId(4), { Account_Type: "Customer" });
    const summary = await sync({
      source: {
        type: "zoho_crm",
        module: "Accounts",
        rules: [
          { field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] },
          {
            activity_field: "Last_Activity_Time",
            active_within_days: 180,
            inactive_after_days: 3650,
          },
        ],
        match: ["books_id_field:Books_Contact_Id", "zcrm_link", "email"],
      },
      apply_deactivations: true,
      guard: { outstanding: true },
      max_changes: 500,
    });
    expect(summary).toMatchObject({ source_type: "zoho_crm", jobs_queued: 1, crm_calls: 1 });
    const jobs = queued();
    expect(jobs).toEqual([
      expect.objectContaining({ contact_id: contactId(4), action: "activate" }),
    ]);
    // the worker carries the job out as it comes from the bulk queue: from the CRM to Books
    const result = await workerHandler(
      sqsEvent(jobs.map((job) => sqsRecord(job, { eventSourceARN: BULK_QUEUE_ARN }))),
      lambdaContext("worker"),
    );
    expect(result).toEqual({ batchItemFailures: [] });
    expect(small.contact(contactId(4))?.status).toBe("active");
  });

  it("runs a hubspot schedule input with the token from HUBSPOT_SECRET_ID", async () => {
    hubspot.update("companies", companyId(8), { lifecyclestage: "customer" });
    const summary = await sync({ source: companiesByStage });
    expect(summary).toMatchObject({ source_type: "hubspot", jobs_queued: 1, crm_calls: 2 });
    expect(queued()).toEqual([
      expect.objectContaining({ contact_id: contactId(8), action: "activate" }),
    ]);
  });

  it("refuses a source with an unknown type, naming the CRM ones", async () => {
    await expect(sync({ source: { type: "salesforce" } })).rejects.toMatchObject({
      code: "INVALID_REQUEST",
      message: expect.stringContaining('"type": "zoho_crm"'),
    });
  });
});
