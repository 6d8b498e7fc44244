import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ServiceError } from "../../lib/errors";
import { ZohoBooksClient } from "../../lib/zoho/books-client";
import {
  FOREIGN_ORGANIZATION_ID,
  LANGUAGES,
  MESSAGES,
  ORGANIZATION_ID,
  type Sandbox,
  type SandboxSettings,
  SEED,
  sandboxSecret,
  startSandbox,
} from "../../local/sandbox";
import { type Ledger, startLedger } from "../support/ledger";
import { mockSecretStore } from "../support/secret-store";

// The error table over real HTTP, with the sandbox answering in each language Zoho speaks: the
// service decides by code, HTTP status and what the request carried, never by message text.

let sandbox: Sandbox;
let secret: ReturnType<typeof mockSecretStore>;
let ledger: Ledger;

beforeAll(async () => {
  sandbox = await startSandbox({ contacts: 20 });
  secret = mockSecretStore({});
  ledger = await startLedger();
});
afterAll(() => Promise.all([sandbox.close(), ledger.close()]));

function books(): ZohoBooksClient {
  return new ZohoBooksClient({ tokens: ledger.tokenStore(secret.sm), timeoutMs: 2000 });
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (e: unknown) => e as ServiceError,
  );

type Case = [what: string, settings: Partial<SandboxSettings>, code: string, zohoCode: number];

const CASES: Case[] = [
  ["1002, HTTP 404 (the default)", {}, "CONTACT_NOT_FOUND", 1002],
  ["1002, HTTP 400", { notFoundStatus: 400 }, "CONTACT_NOT_FOUND", 1002],
  ["2, HTTP 404", { notFoundCode: 2 }, "CONTACT_NOT_FOUND", 2],
  ["2, HTTP 400", { notFoundCode: 2, notFoundStatus: 400 }, "CONTACT_NOT_FOUND", 2],
];

const ORGANIZATION_CASES = [6024, 4001, 6041, 9017, 14] as const;

describe.each(LANGUAGES)("Zoho answers in %s", (language) => {
  beforeEach(async () => {
    sandbox.reset();
    sandbox.settings.language = language;
    secret.set(sandboxSecret(sandbox));
    await ledger.reset();
    await ledger.storeToken("zoho/books", sandbox.issueToken(), sandbox.url);
  });

  it("speaks the language (the messages the table must not read)", async () => {
    const error = await failure(books().markActive(SEED.unknownId, ORGANIZATION_ID));
    expect(error.message).toContain(MESSAGES[language].doesNotExist);
    expect(await books().markActive(SEED.inactiveId, ORGANIZATION_ID)).toEqual({
      changed: true,
      message: MESSAGES[language].markedActive,
    });
    expect(await books().markActive(SEED.inactiveId, ORGANIZATION_ID)).toEqual({
      changed: false,
      message: MESSAGES[language].alreadyActive,
    });
  });

  it.each(CASES)("an unknown contact, code %s, is CONTACT_NOT_FOUND", async (_w, s, code, zc) => {
    Object.assign(sandbox.settings, s);
    for (const id of [SEED.unknownId, SEED.foreignContactId]) {
      expect(await failure(books().markActive(id, ORGANIZATION_ID))).toMatchObject({
        code,
        zohoCode: zc,
        statusCode: 404,
        worker: "park",
      });
      expect(await failure(books().getContact(id, ORGANIZATION_ID))).toMatchObject({ code });
    }
  });

  it.each(ORGANIZATION_CASES)(
    "an organization Zoho refuses with code %i is INVALID_ORGANIZATION",
    async (zohoCode) => {
      sandbox.settings.invalidOrganizationCode = zohoCode;
      // Each call made only when awaited: a rejection is never left without a handler.
      for (const call of [
        () => books().markActive(SEED.inactiveId, FOREIGN_ORGANIZATION_ID),
        () => books().markInactive(SEED.activeId, "99999"),
        () => books().getContact(SEED.activeId, FOREIGN_ORGANIZATION_ID),
        () => books().listContacts({ organizationId: FOREIGN_ORGANIZATION_ID }),
      ]) {
        expect(await failure(call())).toMatchObject({
          code: "INVALID_ORGANIZATION",
          zohoCode,
          worker: "park",
        });
      }
    },
  );

  it("code 2 for the organization on a contact URL is read as the contact, saying the organization may be at fault", async () => {
    sandbox.settings.invalidOrganizationCode = 2;
    const error = await failure(books().markActive(SEED.inactiveId, FOREIGN_ORGANIZATION_ID));
    expect(error).toMatchObject({ code: "CONTACT_NOT_FOUND", zohoCode: 2, worker: "park" });
    expect(error.message).toContain("organization_id");
  });

  it("a token without the scope (57, then a grant without it) is ZOHO_UNAUTHORIZED", async () => {
    sandbox.settings.grantedScopes = ["ZohoBooks.contacts.READ"];
    expect(await failure(books().markActive(SEED.inactiveId, ORGANIZATION_ID))).toMatchObject({
      code: "ZOHO_UNAUTHORIZED",
      details: { missing_scopes: ["ZohoBooks.contacts.CREATE", "ZohoBooks.contacts.UPDATE"] },
    });
    expect(sandbox.stats().byCode["57"]).toBe(1);
  });

  it("57 while the grant has the scopes is ZOHO_UNAUTHORIZED with Zoho's code", async () => {
    sandbox.settings.requiredScope = "ZohoBooks.contacts.DELETE"; // what no grant here carries
    expect(await failure(books().markActive(SEED.inactiveId, ORGANIZATION_ID))).toMatchObject({
      code: "ZOHO_UNAUTHORIZED",
      zohoCode: 57,
    });
  });

  it.each([
    ["per minute (44)", { rateLimitPerMinute: 0 }, "ZOHO_RATE_LIMITED", 44],
    ["daily (45)", { dailyLimit: 0 }, "ZOHO_DAILY_LIMIT", 45],
    ["concurrency (1070)", { concurrencyLimit: 0 }, "ZOHO_RATE_LIMITED", 1070],
  ] as const)("the %s limit is %s", async (_what, settings, code, zohoCode) => {
    Object.assign(sandbox.settings, settings);
    expect(await failure(books().markActive(SEED.inactiveId, ORGANIZATION_ID))).toMatchObject({
      code,
      zohoCode,
      worker: "wait",
    });
  });

  it("internal errors (5, then 1000) are ZOHO_UNAVAILABLE", async () => {
    sandbox.settings.failNext = 2;
    for (const zohoCode of [5, 1000]) {
      expect(await failure(books().markActive(SEED.inactiveId, ORGANIZATION_ID))).toMatchObject({
        code: "ZOHO_UNAVAILABLE",
        zohoCode,
      });
    }
  });
});
