import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handler as httpHandler } from "../../functions/http-api";
import { handler as syncHandler } from "../../functions/scheduled-sync";
import type { WatchSummary } from "../../lib/crm/watch-run";
import { ledgerKeys } from "../../lib/ledger/keys";
import { httpEvent, lambdaContext } from "../../local/lambda-events";
import { acceptEverything } from "../../local/queue-mock";
import {
  CRM_SCOPES,
  contactId,
  crmAccountId,
  DEFAULT_SETTINGS,
  ORGANIZATION_ID,
  type Sandbox,
  sandboxSecret,
  startSandbox,
} from "../../local/sandbox";
import { type Ledger, startLedger } from "../support/ledger";
import { mockSecretStore } from "../support/secret-store";

// Zoho CRM change notifications end to end (issue 18, item 6): the scheduled sync's watch runs
// enable and renew the channel on the local Zoho sandbox (CRM v8 over real HTTP), the sandbox
// delivers each record change over real HTTP to the http-api handler behind a small local
// server, and the handler queues the real-time jobs.

const SECRET_ID = "zoho/books";
const QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/activation-queue";
const ALL_SCOPES = [...DEFAULT_SETTINGS.grantedScopes, ...CRM_SCOPES];
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const PATH = "/webhooks/zoho-crm-notifications";

let sandbox: Sandbox;
let ledger: Ledger;
let server: Server;
let baseUrl: string;
const sqs = mockClient(SQSClient);
mockClient(EventBridgeClient).on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [] });

/** The http-api function behind a local HTTP server, as API Gateway would call it. */
function serveHttpApi(): Promise<Server> {
  const listener = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", async () => {
      const url = new URL(request.url ?? "/", "http://localhost");
      const result = (await httpHandler(
        httpEvent({
          method: request.method ?? "GET",
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          body: Buffer.concat(chunks).toString("utf8"),
          headers: { "Content-Type": String(request.headers["content-type"] ?? "") },
        }),
        lambdaContext("http-api"),
      )) as APIGatewayProxyStructuredResultV2;
      response.writeHead(result.statusCode ?? 200, { "content-type": "application/json" });
      response.end(result.body ?? "");
    });
  });
  return new Promise((resolve) => listener.listen(0, "127.0.0.1", () => resolve(listener)));
}

beforeAll(async () => {
  [sandbox, ledger, server] = await Promise.all([
    startSandbox({
      contacts: 120,
      settings: { grantedScopes: ALL_SCOPES, rateLimitPerMinute: 100_000 },
    }),
    startLedger(),
    serveHttpApi(),
  ]);
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  ledger.stubEnv();
  vi.stubEnv("ZOHO_SECRET_ID", SECRET_ID);
  vi.stubEnv("ACTIVATION_QUEUE_URL", QUEUE_URL);
  vi.stubEnv("BULK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/bulk-queue");
  vi.stubEnv("API_BASE_URL", baseUrl);
  vi.stubEnv("SECRET_CACHE_TTL_SECONDS", "0");
  vi.stubEnv("ZOHO_HTTP_TIMEOUT_MS", "4000");
  vi.stubEnv("ZOHO_MINUTE_SHARE", "100000");
  mockSecretStore(sandboxSecret(sandbox));
}, 60_000);
afterAll(async () => {
  vi.useRealTimers();
  await Promise.all([sandbox.close(), ledger.close()]);
  await new Promise((resolve) => server.close(resolve));
  vi.unstubAllEnvs();
});
beforeEach(async () => {
  // Each test a later day for the containers the tests share (their cached tokens have expired);
  // the sandbox reads the same clock, so moving it moves both sides, as time moves for Zoho too.
  vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
  vi.setSystemTime(Date.now() + 25 * HOUR);
  sandbox.reset();
  sandbox.settings.grantedScopes = [...ALL_SCOPES];
  await ledger.reset();
  sqs.reset();
  acceptEverything(sqs);
});

