import { PutSecretValueCommand } from "@aws-sdk/client-secrets-manager";
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handler } from "../../functions/http-api";
import { type HttpEventInput, httpEvent, lambdaContext } from "../../local/lambda-events";
import { acceptEverything } from "../../local/queue-mock";
import {
  FOREIGN_ORGANIZATION_ID,
  SANDBOX_CREDENTIALS,
  type Sandbox,
  SEED,
  sandboxSecret,
  startSandbox,
} from "../../local/sandbox";
import { type Ledger, startLedger } from "../support/ledger";
import { mockSecretStore } from "../support/secret-store";

const QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/activation-queue";
const SECRET_ID = "zoho/books";
let sandbox: Sandbox;
let ledger: Ledger;
let secret: ReturnType<typeof mockSecretStore>;
const sqs = mockClient(SQSClient);

beforeAll(async () => {
  [sandbox, ledger] = await Promise.all([startSandbox(), startLedger()]);
  ledger.stubEnv();
  vi.stubEnv("ZOHO_SECRET_ID", SECRET_ID);
  vi.stubEnv("ACTIVATION_QUEUE_URL", QUEUE_URL);
  vi.stubEnv("SECRET_CACHE_TTL_SECONDS", "0"); // each test rewrites the secret
  vi.stubEnv("ZOHO_HTTP_TIMEOUT_MS", "500");
  secret = mockSecretStore({});
});
afterAll(async () => {
  vi.useRealTimers();
  await Promise.all([sandbox.close(), ledger.close()]);
  vi.unstubAllEnvs();
});
beforeEach(async () => {
  // Each test is a later day for the one container these tests share: what it remembers of an
  // earlier test (a cached token, a daily quota it saw used up, a grant back-off) has passed.
  // The clock keeps running (waits for the next minute or a lease end must see time pass).
  vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
  vi.setSystemTime(Date.now() + 25 * 3_600_000);
  sandbox.reset();
  await ledger.reset();
  secret.set(sandboxSecret(sandbox));
  // a live token in the ledger, as the refresher keeps it
  await ledger.storeToken(SECRET_ID, sandbox.issueToken(), sandbox.url);
  secret.sm.resetHistory();
  sqs.reset();
  acceptEverything(sqs);
});

async function call(input: HttpEventInput) {
  const response = (await handler(
    httpEvent(input),
    lambdaContext("http-api"),
  )) as APIGatewayProxyStructuredResultV2;
  const body = JSON.parse(String(response.body));
  // No answer ever carries a stack trace or a secret.
  expect(response.body).not.toMatch(/\n\s+at |Error:/);
  expect(response.body).not.toContain(SANDBOX_CREDENTIALS.client_secret);
  expect(response.body).not.toContain(SANDBOX_CREDENTIALS.refresh_token);
  return { status: response.statusCode, headers: response.headers ?? {}, body };
}

const activate = (id: string, query?: Record<string, string>) =>
  call({
    method: "POST",
    path: `/contacts/${id}/active`,
    pathParameters: { contact_id: id },
    ...(query ? { query } : {}),
  });
const deactivate = (id: string) =>
  call({ method: "POST", path: `/contacts/${id}/inactive`, pathParameters: { contact_id: id } });

const booksCalls = () => sandbox.requests().filter((r) => r.endpoint.startsWith("contact"));

