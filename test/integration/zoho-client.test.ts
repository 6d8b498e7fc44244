import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { changeContactStatus } from "../../lib/activation";
import type { ServiceError } from "../../lib/errors";
import { ZohoBudget } from "../../lib/ledger/budget";
import { ZohoBooksClient } from "../../lib/zoho/books-client";
import {
  ORGANIZATION_ID,
  type Sandbox,
  SEED,
  sandboxSecret,
  startSandbox,
} from "../../local/sandbox";
import { type Ledger, startLedger } from "../support/ledger";
import { mockSecretStore } from "../support/secret-store";

const SECRET_ID = "zoho/books";
let sandbox: Sandbox;
let ledger: Ledger;
let secret: ReturnType<typeof mockSecretStore>;

beforeAll(async () => {
  [sandbox, ledger] = await Promise.all([startSandbox({ contacts: 450 }), startLedger()]);
  secret = mockSecretStore({});
});
afterAll(() => Promise.all([sandbox.close(), ledger.close()]));
beforeEach(async () => {
  sandbox.reset();
  await ledger.reset();
  secret.set(sandboxSecret(sandbox));
  await storeFreshToken();
});

/** A live token in the ledger, as the refresher keeps it. */
const storeFreshToken = () => ledger.storeToken(SECRET_ID, sandbox.issueToken(), sandbox.url);

function client(options: { timeoutMs?: number; budget?: ZohoBudget } = {}) {
  const tokens = ledger.tokenStore(secret.sm, SECRET_ID);
  // aws-sdk-client-mock patches every SecretsManagerClient; the instance itself is not used.
  const books = new ZohoBooksClient({
    tokens,
    timeoutMs: options.timeoutMs ?? 2000,
    ...(options.budget ? { budget: options.budget } : {}),
  });
  return { tokens, books, deps: { tokens, books } };
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (e: unknown) => e as ServiceError,
  );

