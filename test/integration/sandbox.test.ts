import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  contactId,
  FOREIGN_ORGANIZATION_ID,
  LANGUAGES,
  MESSAGES,
  type MessageId,
  memberContactId,
  memberOrganizationId,
  ORGANIZATION_ID,
  SANDBOX_CREDENTIALS,
  type Sandbox,
  type SandboxContact,
  SEED,
  seedContacts,
  startSandbox,
} from "../../local/sandbox";

// The sandbox is the Zoho every other test runs against: these tests pin its behaviour, through
// real HTTP. Time passes on the sandbox clock (advanceClock), never by waiting.

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await startSandbox();
});
afterAll(() => sandbox.close());
beforeEach(() => sandbox.reset());

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: a JSON body, read by the assertions
  body: any;
}

async function reply(response: Response): Promise<Reply> {
  const text = await response.text();
  const json = response.headers.get("content-type")?.startsWith("application/json");
  return {
    status: response.status,
    headers: response.headers,
    text,
    body: json ? JSON.parse(text) : undefined,
  };
}

const CREDENTIALS = {
  grant_type: "refresh_token",
  client_id: SANDBOX_CREDENTIALS.client_id,
  client_secret: SANDBOX_CREDENTIALS.client_secret,
  refresh_token: SANDBOX_CREDENTIALS.refresh_token,
};

/** A refresh-token grant, its parameters in a form body or in the query string. */
async function grant(params: Record<string, string> = {}, how: "form" | "query" = "form") {
  const all = new URLSearchParams({ ...CREDENTIALS, ...params });
  const url = `${sandbox.url}/oauth/v2/token`;
  return reply(
    how === "form"
      ? await fetch(url, { method: "POST", body: all })
      : await fetch(`${url}?${all}`, { method: "POST" }),
  );
}

/** A Books call: POST with a fresh token unless told otherwise (`token: null` sends no header). */
async function books(
  path: string,
  init: { method?: string; token?: string | null; signal?: AbortSignal } = {},
) {
  const token = init.token === undefined ? sandbox.issueToken().access_token : init.token;
  return reply(
    await fetch(`${sandbox.url}/books/v3${path}`, {
      method: init.method ?? "POST",
      headers: token === null ? {} : { Authorization: `Zoho-oauthtoken ${token}` },
      ...(init.signal ? { signal: init.signal } : {}),
    }),
  );
}

const action = (id: string, verb: "active" | "inactive", org = ORGANIZATION_ID) =>
  `/contacts/${id}/${verb}?organization_id=${org}`;
const get = (path: string) => books(path, { method: "GET" });
const list = (query: string) => get(`/contacts?organization_id=${ORGANIZATION_ID}&${query}`);

async function control(method: string, path: string, body?: unknown) {
  return reply(
    await fetch(`${sandbox.url}/__sandbox/${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    }),
  );
}

/** Moves the sandbox clock to just past the start of the next calendar minute (or UTC day). */
function toNext(unitMs: number): void {
  sandbox.advanceClock((unitMs - (sandbox.now() % unitMs) + 100) / 1000);
}

const inactiveId = (i: number) => SEED.inactiveIds[i] as string;

/** The X-Rate-Limit-* headers of an answer, those present. */
function quotaHeaders({ headers }: Reply): Record<string, string> {
  const found: Record<string, string> = {};
  for (const name of ["limit", "remaining", "reset"]) {
    const value = headers.get(`x-rate-limit-${name}`);
    if (value !== null) found[name] = value;
  }
  return found;
}

describe("sandbox OAuth token endpoint", () => {
  it("grants a one-hour token from a form body or the query string, with the sandbox as api_domain", async () => {
    for (const how of ["form", "query"] as const) {
      const { status, body } = await grant({}, how);
      expect(status).toBe(200);
      expect(body).toEqual({
        access_token: expect.stringMatching(/^1000\.[0-9a-f]{32}\.[0-9a-f]{32}$/),
        api_domain: sandbox.url,
        token_type: "Bearer",
        expires_in: 3600,
        scope: "ZohoBooks.contacts.CREATE ZohoBooks.contacts.UPDATE ZohoBooks.contacts.READ",
      });
      expect(
        (await books(action(SEED.activeId, "inactive"), { token: body.access_token })).status,
      ).toBe(200);
      sandbox.setContactStatus(SEED.activeId, "active");
    }
    expect(sandbox.stats()).toMatchObject({ grants: 2, calls: { token: 2 } });
  });

  it("answers the granted scopes as scope", async () => {
    sandbox.settings.grantedScopes = ["ZohoBooks.contacts.READ"];
    expect((await grant()).body.scope).toBe("ZohoBooks.contacts.READ");
  });

  it("leaves expires_in out when told to, as some token answers do", async () => {
    sandbox.settings.omitExpiresIn = true;
    const { body } = await grant();
    expect(body.access_token).toBeDefined();
    expect(body).not.toHaveProperty("expires_in");
  });

  it("answers invalid_client for a wrong client id or secret, with HTTP 200", async () => {
    expect(await grant({ client_secret: "wrong" })).toMatchObject({
      status: 200,
      body: { error: "invalid_client" },
    });
    expect((await grant({ client_id: "1000.OTHER" })).body).toEqual({ error: "invalid_client" });
    expect(sandbox.stats().grants).toBe(0);
  });

  it("answers invalid_code for an unknown or revoked refresh token, with HTTP 200", async () => {
    expect(await grant({ refresh_token: "1000.other.token" })).toMatchObject({
      status: 200,
      body: { error: "invalid_code" },
    });
    sandbox.settings.refreshTokenRevoked = true;
    expect(await grant()).toMatchObject({ status: 200, body: { error: "invalid_code" } });
  });

  it("answers an HTTP 502 page while the accounts server is unavailable, and grants again after", async () => {
    sandbox.settings.accountsUnavailable = true;
    const down = await grant();
    expect(down.status).toBe(502);
    expect(down.headers.get("content-type")).toMatch(/^text\/html/);
    expect(sandbox.stats()).toMatchObject({ grants: 0, grantsRefused: 0 });
    sandbox.settings.accountsUnavailable = false;
    expect((await grant()).body.access_token).toBeDefined();
  });

  it("takes no parameters from a body that is not a form", async () => {
    const response = await fetch(`${sandbox.url}/oauth/v2/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(CREDENTIALS),
    });
    expect((await reply(response)).body).toEqual({ error: "unsupported_grant_type" });
  });

  it.each([200, 400] as const)(
    "refuses grants with Access Denied (HTTP %i) for ten minutes after the 10th in ten minutes",
    async (status) => {
      sandbox.settings.tooManyGrantsStatus = status;
      for (let i = 0; i < 10; i++) expect((await grant()).body.access_token).toBeDefined();
      expect(await grant()).toMatchObject({
        status,
        body: {
          error: "Access Denied",
          error_description:
            "You have made too many requests continuously. Please try again after some time.",
          status: "failure",
        },
      });
      sandbox.advanceClock(9 * 60);
      expect((await grant()).body.error).toBe("Access Denied"); // a refusal does not extend the block
      sandbox.advanceClock(61);
      expect((await grant()).body.access_token).toBeDefined();
      expect(sandbox.stats()).toMatchObject({ grants: 11, grantsRefused: 2 });
    },
  );

  it("counts grants in a sliding ten-minute window", async () => {
    sandbox.settings.grantLimit = 2;
    await grant();
    sandbox.advanceClock(5 * 60);
    await grant();
    sandbox.advanceClock(5 * 60 + 1); // the first grant has left the window
    expect((await grant()).body.access_token).toBeDefined();
    expect((await grant()).body.error).toBe("Access Denied");
  });

  it("does not count issueToken() as a grant", async () => {
    for (let i = 0; i < 20; i++) sandbox.issueToken();
    expect((await grant()).body.access_token).toBeDefined();
    expect(sandbox.stats().grants).toBe(1);
  });
});