describe("POST /contacts/{contact_id}/active and /inactive", () => {
  it("activates an inactive contact and answers the outcome", async () => {
    const { status, body } = await activate(SEED.inactiveId);
    expect(status).toBe(200);
    expect(body).toEqual({
      contact_id: SEED.inactiveId,
      organization_id: SANDBOX_CREDENTIALS.organization_id,
      action: "activate",
      outcome: "activated",
      message: "The contact has been marked as active.",
      job_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(sandbox.contact(SEED.inactiveId)?.status).toBe("active");
  });

  it("answers already_active for an active contact (Zoho's 3031)", async () => {
    const { status, body } = await activate(SEED.activeId);
    expect(status).toBe(200);
    expect(body.outcome).toBe("already_active");
  });

  it("deactivates an active contact, and answers already_inactive the second time", async () => {
    expect((await deactivate(SEED.activeId)).body.outcome).toBe("deactivated");
    expect(sandbox.contact(SEED.activeId)?.status).toBe("inactive");
    expect((await deactivate(SEED.activeId)).body.outcome).toBe("already_inactive");
  });

  it("routes by path when API Gateway sent no pathParameters", async () => {
    const { status, body } = await call({
      method: "POST",
      path: `/contacts/${SEED.inactiveId}/active`,
    });
    expect(status).toBe(200);
    expect(body.contact_id).toBe(SEED.inactiveId);
  });

  it("uses the organization named in the query string", async () => {
    const { body } = await activate(SEED.inactiveId, {
      organization_id: SANDBOX_CREDENTIALS.organization_id,
    });
    expect(body.organization_id).toBe(SANDBOX_CREDENTIALS.organization_id);
  });

  it("answers 404 CONTACT_NOT_FOUND with Zoho's code and the request id", async () => {
    const { status, body } = await activate(SEED.unknownId);
    expect(status).toBe(404);
    expect(body.error).toMatchObject({
      code: "CONTACT_NOT_FOUND",
      zoho_code: 1002,
      request_id: "req-Abc123=",
    });
  });

  it.each(["abc", "12a", "1".repeat(26), "%2e%2e", "1 2"])(
    "refuses contact id %j with 400 before any call to Zoho",
    async (id) => {
      const { status, body } = await activate(id);
      expect(status).toBe(400);
      expect(body.error.code).toBe("INVALID_REQUEST");
      expect(booksCalls()).toEqual([]);
    },
  );

  it("refuses a malformed organization_id with 400 before any call to Zoho", async () => {
    const { status, body } = await activate(SEED.inactiveId, { organization_id: "org-1" });
    expect(status).toBe(400);
    expect(body.error.code).toBe("INVALID_REQUEST");
    expect(booksCalls()).toEqual([]);
  });

  it("answers 400 INVALID_ORGANIZATION for an organization the caller named that Zoho refuses", async () => {
    const { status, body } = await activate(SEED.inactiveId, {
      organization_id: FOREIGN_ORGANIZATION_ID,
    });
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: "INVALID_ORGANIZATION", zoho_code: 6024 });
  });

  it("answers 500 INVALID_ORGANIZATION when the secret's default organization is refused", async () => {
    secret.set({ ...secret.current(), organization_id: FOREIGN_ORGANIZATION_ID });
    const { status, body } = await activate(SEED.inactiveId);
    expect(status).toBe(500);
    expect(body.error.code).toBe("INVALID_ORGANIZATION");
    expect(body.error.message).toContain("fix organization_id in the secret");
  });

  it("answers 429 with Retry-After to the next minute once past the per-minute limit (44)", async () => {
    sandbox.settings.rateLimitPerMinute = 1;
    // At the start of a minute, so that neither the minute nor a short wait runs past its end.
    vi.setSystemTime(Math.ceil(Date.now() / 60_000) * 60_000 + 1_000);
    await activate(SEED.inactiveId);
    const { status, headers, body } = await activate(SEED.activeId);
    expect(status).toBe(429);
    expect(body.error).toMatchObject({ code: "ZOHO_RATE_LIMITED", zoho_code: 44 });
    expect(Number(headers["retry-after"])).toBeGreaterThan(0);
    expect(Number(headers["retry-after"])).toBeLessThanOrEqual(60);
  });

  it("answers 429 ZOHO_DAILY_LIMIT with Retry-After to Zoho's reported reset past the daily cap (45)", async () => {
    sandbox.settings.dailyLimit = 0;
    const { status, headers, body } = await activate(SEED.inactiveId);
    expect(status).toBe(429);
    expect(body.error).toMatchObject({ code: "ZOHO_DAILY_LIMIT", zoho_code: 45 });
    expect(Number(headers["retry-after"])).toBeGreaterThan(60);
  });

  it("answers Zoho's 45 with Retry-After to the reset Zoho reported (X-Rate-Limit-Reset)", async () => {
    sandbox.settings.dailyLimit = 0;
    sandbox.settings.dailyWindowSeconds = 3_600; // a reset an hour away, far from UTC midnight
    const { status, headers } = await activate(SEED.inactiveId);
    expect(status).toBe(429);
    const reset = sandbox.dailyQuota().resetSeconds;
    expect(Math.abs(Number(headers["retry-after"]) - reset)).toBeLessThanOrEqual(2);
  });

  it("answers 429 from the ledger, without calling Zoho, once the day's quota Zoho reported is used up", async () => {
    sandbox.settings.dailyLimit = 1;
    sandbox.settings.dailyWindowSeconds = 3_600; // a reset an hour away, far from UTC midnight
    expect((await activate(SEED.inactiveId)).status).toBe(200);
    sandbox.clearRequests();
    const { status, headers, body } = await activate(SEED.activeId);
    expect(status).toBe(429);
    expect(body.error.code).toBe("ZOHO_DAILY_LIMIT");
    // to the reset Zoho reported with the first answer, not a guessed midnight
    const reset = sandbox.dailyQuota().resetSeconds;
    expect(Math.abs(Number(headers["retry-after"]) - reset)).toBeLessThanOrEqual(2);
    expect(booksCalls()).toEqual([]); // stopped before Zoho's 45
  });

  it("retries a 5xx once and succeeds", async () => {
    sandbox.settings.failNext = 1;
    const { status, body } = await activate(SEED.inactiveId);
    expect(status).toBe(200);
    expect(body.outcome).toBe("activated");
  });

  it("answers 502 ZOHO_UNAVAILABLE when Zoho keeps answering an HTML outage page", async () => {
    sandbox.settings.failureStyle = "html";
    sandbox.settings.failNext = 5;
    const { status, body } = await activate(SEED.inactiveId);
    expect(status).toBe(502);
    expect(body.error.code).toBe("ZOHO_UNAVAILABLE");
  });

  it("answers 504 ZOHO_UNAVAILABLE when Zoho hangs past ZOHO_HTTP_TIMEOUT_MS", async () => {
    sandbox.settings.hangNext = 5;
    const { status, body } = await activate(SEED.inactiveId);
    expect(status).toBe(504);
    expect(body.error.code).toBe("ZOHO_UNAVAILABLE");
  });

  it("recovers from an expired stored token with one grant, and stores the new token in the ledger, not the secret", async () => {
    const before = (await ledger.item(SECRET_ID)).access_token;
    sandbox.revokeAccessTokens();
    const { status } = await activate(SEED.inactiveId);
    expect(status).toBe(200);
    expect(sandbox.stats().grants).toBe(1);
    const stored = await ledger.item(SECRET_ID);
    expect(stored.access_token).toBeDefined();
    expect(stored.access_token).not.toBe(before);
    expect(stored.api_domain).toBe(sandbox.url);
    expect(secret.sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    expect(secret.current().access_token).toBeUndefined();
  });

  it("answers 502 ZOHO_UNAUTHORIZED when the token lacks the scope even after a refresh", async () => {
    sandbox.settings.grantedScopes = ["ZohoBooks.contacts.READ"];
    const { status, body } = await activate(SEED.inactiveId);
    expect(status).toBe(502);
    // 57 from Zoho, then a grant whose scope lacks CREATE/UPDATE: the error names them.
    expect(body.error).toMatchObject({
      code: "ZOHO_UNAUTHORIZED",
      details: { missing_scopes: ["ZohoBooks.contacts.CREATE", "ZohoBooks.contacts.UPDATE"] },
    });
    expect(sandbox.stats().grants).toBe(1);
  });

  it("answers 502 ZOHO_AUTH_FAILED when the refresh token is revoked", async () => {
    sandbox.revokeAccessTokens();
    sandbox.settings.refreshTokenRevoked = true;
    const { status, body } = await activate(SEED.inactiveId);
    expect(status).toBe(502);
    expect(body.error.code).toBe("ZOHO_AUTH_FAILED");
    expect(body.error.message).toContain("invalid_code");
  });

  it("answers 500 CONFIGURATION_ERROR when the secret is malformed, naming the field", async () => {
    secret.set({ client_id: "x" });
    const { status, body } = await activate(SEED.inactiveId);
    expect(status).toBe(500);
    expect(body.error.code).toBe("CONFIGURATION_ERROR");
    expect(body.error.message).toContain("client_secret");
  });
});

describe("POST /activations", () => {
  const post = (body: string, extra: Partial<HttpEventInput> = {}) =>
    call({ method: "POST", path: "/activations", body, ...extra });

  it("queues valid items 10 per SendMessageBatch and rejects the invalid ones by index", async () => {
    const items = Array.from({ length: 50 }, (_, i) =>
      i % 10 === 3
        ? { contact_id: `bad-${i}` }
        : { contact_id: String(460000000000000 + i), action: "activate" },
    );
    const { status, body } = await post(JSON.stringify({ items }));
    expect(status).toBe(202);
    expect(body.accepted).toBe(45);
    expect(body.message_ids).toHaveLength(45);
    expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([3, 13, 23, 33, 43]);
    expect(body.rejected[0].error.code).toBe("INVALID_REQUEST");
    const batches = sqs.commandCalls(SendMessageBatchCommand);
    expect(batches.map((c) => c.args[0].input.Entries?.length)).toEqual([10, 10, 10, 10, 5]);
    const first = JSON.parse(batches[0]?.args[0].input.Entries?.[0]?.MessageBody ?? "{}");
    expect(first).toEqual({
      contact_id: "460000000000000",
      action: "activate",
      source: "api",
      requested_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      job_id: body.job_ids[0],
    });
    expect(new Set(body.job_ids).size).toBe(45);
    expect(booksCalls()).toEqual([]); // queued, not called
  });

  it("sends again the entries SQS reports failed", async () => {
    sqs
      .on(SendMessageBatchCommand)
      .resolvesOnce({
        Successful: [{ Id: "0", MessageId: "m-0", MD5OfMessageBody: "x" }],
        Failed: [{ Id: "1", Code: "InternalError", SenderFault: false }],
      })
      .resolves({ Successful: [{ Id: "1", MessageId: "m-1", MD5OfMessageBody: "x" }], Failed: [] });
    const { body } = await post(
      JSON.stringify({ items: [{ contact_id: "1" }, { contact_id: "2" }] }),
    );
    expect(body).toEqual({
      accepted: 2,
      job_ids: [expect.any(String), expect.any(String)],
      message_ids: ["m-0", "m-1"],
      rejected: [],
    });
    expect(
      sqs.commandCalls(SendMessageBatchCommand)[1]?.args[0].input.Entries?.map((e) => e.Id),
    ).toEqual(["1"]);
  });

  it("reports as rejected, never as accepted, an item SQS would not take", async () => {
    sqs.on(SendMessageBatchCommand).resolves({
      Successful: [],
      Failed: [{ Id: "0", Code: "InternalError", SenderFault: false }],
    });
    const { status, body } = await post(JSON.stringify({ items: [{ contact_id: "1" }] }));
    expect(status).toBe(202);
    expect(body.accepted).toBe(0);
    expect(body.rejected[0].error).toMatchObject({
      code: "AWS_UNAVAILABLE",
      message: expect.stringContaining("try again shortly"),
    });
  });

  it("accepts items named by email, and a base64-encoded body with mixed-case headers", async () => {
    const raw = JSON.stringify({
      items: [{ email: " Someone@Example.com ", action: "deactivate" }],
    });
    const { status, body } = await post(Buffer.from(raw).toString("base64"), {
      isBase64Encoded: true,
      headers: { "CONTENT-TYPE": "application/json" },
    });
    expect(status).toBe(202);
    expect(body.accepted).toBe(1);
    const sent = JSON.parse(
      sqs.commandCalls(SendMessageBatchCommand)[0]?.args[0].input.Entries?.[0]?.MessageBody ?? "",
    );
    expect(sent).toMatchObject({ email: "Someone@Example.com", action: "deactivate" });
  });

  it.each([
    ["not JSON", "{items:", "not valid JSON"],
    ["no items", "{}", "items must be an array"],
    ["empty items", '{"items":[]}', "items must not be empty"],
    [
      "too many items",
      JSON.stringify({ items: Array.from({ length: 501 }, () => ({ contact_id: "1" })) }),
      "at most 500",
    ],
    [
      "a huge body",
      JSON.stringify({ items: [{ contact_id: "1", pad: "x".repeat(300_000) }] }),
      "larger than",
    ],
    ["no body", undefined, "needs a JSON body"],
    ["an empty body", "", "needs a JSON body"],
    ["a null body (serverless-offline)", null, "needs a JSON body"],
  ])("refuses %s with 400 INVALID_REQUEST", async (_what, body, message) => {
    const response = await call({
      method: "POST",
      path: "/activations",
      ...(body === undefined ? {} : { body: body as string }),
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("INVALID_REQUEST");
    expect(response.body.error.message).toContain(message);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });
});

describe("POST /activations?organization_id=", () => {
  const sent = () =>
    sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((c) => c.args[0].input.Entries ?? [])
      .map((e) => JSON.parse(e.MessageBody ?? "{}"));

  it("is the organization of the items that name none; an item's own stays", async () => {
    const { status, body } = await call({
      method: "POST",
      path: "/activations",
      query: { organization_id: "20234695" },
      body: JSON.stringify({
        items: [{ contact_id: "44" }, { contact_id: "45", organization_id: "30000001" }],
      }),
    });
    expect(status).toBe(202);
    expect(body.accepted).toBe(2);
    expect(sent().map((job) => job.organization_id)).toEqual(["20234695", "30000001"]);
  });

  it.each(["abc", "", "1".repeat(26), "1 2"])(
    "refuses %j with 400 before queueing anything",
    async (organization_id) => {
      const { status, body } = await call({
        method: "POST",
        path: "/activations",
        query: { organization_id },
        body: JSON.stringify({ items: [{ contact_id: "44" }] }),
      });
      expect(status).toBe(400);
      expect(body.error).toMatchObject({ code: "INVALID_REQUEST", request_id: "req-Abc123=" });
      expect(body.error.message).toContain("organization_id");
      expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
    },
  );
});

describe("POST /activations with one contact asked both ways", () => {
  const post = (items: unknown[], query?: Record<string, string>) =>
    call({
      method: "POST",
      path: "/activations",
      body: JSON.stringify({ items }),
      ...(query ? { query } : {}),
    });
  const queuedBodies = () =>
    sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((c) => c.args[0].input.Entries ?? [])
      .map((e) => JSON.parse(e.MessageBody ?? "{}"));

  it("rejects every item of a contact_id asked to activate and deactivate, and queues the rest", async () => {
    const { status, body } = await post([
      { contact_id: "1" },
      { contact_id: "2" },
      { contact_id: "1", action: "deactivate" },
      { contact_id: "1" },
    ]);
    expect(status).toBe(202);
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([0, 2, 3]);
    for (const rejected of body.rejected) {
      expect(rejected.error.code).toBe("INVALID_REQUEST");
      expect(rejected.error.message).toContain("Items 0, 2, 3 ask to activate and to deactivate");
    }
    expect(queuedBodies().map((job) => job.contact_id)).toEqual(["2"]);
  });

  it("treats emails that differ only by case and spaces as one contact", async () => {
    const { body } = await post([
      { email: "Ann@Example.com" },
      { email: " ann@example.COM ", action: "deactivate" },
      { email: "bob@example.com", action: "deactivate" },
    ]);
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([0, 1]);
    expect(queuedBodies().map((job) => job.email)).toEqual(["bob@example.com"]);
  });

  it("keeps both items of a contact asked the same action twice", async () => {
    const { body } = await post([{ contact_id: "7" }, { contact_id: "7", action: "activate" }]);
    expect(body).toMatchObject({ accepted: 2, rejected: [] });
  });

  it("sees no conflict between one contact id in two organizations", async () => {
    const { body } = await post(
      [{ contact_id: "7" }, { contact_id: "7", organization_id: "555", action: "deactivate" }],
      { organization_id: "444" },
    );
    expect(body).toMatchObject({ accepted: 2, rejected: [] });
  });

  it("sees the query's organization and the same one named by an item as one", async () => {
    const { body } = await post(
      [{ contact_id: "7" }, { contact_id: "7", organization_id: "444", action: "deactivate" }],
      { organization_id: "444" },
    );
    expect(body.accepted).toBe(0);
    expect(body.rejected).toHaveLength(2);
  });
});

describe("GET /health and unknown routes", () => {
  it("answers 200 without calling Zoho or AWS", async () => {
    const { status, body } = await call({ method: "GET", path: "/health" });
    expect(status).toBe(200);
    expect(body).toEqual({ status: "ok" });
    expect(sandbox.requests()).toEqual([]);
    expect(secret.sm.calls()).toHaveLength(0);
  });

  it.each(["/contacts", "/", "/contacts/1/active/x", "/nope"])(
    "answers 404 in the contract's error shape for %s",
    async (path) => {
      const { status, body } = await call({ method: "GET", path });
      expect(status).toBe(404);
      expect(body).toEqual({
        error: {
          code: "NOT_FOUND",
          message: expect.stringContaining("No such route"),
          request_id: "req-Abc123=",
        },
      });
    },
  );

  it.each([
    ["GET", "/activations", "POST"],
    ["DELETE", "/contacts/1/active", "POST"],
    ["POST", "/health", "GET"],
    ["PUT", "/contacts/1/inactive/", "POST"],
  ])("answers 405 with Allow for %s %s", async (method, path, allow) => {
    const { status, headers, body } = await call({ method, path });
    expect(status).toBe(405);
    expect(headers.allow).toBe(allow);
    expect(body.error).toMatchObject({
      code: "METHOD_NOT_ALLOWED",
      message: `This route does not take ${method}; it takes ${allow}.`,
      request_id: "req-Abc123=",
    });
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });
});