const source = {
  type: "zoho_crm",
  module: "Accounts",
  rules: [{ field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] }],
  match: ["zcrm_link"],
};

function watchRun(input: Record<string, unknown> = {}): Promise<WatchSummary> {
  return syncHandler(
    {
      mode: "watch",
      organization_id: ORGANIZATION_ID,
      source,
      apply_deactivations: true,
      ...input,
    },
    lambdaContext("scheduled-sync"),
  ) as Promise<WatchSummary>;
}

/** POSTs a body to the route as Zoho would. */
async function notify(body: unknown, query = `?organization_id=${ORGANIZATION_ID}`) {
  const response = await fetch(`${baseUrl}${PATH}${query}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Every job queued, each on the activation queue. */
const queued = () =>
  sqs.commandCalls(SendMessageBatchCommand).flatMap((c) => {
    expect(c.args[0].input.QueueUrl).toBe(QUEUE_URL);
    return (c.args[0].input.Entries ?? []).map((e) => JSON.parse(e.MessageBody ?? ""));
  });

const ourChannel = () => {
  const channels = sandbox.crm.channels();
  expect(channels).toHaveLength(1);
  return channels[0] as ReturnType<Sandbox["crm"]["channels"]>[number];
};
const watchCalls = () => sandbox.crm.stats().calls["crm.watch"] ?? 0;
const coqlCalls = () => sandbox.crm.stats().calls["crm.coql"] ?? 0;

describe("watch runs: the notification channel", () => {
  it("enables a channel for the source's module: create and edit events, our route, a week less an hour, a long random token", async () => {
    const before = Date.now();
    const summary = await watchRun();
    expect(summary).toMatchObject({ mode: "watch", channel: "enabled", crm_calls: 2 });
    const channel = ourChannel();
    expect(channel).toMatchObject({
      channel_id: summary.channel_id,
      events: ["Accounts.create", "Accounts.edit"],
      notify_url: `${baseUrl}${PATH}?organization_id=${ORGANIZATION_ID}`,
      return_affected_field_values: true,
      notify_on_related_action: false,
    });
    expect(channel.token?.length).toBeGreaterThanOrEqual(32);
    expect(channel.token?.length).toBeLessThanOrEqual(50);
    // not Zoho's one-hour answer to more than a week: the week less the margin, as answered
    const expiresAt = Date.parse(channel.channel_expiry);
    expect(expiresAt).toBeGreaterThan(before + 7 * DAY - 2 * HOUR);
    expect(expiresAt).toBeLessThanOrEqual(before + 7 * DAY + 60_000);
    expect(summary.channel_expiry).toBe(channel.channel_expiry);
    // the ledger keeps the channel and the token's digest, never the token
    const { Item } = await ledger.dynamo.send(
      new GetItemCommand({ TableName: ledger.table, Key: ledgerKeys.crmWatch(ORGANIZATION_ID) }),
    );
    expect(Item?.channel_id?.S).toBe(channel.channel_id);
    expect(JSON.stringify(Item)).not.toContain(channel.token as string);
  });

  it("keeps a live channel with a GET only, and renews one within two days of its expiry with a new token", async () => {
    const first = await watchRun();
    const { token: oldToken } = ourChannel();
    expect(await watchRun()).toMatchObject({ channel: "kept", crm_calls: 1 });
    expect(watchCalls()).toBe(3);
    vi.setSystemTime(Date.now() + 5.5 * DAY);
    const renewed = await watchRun();
    expect(renewed).toMatchObject({ channel: "renewed", channel_id: first.channel_id });
    const channel = ourChannel();
    expect(Date.parse(channel.channel_expiry)).toBeGreaterThan(Date.now() + 7 * DAY - 2 * HOUR);
    expect(channel.token).not.toBe(oldToken);
    // a notification sent with the old token before the renewal is still taken, for an hour
    const late = { module: "Accounts", ids: [crmAccountId(2)], operation: "update" };
    const withOld = { ...late, channel_id: channel.channel_id, token: oldToken };
    expect((await notify(withOld)).status).toBe(202);
    vi.setSystemTime(Date.now() + 2 * HOUR);
    expect((await notify(withOld)).status).toBe(401);
    expect((await notify({ ...withOld, token: channel.token })).status).toBe(202);
  });

  it("enables the channel again, same id, when Zoho dropped it", async () => {
    const first = await watchRun();
    sandbox.settings.crmDropChannelOnFailure = true;
    sandbox.settings.crmNotifyFailNext = 1;
    await sandbox.crm.updateRecord("Accounts", crmAccountId(2), { Account_Type: "Prospect" });
    expect(sandbox.crm.channels()).toEqual([]);
    expect(await watchRun()).toMatchObject({ channel: "enabled", channel_id: first.channel_id });
    expect(ourChannel().channel_id).toBe(first.channel_id);
  });

  it("takes back the channel pointing at its route when the ledger lost its item: one channel, a token it knows", async () => {
    const first = await watchRun();
    const { token: lost } = ourChannel();
    await ledger.reset(); // the ledger item (and its token digests) gone
    expect(await watchRun()).toMatchObject({ channel: "renewed", channel_id: first.channel_id });
    const channel = ourChannel();
    expect(channel.token).not.toBe(lost);
    const body = { module: "Accounts", ids: [crmAccountId(2)], operation: "update" };
    expect(
      (await notify({ ...body, channel_id: channel.channel_id, token: channel.token })).status,
    ).toBe(202);
    expect((await notify({ ...body, channel_id: channel.channel_id, token: lost })).status).toBe(
      401,
    );
  });

  it("refuses a grant without ZohoCRM.notifications.ALL by name, and enables nothing", async () => {
    sandbox.settings.grantedScopes = ALL_SCOPES.filter(
      (s) => !s.startsWith("ZohoCRM.notifications"),
    );
    const failure = await watchRun().catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: "CRM_UNAUTHORIZED" });
    expect((failure as Error).message).toContain("ZohoCRM.notifications.ALL");
    expect(sandbox.crm.channels()).toEqual([]);
  });

  it('enables none for a source with "notifications": false, and turns off the one it had', async () => {
    await watchRun();
    const optedOut = { source: { ...source, notifications: false } };
    expect(await watchRun(optedOut)).toMatchObject({ channel: "disabled" });
    expect(sandbox.crm.channels()).toEqual([]);
    expect(await watchRun(optedOut)).toMatchObject({ channel: "off", crm_calls: 0 });
  });
});

describe("POST /webhooks/zoho-crm-notifications", () => {
  it("queues a real-time job with its reason for each record edit Zoho delivers, a guard on the deactivation", async () => {
    await watchRun();
    // account 4 is a Former Customer whose contact 4 is inactive; account 1 a Customer, contact 1 active
    await sandbox.crm.updateRecord("Accounts", crmAccountId(4), { Account_Type: "Customer" });
    await sandbox.crm.updateRecord("Accounts", crmAccountId(1), {
      Account_Type: "Former Customer",
    });
    const deliveries = sandbox.crm.deliveries();
    expect(deliveries.map((d) => [d.body.operation, d.outcome, d.status])).toEqual([
      ["update", "sent", 202],
      ["update", "sent", 202],
    ]);
    expect(queued()).toEqual([
      {
        contact_id: contactId(4),
        action: "activate",
        organization_id: ORGANIZATION_ID,
        source: "zoho-crm-notifications",
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
        source: "zoho-crm-notifications",
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

  it("queues nothing for an edit that asks what the contact already is, or a deactivation not applied", async () => {
    await watchRun({ apply_deactivations: false });
    await sandbox.crm.updateRecord("Accounts", crmAccountId(1), {
      Account_Type: "Former Customer",
    });
    await sandbox.crm.updateRecord("Accounts", crmAccountId(4), { Account_Type: "Prospect" });
    await sandbox.crm.updateRecord("Accounts", crmAccountId(4), {
      Account_Type: "Former Customer",
    });
    expect(sandbox.crm.deliveries().map((d) => d.status)).toEqual([202, 202, 202]);
    expect(queued()).toEqual([]);
  });

  it("queues the job of a record Zoho reports created (operation insert), matched by its Books id field", async () => {
    await watchRun({
      source: { ...source, match: ["books_id_field:Books_Contact_Id", "zcrm_link"] },
    });
    // contact 8 is inactive (every 4th); a new account names it and is a Customer
    const account = await sandbox.crm.createRecord("Accounts", {
      Account_Name: "Zylker Reborn",
      Account_Type: "Customer",
      Books_Contact_Id: contactId(8),
    });
    expect(sandbox.crm.deliveries().map((d) => [d.body.operation, d.status])).toEqual([
      ["insert", 202],
    ]);
    expect(queued()).toEqual([
      expect.objectContaining({
        contact_id: contactId(8),
        action: "activate",
        reason: expect.objectContaining({ crm_record_id: account.id, value: "Customer" }),
      }),
    ]);
  });

  it("answers an error, so Zoho may deliver again, when a job cannot be queued", async () => {
    await watchRun();
    sqs.reset();
    sqs.on(SendMessageBatchCommand).rejects(
      Object.assign(new Error("Service unavailable"), {
        name: "ServiceUnavailable",
        $metadata: { httpStatusCode: 503 },
      }),
    );
    await sandbox.crm.updateRecord("Accounts", crmAccountId(4), { Account_Type: "Customer" });
    const [delivery] = sandbox.crm.deliveries();
    expect(delivery?.outcome).toBe("failed");
    expect(delivery?.status).toBeGreaterThanOrEqual(500);
  });

  it("answers a delete 202 and queues nothing: absence never deactivates", async () => {
    await watchRun();
    // the service's channel does not ask for deletes; Zoho's body for one, as a channel that did would get it
    const { channel_id, token } = ourChannel();
    const coql = coqlCalls();
    const answer = await notify({
      module: "Accounts",
      ids: [crmAccountId(1)],
      operation: "delete",
      channel_id,
      token,
    });
    expect(answer.status).toBe(202);
    expect(queued()).toEqual([]);
    expect(coqlCalls()).toBe(coql);
  });

  it("refuses a wrong or missing token with 401 UNAUTHORIZED, and a body that is not a notification with 400", async () => {
    await watchRun();
    const { channel_id, token } = ourChannel();
    const body = { module: "Accounts", ids: [crmAccountId(4)], operation: "update", channel_id };
    const wrong = await notify({ ...body, token: `${token}x` });
    expect(wrong).toEqual({
      status: 401,
      body: { error: expect.objectContaining({ code: "UNAUTHORIZED" }) },
    });
    expect(JSON.stringify(wrong.body)).not.toContain(token as string);
    expect((await notify(body)).status).toBe(401);
    expect((await notify({ ...body, token, channel_id: "1" })).status).toBe(401);
    expect((await notify({ ...body, token, operation: "merge" })).status).toBe(400);
    expect((await notify({ token, channel_id })).status).toBe(400);
    expect(coqlCalls()).toBe(0);
    expect(queued()).toEqual([]);
  });

  it("reads 51 notified ids with two COQL queries (50 ids at most in one)", async () => {
    await watchRun();
    const { channel_id, token } = ourChannel();
    // accounts 1..51: every 4th a Former Customer with an inactive contact, the rest as Books has them
    const ids = Array.from({ length: 51 }, (_, i) => crmAccountId(i + 1));
    const answer = await notify({
      module: "Accounts",
      ids,
      operation: "update",
      channel_id,
      token,
    });
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ records: 51, job_ids: [] });
    expect(coqlCalls()).toBe(2);
    expect(sandbox.crm.stats().byCode.LIMIT_EXCEEDED ?? 0).toBe(0);
  });
});