describe("sandbox access tokens", () => {
  it("expire on the sandbox clock after tokenLifetimeSeconds (57 then)", async () => {
    const { access_token: token } = sandbox.issueToken();
    sandbox.advanceClock(3599);
    expect((await books(action(SEED.inactiveId, "active"), { token })).status).toBe(200);
    sandbox.advanceClock(2);
    expect(await books(action(SEED.activeId, "inactive"), { token })).toMatchObject({
      status: 401,
      body: { code: 57, message: "You are not authorized to perform this operation" },
    });
  });

  it("stay at most maxLiveTokens live: one more invalidates the oldest", async () => {
    const oldest = sandbox.issueToken().access_token;
    const second = sandbox.issueToken().access_token;
    for (let i = 0; i < 9; i++) sandbox.issueToken();
    expect((await books(action(SEED.activeId, "inactive"), { token: oldest })).body.code).toBe(57);
    expect((await books(action(SEED.activeId, "inactive"), { token: second })).body.code).toBe(0);
  });

  it("are all refused with 57 once revoked", async () => {
    const { access_token: token } = sandbox.issueToken();
    sandbox.revokeAccessTokens();
    expect(await books(action(SEED.inactiveId, "active"), { token })).toMatchObject({
      status: 401,
      body: { code: 57 },
    });
  });
});

describe("sandbox Books action endpoints", () => {
  it("mark a contact active, then answer 3031 while it is already active", async () => {
    expect(await books(action(SEED.inactiveId, "active"))).toMatchObject({
      status: 200,
      body: { code: 0, message: "The contact has been marked as active." },
    });
    expect(sandbox.contact(SEED.inactiveId)?.status).toBe("active");
    expect(await books(action(SEED.inactiveId, "active"))).toMatchObject({
      status: 400,
      body: { code: 3031 },
    });
  });

  it("mark a contact inactive, then answer 3032 while it is already inactive", async () => {
    expect(await books(action(SEED.activeId, "inactive"))).toMatchObject({
      status: 200,
      body: { code: 0, message: "The contact has been marked as inactive." },
    });
    expect(sandbox.contact(SEED.activeId)?.status).toBe("inactive");
    expect(await books(action(SEED.activeId, "inactive"))).toMatchObject({
      status: 400,
      body: { code: 3032 },
    });
  });

  it("answer code 0 for a contact already in the state when alreadyInStateAnswer is success", async () => {
    sandbox.settings.alreadyInStateAnswer = "success";
    expect(await books(action(SEED.activeId, "active"))).toMatchObject({
      status: 200,
      body: { code: 0, message: "The contact has been marked as active." },
    });
    expect((await books(action(SEED.inactiveId, "inactive"))).body.code).toBe(0);
  });

  it("update last_modified_time on a change", async () => {
    await books(action(SEED.inactiveId, "active"));
    const changed = sandbox.contact(SEED.inactiveId)?.last_modified_time;
    expect(changed).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/);
    expect(changed).not.toBe(seedContacts(4)[3]?.last_modified_time);
  });

  it.each([
    [2, 404],
    [2, 400],
    [1002, 404],
    [1002, 400],
  ] as const)("answer code %i with HTTP %i for an unknown contact", async (code, status) => {
    sandbox.settings.notFoundCode = code;
    sandbox.settings.notFoundStatus = status;
    for (const id of [SEED.unknownId, SEED.foreignContactId, "not-a-number"]) {
      expect(await books(action(id, "active"))).toMatchObject({ status, body: { code } });
    }
  });

  it("answer 405 with Allow: POST to any other method", async () => {
    for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
      const answer = await books(action(SEED.inactiveId, "active"), { method });
      expect(answer.status).toBe(405);
      expect(answer.headers.get("allow")).toBe("POST");
    }
    expect(sandbox.contact(SEED.inactiveId)?.status).toBe("inactive");
    expect(sandbox.stats().calls["contact.active"]).toBe(4);
  });

  it("answer 405 before checking the token", async () => {
    expect(
      (await books(action(SEED.inactiveId, "active"), { method: "GET", token: null })).status,
    ).toBe(405);
  });
});