describe("ZohoBooksClient against the sandbox", () => {
  it("marks an inactive contact active, then reports it already active", async () => {
    const { books } = client();
    expect(await books.markActive(SEED.inactiveId, ORGANIZATION_ID)).toEqual({
      changed: true,
      message: "The contact has been marked as active.",
    });
    expect(await books.markActive(SEED.inactiveId, ORGANIZATION_ID)).toMatchObject({
      changed: false,
    });
    const calls = sandbox.requests().filter((r) => r.endpoint === "contact.active");
    expect(calls.map((r) => `${r.method} ${r.url}`)).toEqual([
      `POST /books/v3/contacts/${SEED.inactiveId}/active?organization_id=${ORGANIZATION_ID}`,
      `POST /books/v3/contacts/${SEED.inactiveId}/active?organization_id=${ORGANIZATION_ID}`,
    ]);
  });

  it("reads 'already in that state' as success when the account answers code 0", async () => {
    sandbox.settings.alreadyInStateAnswer = "success";
    const outcome = await changeContactStatus(client().deps, {
      contactId: SEED.activeId,
      action: "activate",
    });
    expect(outcome.outcome).toBe("activated"); // indistinguishable from a change: Zoho said 0
  });

  it("marks a contact inactive and reads it back", async () => {
    const { books } = client();
    await books.markInactive(SEED.activeId, ORGANIZATION_ID);
    expect((await books.getContact(SEED.activeId, ORGANIZATION_ID)).status).toBe("inactive");
  });

  it.each([
    [2, 404],
    [2, 400],
    [1002, 404],
    [1002, 400],
  ] as const)(
    "maps an unknown contact (code %i, HTTP %i) to CONTACT_NOT_FOUND",
    async (code, status) => {
      sandbox.settings.notFoundCode = code;
      sandbox.settings.notFoundStatus = status;
      const error = await failure(client().books.markActive(SEED.unknownId, ORGANIZATION_ID));
      expect(error).toMatchObject({ code: "CONTACT_NOT_FOUND", zohoCode: code });
    },
  );

  // Code 2 on a contact URL reads as the contact (see lib/errors.ts): test/integration/zoho-errors.test.ts
  it.each([6024, 14, 4001, 6041, 9017] as const)(
    "maps organization refusal code %i to INVALID_ORGANIZATION",
    async (code) => {
      sandbox.settings.invalidOrganizationCode = code;
      const error = await failure(client().books.markActive(SEED.inactiveId, "99999"));
      expect(error).toMatchObject({ code: "INVALID_ORGANIZATION", zohoCode: code });
    },
  );

  it("lists every contact over several pages of at most 200", async () => {
    const { books } = client();
    const pages = [];
    for await (const page of books.listAllContacts({
      organizationId: ORGANIZATION_ID,
      filterBy: "Status.All",
    })) {
      pages.push(page);
    }
    expect(pages.map((p) => p.contacts.length)).toEqual([200, 200, 50]);
    expect(pages.map((p) => p.hasMorePage)).toEqual([true, true, false]);
    const urls = sandbox.requests().map((r) => r.url);
    expect(
      urls.every((u) => u.includes("per_page=200") && u.includes("filter_by=Status.All")),
    ).toBe(true);
    expect(new Set(pages.flatMap((p) => p.contacts.map((c) => c.contact_id))).size).toBe(450);
  });

  it("lists only inactive contacts with Status.Inactive", async () => {
    const page = await client().books.listContacts({
      organizationId: ORGANIZATION_ID,
      filterBy: "Status.Inactive",
    });
    expect(page.contacts.length).toBeGreaterThan(0);
    expect(page.contacts.every((c) => c.status === "inactive")).toBe(true);
  });

  it("replaces a token that expired mid-run with one grant and carries on", async () => {
    const { books } = client();
    await books.markActive(SEED.inactiveIds[0] as string, ORGANIZATION_ID);
    sandbox.advanceClock(3600); // the stored token has now expired at Zoho
    await books.markActive(SEED.inactiveIds[1] as string, ORGANIZATION_ID);
    await books.markActive(SEED.inactiveIds[2] as string, ORGANIZATION_ID);
    expect(sandbox.stats().grants).toBe(1);
    expect(sandbox.stats().byCode["57"]).toBe(1);
  });

  it("uses a token another container stored instead of granting its own", async () => {
    const { books } = client();
    await books.markActive(SEED.inactiveIds[0] as string, ORGANIZATION_ID); // caches the secret
    sandbox.revokeAccessTokens();
    await storeFreshToken(); // "another container" granted one
    await books.markActive(SEED.inactiveIds[1] as string, ORGANIZATION_ID);
    expect(sandbox.stats().grants).toBe(0);
  });

  it("fails with ZOHO_AUTH_FAILED when the refresh token is invalid, saying what to do", async () => {
    await ledger.reset();
    sandbox.settings.refreshTokenRevoked = true;
    const error = await failure(client().books.markActive(SEED.inactiveId, ORGANIZATION_ID));
    expect(error?.code).toBe("ZOHO_AUTH_FAILED");
    expect(error?.message).toContain("store it as refresh_token in the secret");
  });

  it("refuses a grant without the scopes it needs, naming them, before any Books call", async () => {
    await ledger.reset(); // no stored token: the first call grants
    sandbox.settings.grantedScopes = ["ZohoBooks.contacts.CREATE", "ZohoBooks.contacts.UPDATE"];
    const error = await failure(client().books.markActive(SEED.inactiveId, ORGANIZATION_ID));
    expect(error).toMatchObject({
      code: "ZOHO_UNAUTHORIZED",
      details: { missing_scopes: ["ZohoBooks.contacts.READ"] },
    });
    expect(error?.message).toContain("ZohoBooks.contacts.READ");
    expect(sandbox.stats()).toMatchObject({ grants: 1, calls: { token: 1 } });
    expect(sandbox.stats().calls["contact.active"]).toBeUndefined();
    // No container grants again for it until the secret changes (the operator's new grant).
    const again = await failure(client().books.markActive(SEED.inactiveId, ORGANIZATION_ID));
    expect(again).toMatchObject({ code: "ZOHO_UNAUTHORIZED" });
    expect(again?.message).toContain("until the secret changes");
    expect(sandbox.stats().calls.token).toBe(1);
    sandbox.settings.grantedScopes = [...sandbox.settings.grantedScopes, "ZohoBooks.contacts.READ"];
    secret.set(sandboxSecret(sandbox)); // a new version of the secret lifts the block at once
    await client().books.markActive(SEED.inactiveId, ORGANIZATION_ID);
    expect(sandbox.stats().calls.token).toBe(2);
  });

  it("stops granting after Zoho's Access Denied, whichever status it comes with", async () => {
    for (const status of [200, 400] as const) {
      sandbox.reset();
      await ledger.reset();
      secret.set(sandboxSecret(sandbox));
      sandbox.settings.grantLimit = 0;
      sandbox.settings.tooManyGrantsStatus = status;
      const error = await failure(client().books.markActive(SEED.inactiveId, ORGANIZATION_ID));
      expect(error).toMatchObject({ code: "ZOHO_AUTH_FAILED" });
      expect(error?.message).toContain("too many token grants");
    }
  });

  it.each([
    ["per minute (44)", { rateLimitPerMinute: 0 }, "ZOHO_RATE_LIMITED", 44],
    ["daily (45)", { dailyLimit: 0 }, "ZOHO_DAILY_LIMIT", 45],
  ] as const)("maps the %s limit to %s with a wait", async (_what, settings, code, zohoCode) => {
    Object.assign(sandbox.settings, settings);
    const error = await failure(client().books.markActive(SEED.inactiveId, ORGANIZATION_ID));
    expect(error).toMatchObject({ code, zohoCode });
    expect(error?.retryAfterSeconds).toBeGreaterThan(0);
  });

  it("waits for Zoho's reported reset after a 45, not for the next UTC midnight", async () => {
    Object.assign(sandbox.settings, { dailyLimit: 1, dailyWindowSeconds: 120 });
    const { books } = client();
    await books.markActive(SEED.inactiveIds[0] as string, ORGANIZATION_ID);
    const error = await failure(books.markActive(SEED.inactiveIds[1] as string, ORGANIZATION_ID));
    expect(error).toMatchObject({ code: "ZOHO_DAILY_LIMIT", zohoCode: 45 });
    const { resetSeconds } = sandbox.dailyQuota();
    expect(error?.retryAfterSeconds).toBeGreaterThanOrEqual(resetSeconds - 1);
    expect(error?.retryAfterSeconds).toBeLessThanOrEqual(resetSeconds + 1);
  });

  it("maps too many requests in progress (1070) to a short wait, and retries it inline", async () => {
    sandbox.settings.concurrencyLimit = 1;
    sandbox.settings.latencyMs = 300;
    const { deps } = client();
    const [a, b] = await Promise.all([
      changeContactStatus(deps, { contactId: SEED.inactiveIds[0] as string, action: "activate" }),
      changeContactStatus(deps, { contactId: SEED.inactiveIds[1] as string, action: "activate" }),
    ]);
    expect([a.outcome, b.outcome]).toEqual(["activated", "activated"]);
    expect(sandbox.stats().byCode["1070"]).toBe(1);
  });

  it("gives up on a hanging request after the timeout with a 504", async () => {
    sandbox.settings.hangNext = 1;
    const started = Date.now();
    const error = await failure(
      client({ timeoutMs: 300 }).books.markActive(SEED.inactiveId, ORGANIZATION_ID),
    );
    expect(error).toMatchObject({ code: "ZOHO_UNAVAILABLE", statusCode: 504 });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("reads an HTML outage page as ZOHO_UNAVAILABLE, not a crash", async () => {
    sandbox.settings.failureStyle = "html";
    sandbox.settings.failNext = 1;
    const error = await failure(client().books.markActive(SEED.inactiveId, ORGANIZATION_ID));
    expect(error).toMatchObject({ code: "ZOHO_UNAVAILABLE", statusCode: 502 });
  });

  it("keeps the calls inside the ledger's per-minute budget, before Zoho has to refuse", async () => {
    sandbox.settings.rateLimitPerMinute = 5;
    const frozen = Date.now(); // the budget's minute cannot roll over during the test
    const budget = new ZohoBudget({
      dynamo: ledger.dynamo,
      table: ledger.table,
      minuteShare: 5,
      concurrency: 2,
      dailyQuota: 1000,
      leaseSeconds: 10,
      now: () => frozen,
    });
    const { books } = client({ budget });
    const results = await Promise.allSettled(
      SEED.inactiveIds.slice(0, 8).map((id) => books.markActive(id, ORGANIZATION_ID)),
    );
    const refused = results
      .filter((r) => r.status === "rejected")
      .map((r) => (r.reason as ServiceError).message);
    expect(sandbox.stats().byCode["44"]).toBeUndefined();
    expect(refused, JSON.stringify(refused)).toHaveLength(3);
    expect(refused[0]).toContain("interactive share of 5 Zoho calls a minute");
  });
});