describe("sandbox Books authorization", () => {
  it("answers 401 code 14 without an Authorization header, or with a malformed one", async () => {
    expect(await books(action(SEED.inactiveId, "active"), { token: null })).toMatchObject({
      status: 401,
      body: { code: 14 },
    });
    const bearer = await fetch(`${sandbox.url}/books/v3${action(SEED.inactiveId, "active")}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${sandbox.issueToken().access_token}` },
    });
    expect((await reply(bearer)).body.code).toBe(14);
  });

  it("answers 401 code 57 for a token it never issued", async () => {
    expect(await books(action(SEED.inactiveId, "active"), { token: "1000.abc.def" })).toMatchObject(
      { status: 401, body: { code: 57 } },
    );
  });

  it("answers 57 at once when the required scope is removed, and works again once it is restored", async () => {
    const { access_token: token } = sandbox.issueToken();
    const granted = sandbox.settings.grantedScopes;
    sandbox.settings.grantedScopes = granted.filter((s) => s !== "ZohoBooks.contacts.CREATE");
    expect(await books(action(SEED.inactiveId, "active"), { token })).toMatchObject({
      status: 401,
      body: { code: 57 },
    });
    sandbox.settings.grantedScopes = granted;
    expect((await books(action(SEED.inactiveId, "active"), { token })).status).toBe(200);
  });

  it("checks the action endpoints against requiredScope and reads against READ", async () => {
    sandbox.settings.requiredScope = "ZohoBooks.contacts.UPDATE";
    sandbox.settings.grantedScopes = ["ZohoBooks.contacts.UPDATE"];
    expect((await books(action(SEED.inactiveId, "active"))).status).toBe(200);
    expect(
      (await get(`/contacts/${SEED.activeId}?organization_id=${ORGANIZATION_ID}`)).body.code,
    ).toBe(57);
    sandbox.settings.grantedScopes = ["ZohoBooks.contacts.READ"];
    expect((await list("")).body.code).toBe(0);
  });

  it("answers HTTP 400 code 6024 for an organization the user is not in, and for none", async () => {
    for (const path of [
      action(SEED.inactiveId, "active", FOREIGN_ORGANIZATION_ID),
      action(SEED.inactiveId, "active", "99999"),
      `/contacts/${SEED.inactiveId}/active`,
    ]) {
      expect(await books(path)).toMatchObject({ status: 400, body: { code: 6024 } });
    }
    expect(sandbox.contact(SEED.inactiveId)?.status).toBe("inactive");
  });

  it.each([2, 14, 4001, 6041, 9017] as const)(
    "answers code %i, 'Invalid value passed for organization_id', when invalidOrganizationCode says so",
    async (code) => {
      sandbox.settings.invalidOrganizationCode = code;
      expect(await books(action(SEED.inactiveId, "active", FOREIGN_ORGANIZATION_ID))).toMatchObject(
        { status: 400, body: { code, message: "Invalid value passed for organization_id" } },
      );
    },
  );

  it("checks the token before the organization", async () => {
    expect(
      (await books(action(SEED.inactiveId, "active", FOREIGN_ORGANIZATION_ID), { token: null }))
        .body.code,
    ).toBe(14);
  });
});

describe("sandbox languages", () => {
  it("answers 1002 'Contact does not exist.' with HTTP 404 for an unknown contact by default", async () => {
    expect(await books(action(SEED.unknownId, "active"))).toMatchObject({
      status: 404,
      body: { code: 1002, message: "Contact does not exist." },
    });
  });

  it.each(LANGUAGES)("speaks %s in every Books message, the codes unchanged", async (language) => {
    sandbox.settings.language = language;
    const said = MESSAGES[language];
    const cases: [() => Promise<Reply>, number, string][] = [
      [() => books(action(SEED.inactiveId, "active")), 0, said.markedActive],
      [() => books(action(SEED.inactiveId, "active")), 3031, said.alreadyActive],
      [() => books(action(SEED.activeId, "inactive")), 0, said.markedInactive],
      [() => books(action(SEED.activeId, "inactive")), 3032, said.alreadyInactive],
      [() => books(action(SEED.unknownId, "active")), 1002, said.doesNotExist],
      [() => books(action(SEED.inactiveId, "active"), { token: null }), 14, said.invalidToken],
      [
        () => books(action(SEED.inactiveId, "active"), { token: "1000.a.b" }),
        57,
        said.notAuthorized,
      ],
      [() => books(action(SEED.inactiveId, "active", "99999")), 6024, said.notMember],
      [() => list("filter_by=Status.Nonsense"), 2, said.invalidFilter],
    ];
    for (const [answer, code, message] of cases) {
      expect((await answer()).body).toEqual({ code, message });
    }
    expect((await books(action(SEED.inactiveId, "active"), { method: "GET" })).body.message).toBe(
      said.methodNotAllowed.replace("{method}", "GET"),
    );
    sandbox.settings.invalidOrganizationCode = 4001;
    expect((await books(action(SEED.inactiveId, "active", "99999"))).body.message).toBe(
      said.invalidOrganization,
    );
    sandbox.settings.notFoundCode = 2;
    expect((await books(action(SEED.unknownId, "active"))).body.message).toBe(
      said.invalidContactId,
    );
    sandbox.settings.failNext = 1;
    expect((await list("")).body).toEqual({ code: 5, message: said.internal });
    Object.assign(sandbox.settings, { dailyLimit: 0 });
    expect((await list("")).body).toEqual({ code: 45, message: said.daily });
    Object.assign(sandbox.settings, { rateLimitPerMinute: 0 });
    expect((await list("")).body).toEqual({ code: 44, message: said.perMinute });
    Object.assign(sandbox.settings, { concurrencyLimit: 0 });
    expect((await list("")).body).toEqual({ code: 1070, message: said.tooManyInProgress });
  });

  it("has every message in every language, and no two languages alike", () => {
    const ids = Object.keys(MESSAGES.en).sort();
    for (const language of LANGUAGES) {
      expect(Object.keys(MESSAGES[language]).sort()).toEqual(ids);
      if (language !== "en")
        for (const id of ids)
          expect(MESSAGES[language][id as MessageId]).not.toBe(MESSAGES.en[id as MessageId]);
    }
  });
});

describe("sandbox Books reads", () => {
  it("gets one contact in Zoho's shape: no top-level email, its addresses in contact_persons", async () => {
    const { status, body } = await get(
      `/contacts/${SEED.secondaryEmailId}?organization_id=${ORGANIZATION_ID}`,
    );
    expect(status).toBe(200);
    expect(body).toMatchObject({ code: 0, message: "success" });
    expect(body.contact).not.toHaveProperty("email");
    expect(body.contact).toMatchObject({
      contact_id: SEED.secondaryEmailId,
      status: "active",
      contact_type: "customer",
      contact_persons: [
        {
          contact_person_id: expect.stringMatching(/^\d+$/),
          first_name: "Contact",
          email: "contact2@example.com",
          is_primary_contact: true,
        },
        { first_name: "Accounts", email: SEED.secondaryEmail, is_primary_contact: false },
      ],
    });
  });

  it("lists contacts page by page, 200 at most a page, ordered by contact_id", async () => {
    const first = await list("page=1&per_page=500");
    expect(first.body.page_context).toEqual({ page: 1, per_page: 200, has_more_page: true });
    const second = await list("page=2");
    expect(second.body.page_context).toEqual({ page: 2, per_page: 200, has_more_page: false });
    const ids = [...first.body.contacts, ...second.body.contacts].map(
      (c: SandboxContact) => c.contact_id,
    );
    expect(ids).toEqual(seedContacts(300).map((c) => c.contact_id));
    const { contact_persons: _, ...row } = seedContacts(1)[0] as SandboxContact;
    expect(first.body.contacts[0]).toEqual(row); // a row: the primary's email, no persons
  });

  it("filters by status", async () => {
    const inactive = await list("filter_by=Status.Inactive");
    expect(inactive.body.contacts).toHaveLength(75);
    expect(inactive.body.contacts.every((c: SandboxContact) => c.status === "inactive")).toBe(true);
    expect((await list("filter_by=Status.Active")).body.contacts).toHaveLength(200);
    expect((await list("filter_by=Status.Active&page=2")).body.contacts).toHaveLength(25);
    expect((await list("filter_by=Status.Duplicate")).body.contacts).toEqual([]);
    expect(await list("filter_by=Status.Nonsense")).toMatchObject({
      status: 400,
      body: { code: 2 },
    });
  });

  it("filters by email loosely: any case, any part, so callers must compare exactly", async () => {
    const emails = async (email: string) =>
      (await list(`email=${encodeURIComponent(email)}`)).body.contacts.map(
        (c: SandboxContact) => c.email,
      );
    expect(await emails(SEED.looseEmail)).toEqual([
      "contact1@example.com",
      "xcontact1@example.com",
    ]);
    expect(await emails("contact7@example.com")).toEqual([SEED.mixedCaseEmail]);
    expect(await emails(SEED.ambiguousEmail)).toEqual([SEED.ambiguousEmail, SEED.ambiguousEmail]);
    expect(await emails("nobody@example.com")).toEqual([]);
  });

  it("filters by the email of any contact person, a row still showing the primary's", async () => {
    const rows = async (email: string) =>
      (await list(`email=${encodeURIComponent(email)}`)).body.contacts.map((c: SandboxContact) => [
        c.contact_id,
        c.email,
      ]);
    expect(await rows(SEED.secondaryEmail)).toEqual([
      [SEED.secondaryEmailId, "contact2@example.com"],
    ]);
    expect(await rows(SEED.customerVendorEmail)).toEqual([
      [SEED.customerId, SEED.customerVendorEmail],
      [SEED.vendorId, "contact15@example.com"],
    ]);
    expect(await rows(SEED.mixedCaseSecondaryEmail)).toEqual([
      [SEED.mixedCaseSecondaryId, "contact3@example.com"],
    ]);
  });

  it("searches names and emails with search_text", async () => {
    const found = await list("search_text=contact 25");
    expect(found.body.contacts.map((c: SandboxContact) => c.contact_id)).toEqual([
      contactId(25),
      ...Array.from({ length: 10 }, (_, i) => contactId(250 + i)),
    ]);
  });

  it("never shows the foreign organization's contacts", async () => {
    const ids = (await list("per_page=200&page=2")).body.contacts.map(
      (c: SandboxContact) => c.contact_id,
    );
    expect(ids).not.toContain(SEED.foreignContactId);
    expect(sandbox.contacts()).toHaveLength(300);
  });
});

describe("sandbox rate limits", () => {
  it("blocks the organization with 429 code 44 for the rest of the minute past the limit", async () => {
    toNext(60_000);
    sandbox.settings.rateLimitPerMinute = 3;
    await books(action(inactiveId(0), "active"));
    await list(""); // reads count too
    await books(action(inactiveId(1), "active"));
    for (let i = 0; i < 3; i++) {
      expect(await books(action(inactiveId(2), "active"))).toMatchObject({
        status: 429,
        body: { code: 44 },
      });
    }
    sandbox.advanceClock(55);
    expect((await books(action(inactiveId(2), "active"))).body.code).toBe(44);
    sandbox.advanceClock(5);
    expect((await books(action(inactiveId(2), "active"))).status).toBe(200);
    expect(sandbox.stats()).toMatchObject({ throttled: 4, byCode: { "44": 4 } });
  });

  it("does not count requests refused before the organization check", async () => {
    toNext(60_000);
    sandbox.settings.rateLimitPerMinute = 1;
    await books(action(inactiveId(0), "active"), { token: null });
    await books(action(inactiveId(0), "active", FOREIGN_ORGANIZATION_ID));
    expect((await books(action(inactiveId(0), "active"))).status).toBe(200);
  });

  it("answers 429 code 45 past the daily cap, until the daily window ends", async () => {
    sandbox.settings.dailyLimit = 2;
    await books(action(inactiveId(0), "active"));
    sandbox.advanceClock(3600); // another minute, same window
    await books(action(inactiveId(1), "active"));
    sandbox.advanceClock(3600);
    const refused = await books(action(inactiveId(2), "active"));
    expect(refused).toMatchObject({ status: 429, body: { code: 45 } });
    expect(quotaHeaders(refused)).toEqual({ limit: "2", remaining: "0", reset: "79200" });
    sandbox.advanceClock(79_199);
    expect((await books(action(inactiveId(2), "active"))).body.code).toBe(45);
    sandbox.advanceClock(1);
    expect((await books(action(inactiveId(2), "active"))).status).toBe(200);
    expect(sandbox.stats().byCode["45"]).toBe(2);
  });

  it("answers 429 code 1070 to requests past the concurrency limit", async () => {
    sandbox.settings.concurrencyLimit = 2;
    sandbox.settings.latencyMs = 150;
    const answers = await Promise.all(
      [0, 1, 2, 3].map((i) => books(action(inactiveId(i), "active"))),
    );
    expect(answers.map((a) => a.body.code).sort()).toEqual([0, 0, 1070, 1070]);
    expect(sandbox.stats()).toMatchObject({ maxInFlight: 2, throttled: 2 });
    expect((await books(action(inactiveId(3), "active"))).body.code).toBe(0); // the slots are free again
  });
});

describe("sandbox daily quota headers", () => {
  it("reports the daily quota on every answer that counted: successes and Zoho errors alike", async () => {
    sandbox.settings.dailyLimit = 5;
    const answers = [
      await books(action(SEED.inactiveId, "active")), // 200
      await books(action(SEED.inactiveId, "active")), // 400 code 3031
      await books(action(SEED.unknownId, "active")), // 404 not found
      await list(""), // reads count too
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 400, 404, 200]);
    expect(answers.map((a) => quotaHeaders(a).remaining)).toEqual(["4", "3", "2", "1"]);
    for (const a of answers) expect(quotaHeaders(a)).toMatchObject({ limit: "5", reset: "86400" });
    expect(sandbox.dailyQuota()).toEqual({ limit: 5, used: 4, remaining: 1, resetSeconds: 86_400 });
  });

  it("counts the window from the sandbox's start (or reset), not from midnight UTC", async () => {
    sandbox.settings.dailyLimit = 100;
    sandbox.advanceClock(1000.5);
    expect(quotaHeaders(await list(""))).toMatchObject({ reset: "85400" }); // whole seconds, rounded up
    toNext(86_400_000); // UTC midnight is no reset
    expect(Number(quotaHeaders(await list("")).remaining)).toBe(98);
  });

  it("counts windows from dailyResetOrigin, dailyWindowSeconds long (a compressed day)", async () => {
    Object.assign(sandbox.settings, {
      dailyLimit: 2,
      dailyWindowSeconds: 600,
      dailyResetOrigin: sandbox.now() - 3_000_250, // 5 windows and 250 ms ago
    });
    expect(quotaHeaders(await list(""))).toEqual({ limit: "2", remaining: "1", reset: "600" });
    sandbox.advanceClock(120);
    expect(quotaHeaders(await list(""))).toEqual({ limit: "2", remaining: "0", reset: "480" });
    sandbox.advanceClock(240);
    const refused = await list("");
    expect(refused).toMatchObject({ status: 429, body: { code: 45 } });
    expect(quotaHeaders(refused)).toEqual({ limit: "2", remaining: "0", reset: "240" });
    sandbox.advanceClock(240); // the next window
    expect(quotaHeaders(await list(""))).toEqual({ limit: "2", remaining: "1", reset: "600" });
    expect(sandbox.dailyQuota()).toMatchObject({ used: 1, resetSeconds: 600 });
  });

  it("leaves the headers out with rateLimitHeaders false, and still enforces the cap", async () => {
    sandbox.settings.dailyLimit = 1;
    sandbox.settings.rateLimitHeaders = false;
    expect(quotaHeaders(await list(""))).toEqual({});
    const refused = await list("");
    expect(refused).toMatchObject({ status: 429, body: { code: 45 } });
    expect(quotaHeaders(refused)).toEqual({});
  });

  it("sends no headers and enforces no cap when dailyLimit is null", async () => {
    for (let i = 0; i < 3; i++) expect(quotaHeaders(await list(""))).toEqual({});
    expect(sandbox.dailyQuota()).toEqual({
      limit: null,
      used: 3,
      remaining: null,
      resetSeconds: 86_400,
    });
  });

  it("can refuse the daily cap with code 44, as some integrators report, headers saying Remaining 0", async () => {
    sandbox.settings.dailyLimit = 1;
    sandbox.settings.dailyLimitCode = 44;
    await list("");
    const refused = await list("");
    expect(refused).toMatchObject({ status: 429, body: { code: 44 } });
    expect(quotaHeaders(refused).remaining).toBe("0");
  });

  it("reports the quota on a per-minute refusal (44), which does not use it up", async () => {
    toNext(60_000);
    Object.assign(sandbox.settings, { dailyLimit: 10, rateLimitPerMinute: 1 });
    await list("");
    const refused = await list("");
    expect(refused).toMatchObject({ status: 429, body: { code: 44 } });
    expect(quotaHeaders(refused)).toMatchObject({ limit: "10", remaining: "9" });
  });

  it("reports nothing on answers refused before the quota: 405, 14, 57, organization, 1070, outage page", async () => {
    sandbox.settings.dailyLimit = 10;
    const refused = [
      await books(action(SEED.inactiveId, "active"), { method: "GET" }),
      await books(action(SEED.inactiveId, "active"), { token: null }),
      await books(action(SEED.inactiveId, "active"), { token: "1000.abc.def" }),
      await books(action(SEED.inactiveId, "active", FOREIGN_ORGANIZATION_ID)),
    ];
    sandbox.settings.concurrencyLimit = 0;
    refused.push(await list(""));
    expect(refused.map((a) => a.body?.code)).toEqual([undefined, 14, 57, 6024, 1070]);
    for (const a of refused) expect(quotaHeaders(a)).toEqual({});
    sandbox.settings.concurrencyLimit = 10;
    Object.assign(sandbox.settings, { failNext: 1, failureStyle: "html" });
    expect(quotaHeaders(await list(""))).toEqual({});
    expect(sandbox.dailyQuota().used).toBe(1); // the outage page still counted
  });

  it("shows the daily quota in the control state", async () => {
    sandbox.settings.dailyLimit = 3;
    await list("");
    expect((await control("GET", "state")).body.dailyQuota).toEqual({
      limit: 3,
      used: 1,
      remaining: 2,
      resetSeconds: 86_400,
    });
  });
});

describe("sandbox faults", () => {
  it("fails the next N requests with HTTP 500, code 5 and 1000 in turn", async () => {
    sandbox.settings.failNext = 2;
    expect(await books(action(SEED.inactiveId, "active"))).toMatchObject({
      status: 500,
      body: { code: 5 },
    });
    expect(await books(action(SEED.inactiveId, "active"))).toMatchObject({
      status: 500,
      body: { code: 1000 },
    });
    expect(sandbox.contact(SEED.inactiveId)?.status).toBe("inactive");
    expect((await books(action(SEED.inactiveId, "active"))).status).toBe(200);
  });

  it("fails with an HTML 502 page when failureStyle is html", async () => {
    sandbox.settings.failNext = 1;
    sandbox.settings.failureStyle = "html";
    const page = await books(action(SEED.inactiveId, "active"));
    expect(page.status).toBe(502);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.text).toMatch(/^<html>.*502 Bad Gateway.*<\/html>$/);
  });

  it("fails the same requests on every run at a given failureRate", async () => {
    const run = async () => {
      sandbox.reset();
      sandbox.settings.failureRate = 0.5;
      const statuses = [];
      for (let i = 0; i < 12; i++) statuses.push((await list("")).status);
      return statuses;
    };
    const first = await run();
    expect(first).toContain(500);
    expect(first).toContain(200);
    expect(await run()).toEqual(first);
  });

  it("leaves a request hanging until the client's timeout aborts it", async () => {
    sandbox.settings.hangNext = 1;
    const started = Date.now();
    const outcome = await books(action(SEED.inactiveId, "active"), {
      signal: AbortSignal.timeout(150),
    }).catch((error: Error) => error.name);
    expect(outcome).toBe("TimeoutError");
    expect(Date.now() - started).toBeLessThan(1000);
    expect(sandbox.contact(SEED.inactiveId)?.status).toBe("inactive");
    expect((await books(action(SEED.inactiveId, "active"))).status).toBe(200); // only the next one
    await expect.poll(() => sandbox.stats().byStatus["0"]).toBe(1);
  });

  it("closes promptly while a request hangs", async () => {
    const own = await startSandbox({ settings: { hangNext: 1 } });
    const token = own.issueToken().access_token;
    const hanging = fetch(`${own.url}/books/v3${action(SEED.inactiveId, "active")}`, {
      method: "POST",
      headers: { Authorization: `Zoho-oauthtoken ${token}` },
    }).catch((error: Error) => error.name);
    await expect.poll(() => own.requests().length).toBe(1);
    const started = Date.now();
    await own.close();
    expect(Date.now() - started).toBeLessThan(500);
    expect(await hanging).toBe("TypeError"); // fetch failed: the socket was destroyed
  }, 5000);
});

describe("sandbox records", () => {
  it("records every request in order, with its endpoint label, status and code", async () => {
    await grant();
    await books(action(SEED.inactiveId, "active"));
    await get(`/contacts/${SEED.activeId}?organization_id=${ORGANIZATION_ID}`);
    await list("page=1");
    await books(action(SEED.inactiveId, "inactive"), { token: null });
    await fetch(`${sandbox.url}/books/v3/invoices`);
    await control("GET", "state");
    expect(
      sandbox.requests().map(({ method, endpoint, status, code, authorization }) => ({
        method,
        endpoint,
        status,
        code,
        authorization,
      })),
    ).toEqual([
      { method: "POST", endpoint: "token", status: 200, code: undefined, authorization: "absent" },
      {
        method: "POST",
        endpoint: "contact.active",
        status: 200,
        code: 0,
        authorization: "present",
      },
      { method: "GET", endpoint: "contact.get", status: 200, code: 0, authorization: "present" },
      { method: "GET", endpoint: "contacts.list", status: 200, code: 0, authorization: "present" },
      {
        method: "POST",
        endpoint: "contact.inactive",
        status: 401,
        code: 14,
        authorization: "absent",
      },
      { method: "GET", endpoint: "unknown", status: 404, code: 404, authorization: "absent" },
      { method: "GET", endpoint: "control", status: 200, code: undefined, authorization: "absent" },
    ]);
    expect(sandbox.requests()[1]?.url).toBe(`/books/v3${action(SEED.inactiveId, "active")}`);
    expect(sandbox.stats()).toEqual({
      calls: {
        token: 1,
        "contact.active": 1,
        "contact.get": 1,
        "contacts.list": 1,
        "contact.inactive": 1,
        unknown: 1,
      },
      byStatus: { "200": 4, "401": 1, "404": 1 },
      byCode: { "0": 3, "14": 1, "404": 1 },
      grants: 1,
      grantsRefused: 0,
      throttled: 0,
      maxInFlight: 1,
    });
  });

  it("never records a client secret, a refresh token, an access token or the Authorization header", async () => {
    const { body } = await grant();
    await grant({}, "query");
    await books(action(SEED.inactiveId, "active"), { token: body.access_token });
    await books(`${action(SEED.activeId, "inactive")}&authtoken=${body.access_token}`);
    const recorded = JSON.stringify(sandbox.requests());
    const overHttp = (await control("GET", "requests")).text;
    for (const secret of [
      SANDBOX_CREDENTIALS.client_secret,
      SANDBOX_CREDENTIALS.refresh_token,
      body.access_token,
      "Zoho-oauthtoken",
    ]) {
      expect(recorded).not.toContain(secret);
      expect(overHttp).not.toContain(secret);
    }
    expect(recorded).toContain("client_secret=[REDACTED]");
  });
});

describe("sandbox control API", () => {
  it("changes settings with a JSON merge, and refuses unknown, mistyped or out-of-range ones with 400", async () => {
    expect(
      await control("PATCH", "settings", { rateLimitPerMinute: 7, dailyLimit: 50 }),
    ).toMatchObject({
      status: 200,
      body: { rateLimitPerMinute: 7, dailyLimit: 50 },
    });
    expect(sandbox.settings).toMatchObject({ rateLimitPerMinute: 7, dailyLimit: 50 });
    for (const bad of [
      { rateLimitPerMinute: "fast" },
      { noSuchSetting: 1 },
      { failureStyle: "xml" },
      { notFoundCode: 404 },
      { language: "fr" },
      { failureRate: 2 },
      { latencyMs: -1 },
      { grantedScopes: "ZohoBooks.contacts.READ" },
      { omitExpiresIn: "yes" },
      { dailyWindowSeconds: 0 },
      { dailyWindowSeconds: 1.5 },
      { dailyLimitCode: 46 },
      { rateLimitHeaders: "no" },
      { dailyResetOrigin: "midnight" },
      [1],
      "not json",
    ]) {
      const answer = await control("PATCH", "settings", bad);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toEqual(expect.any(String));
    }
    expect(sandbox.settings.rateLimitPerMinute).toBe(7);
    expect((await control("PATCH", "settings", { dailyLimit: null })).status).toBe(200);
    expect(
      (await control("PATCH", "settings", { dailyResetOrigin: 0, dailyWindowSeconds: 60 })).status,
    ).toBe(200);
    expect((await control("PATCH", "settings", { dailyResetOrigin: null })).status).toBe(200);
  });

  it("shows the state, moves the clock and resets", async () => {
    const before = (await control("GET", "state")).body;
    expect(before).toMatchObject({ settings: { rateLimitPerMinute: 100 }, contacts: 300 });
    const moved = await control("POST", "clock/advance", { seconds: 3600 });
    expect(Date.parse(moved.body.clock) - Date.parse(before.clock)).toBeGreaterThanOrEqual(
      3_600_000,
    );
    expect((await control("POST", "clock/advance", { seconds: "soon" })).status).toBe(400);
    sandbox.settings.failNext = 3;
    await books(action(SEED.inactiveId, "active"));
    expect((await control("POST", "reset")).status).toBe(200);
    expect(sandbox.settings.failNext).toBe(0);
    expect(Math.abs(sandbox.now() - Date.now())).toBeLessThan(1000);
  });

  it("issues tokens that are not grants, and revokes them", async () => {
    const { body } = await control("POST", "tokens/issue");
    expect(body).toEqual({ access_token: expect.stringMatching(/^1000\./), expires_in: 3600 });
    expect(
      (await books(action(SEED.inactiveId, "active"), { token: body.access_token })).status,
    ).toBe(200);
    await control("POST", "tokens/revoke");
    expect(
      (await books(action(SEED.activeId, "inactive"), { token: body.access_token })).body.code,
    ).toBe(57);
    expect(sandbox.stats().grants).toBe(0);
  });

  it("shows and sets a contact's status", async () => {
    expect((await control("PUT", `contacts/${SEED.activeId}`, { status: "inactive" })).status).toBe(
      200,
    );
    expect((await control("GET", `contacts/${SEED.activeId}`)).body).toMatchObject({
      contact_id: SEED.activeId,
      status: "inactive",
    });
    expect((await control("PUT", `contacts/${SEED.activeId}`, { status: "gone" })).status).toBe(
      400,
    );
    expect((await control("GET", `contacts/${SEED.unknownId}`)).status).toBe(404);
    expect((await control("GET", "nothing-here")).status).toBe(404);
  });

  it("reads and clears the stats and requests; its own calls are not counted", async () => {
    await books(action(SEED.inactiveId, "active"));
    expect((await control("GET", "stats")).body.calls).toEqual({ "contact.active": 1 });
    const recorded = (await control("GET", "requests")).body;
    expect(recorded.map((r: { endpoint: string }) => r.endpoint)).toEqual([
      "contact.active",
      "control",
      "control",
    ]);
    await control("DELETE", "requests");
    expect(sandbox.requests()).toEqual([]);
    expect(sandbox.stats().calls).toEqual({});
  });

  it("is not rate-limited", async () => {
    sandbox.settings.rateLimitPerMinute = 0;
    for (let i = 0; i < 5; i++) expect((await control("GET", "stats")).status).toBe(200);
  });
});

describe("sandbox lifecycle", () => {
  it("resets to the options it started with", async () => {
    const own = await startSandbox({ contacts: 20, settings: { rateLimitPerMinute: 5 } });
    try {
      const settings = own.settings;
      settings.rateLimitPerMinute = 50;
      own.setContactStatus(contactId(1), "inactive");
      own.advanceClock(86_400);
      own.reset();
      expect(own.settings).toBe(settings); // a reference taken before reset stays live
      expect(own.settings.rateLimitPerMinute).toBe(5);
      expect(own.contacts()).toEqual(seedContacts(20));
      expect(Math.abs(own.now() - Date.now())).toBeLessThan(1000);
    } finally {
      await own.close();
    }
  });

  it("refuses invalid start settings", async () => {
    await expect(startSandbox({ settings: { failureRate: 3 } })).rejects.toThrow(/failureRate/);
  });

  it("seeds the documented data: a quarter inactive, customers and vendors, odd emails", () => {
    const contacts = seedContacts(300);
    expect(contacts.filter((c) => c.status === "inactive")).toHaveLength(75);
    expect(new Set(contacts.map((c) => c.contact_type))).toEqual(new Set(["customer", "vendor"]));
    expect(contacts.every((c) => /^\d{15}$/.test(c.contact_id))).toBe(true);
    const byId = new Map(contacts.map((c) => [c.contact_id, c]));
    expect(byId.get(SEED.activeId)?.status).toBe("active");
    for (const id of [SEED.inactiveId, ...SEED.inactiveIds])
      expect(byId.get(id)?.status).toBe("inactive");
    expect(SEED.ambiguousIds.map((id) => byId.get(id)?.email)).toEqual([
      SEED.ambiguousEmail,
      SEED.ambiguousEmail,
    ]);
    expect(byId.get(SEED.mixedCaseId)?.email).toBe(SEED.mixedCaseEmail);
    for (const c of contacts) {
      const primary = c.contact_persons.filter((p) => p.is_primary_contact);
      expect(primary.map((p) => p.email)).toEqual([c.email]); // one primary, the row's email
    }
    expect(byId.get(SEED.customerId)?.contact_type).toBe("customer");
    expect(byId.get(SEED.vendorId)?.contact_type).toBe("vendor");
    expect(byId.get(SEED.vendorId)?.contact_persons.map((p) => p.email)).toContain(
      SEED.customerVendorEmail,
    );
    expect(byId.has(SEED.unknownId)).toBe(false);
    expect(seedContacts(300)).toEqual(contacts);
  });

  it("runs from the command line, printing one JSON line, and stops on SIGTERM", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "local/sandbox/main.ts", "--port", "0", "--contacts", "20"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
    const started = JSON.parse(line);
    expect(started).toEqual({
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      credentials: SANDBOX_CREDENTIALS,
    });
    const state = await (await fetch(`${started.url}/__sandbox/state`)).json();
    expect(state).toMatchObject({ contacts: 20 });
    child.kill("SIGTERM");
    expect(await once(child, "exit")).toEqual([0, null]);
  });
});

describe("sandbox with several organizations", () => {
  let multi: Sandbox;
  beforeAll(async () => {
    multi = await startSandbox({ contacts: 20, organizations: 3 });
  });
  afterAll(() => multi.close());
  beforeEach(() => multi.reset());

  const call = async (org: string, id: string, method = "POST") =>
    reply(
      await fetch(
        `${multi.url}/books/v3/contacts/${id}${method === "POST" ? "/active" : ""}?organization_id=${org}`,
        {
          method,
          headers: { Authorization: `Zoho-oauthtoken ${multi.issueToken().access_token}` },
        },
      ),
    );
  const second = memberOrganizationId(1);
  const third = memberOrganizationId(2);

  it("serves each member organization its own contacts with the one token", async () => {
    expect(memberOrganizationId(0)).toBe(ORGANIZATION_ID);
    const own = memberContactId(1, 4); // the second organization's contact 4: inactive
    expect(multi.contacts(second).map((c) => c.contact_id)).toContain(own);
    expect(multi.contacts()).toHaveLength(20);
    expect(await call(second, own)).toMatchObject({ status: 200, body: { code: 0 } });
    expect(multi.contact(own)?.status).toBe("active");
    // another organization's contact is not found, as a foreign contact is
    expect((await call(third, own, "GET")).body.code).toBe(1002);
    expect((await call(ORGANIZATION_ID, own, "GET")).body.code).toBe(1002);
    // an organization the user is not a member of is still refused
    expect((await call(memberOrganizationId(3), contactId(4))).body.code).toBe(6024);
  });

  it("counts each organization's calendar minute apart: one blocked, the others not", async () => {
    multi.advanceClock((60_000 - (multi.now() % 60_000) + 100) / 1000);
    multi.settings.rateLimitPerMinute = 2;
    for (const n of [1, 2])
      expect((await call(second, memberContactId(1, n), "GET")).status).toBe(200);
    expect(await call(second, memberContactId(1, 3), "GET")).toMatchObject({
      status: 429,
      body: { code: 44 },
    });
    expect((await call(third, memberContactId(2, 1), "GET")).status).toBe(200);
    expect((await call(ORGANIZATION_ID, contactId(1), "GET")).status).toBe(200);
  });

  it("limits calls in progress per organization", async () => {
    multi.settings.concurrencyLimit = 1;
    multi.settings.latencyMs = 150;
    const answers = await Promise.all([
      call(second, memberContactId(1, 1), "GET"),
      call(second, memberContactId(1, 2), "GET"),
      call(third, memberContactId(2, 1), "GET"),
    ]);
    expect(answers.map((a) => a.body.code).sort()).toEqual([0, 0, 1070]);
    expect(answers[2]?.body.code).toBe(0); // the third organization's own slot
  });
});
