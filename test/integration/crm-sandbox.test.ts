import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  ACCOUNT_TYPES,
  CRM_SCOPES,
  contactId,
  crmAccountId,
  crmContactId,
  DEFAULT_SETTINGS,
  mixedCrmLinks,
  ORGANIZATION_ID,
  SANDBOX_CREDENTIALS,
  type Sandbox,
  SEGMENTS,
  startSandbox,
} from "../../local/sandbox";

// The CRM side of the sandbox (issue 18, item 10), through real HTTP: COQL, fields metadata and
// notification channels on the same API domain and tokens as Books. Time passes on the sandbox
// clock (advanceClock), never by waiting.

const BOOKS_SCOPES = DEFAULT_SETTINGS.grantedScopes;
const ALL_SCOPES = [...BOOKS_SCOPES, ...CRM_SCOPES];
const CONTACTS = 40;

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await startSandbox({
    contacts: CONTACTS,
    settings: { grantedScopes: ALL_SCOPES },
    crm: { linkOf: mixedCrmLinks },
  });
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
  return {
    status: response.status,
    headers: response.headers,
    text,
    body: text === "" ? undefined : JSON.parse(text),
  };
}

/** A CRM call with a fresh token unless told otherwise (`token: null` sends no header). */
async function crm(
  path: string,
  init: { method?: string; body?: unknown; token?: string | null } = {},
): Promise<Reply> {
  const token = init.token === undefined ? sandbox.issueToken().access_token : init.token;
  return reply(
    await fetch(`${sandbox.url}/crm/v8${path}`, {
      method: init.method ?? "GET",
      headers: token === null ? {} : { Authorization: `Zoho-oauthtoken ${token}` },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    }),
  );
}

const coql = (select_query: string, token?: string | null) =>
  crm("/coql", {
    method: "POST",
    body: { select_query },
    ...(token === undefined ? {} : { token }),
  });

async function control(method: string, path: string, body?: unknown): Promise<Reply> {
  return reply(
    await fetch(`${sandbox.url}/__sandbox/${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  );
}

async function books(path: string): Promise<Reply> {
  const token = sandbox.issueToken().access_token;
  const join = path.includes("?") ? "&" : "?";
  return reply(
    await fetch(`${sandbox.url}/books/v3${path}${join}organization_id=${ORGANIZATION_ID}`, {
      headers: { Authorization: `Zoho-oauthtoken ${token}` },
    }),
  );
}

/** `((c1 and c2) and c3) …`: n criteria bracketed two at a time, as Zoho requires. */
function nested(n: number): string {
  let where = "id is not null";
  for (let i = 1; i < n; i++) where = `(${where} and id is not null)`;
  return where;
}

function expectError(answer: Reply, status: number, code: string): void {
  expect(answer.status).toBe(status);
  expect(answer.body).toEqual({
    code,
    details: expect.any(Object),
    message: expect.any(String),
    status: "error",
  });
}

const ids = (answer: Reply) => (answer.body?.data ?? []).map((r: { id: string }) => r.id);

describe("CRM COQL: accepted queries", () => {
  it("answers the selected fields, id always, lookups as {id, name}, in id order", async () => {
    const accounts = await coql(
      "select Account_Name, Account_Type, Segments from Accounts where id is not null limit 3",
    );
    expect(accounts.status).toBe(200);
    expect(accounts.body).toEqual({
      data: [
        {
          id: crmAccountId(1),
          Account_Name: "Company 1",
          Account_Type: "Customer",
          Segments: ["Wholesale", "Online"],
        },
        { id: crmAccountId(2), Account_Name: "Company 1", Account_Type: "Customer", Segments: [] },
        {
          id: crmAccountId(3),
          Account_Name: "Company 2",
          Account_Type: "Customer",
          Segments: ["Retail"],
        },
      ],
      info: { count: 3, more_records: true },
    });
    const contacts = await coql(
      `select Email, Account_Name from Contacts where id = '${crmContactId(2)}'`,
    );
    expect(contacts.body.data).toEqual([
      {
        id: crmContactId(2),
        Email: "contact2@example.com",
        Account_Name: { id: crmAccountId(2), name: "Company 1" },
      },
    ]);
  });

  it("pages with LIMIT and OFFSET; LIMIT offset, count only when crmCoqlLimitCommaForm says so", async () => {
    const comma = "select id from Accounts where id is not null limit 30, 15";
    expectError(await coql(comma), 400, "SYNTAX_ERROR");
    sandbox.settings.crmCoqlLimitCommaForm = true;
    const first = await coql("select id from Accounts where id is not null limit 15");
    const second = await coql("select id from Accounts where id is not null limit 15 offset 15");
    const third = await coql("select id from Accounts where id is not null limit 30, 15");
    expect(first.body.info).toEqual({ count: 15, more_records: true });
    expect(second.body.info).toEqual({ count: 15, more_records: true });
    expect(third.body.info).toEqual({ count: 10, more_records: false });
    expect([...ids(first), ...ids(second), ...ids(third)]).toEqual(
      Array.from({ length: CONTACTS }, (_, i) => crmAccountId(i + 1)),
    );
    expect((await coql("select id from Accounts where id is not null")).body.info.count).toBe(40);
  });

  it("orders by the given fields, ties by id", async () => {
    await sandbox.crm.updateRecord("Accounts", crmAccountId(9), { Account_Type: "Partner" });
    const answer = await coql(
      "select Modified_Time from Accounts where id is not null order by Modified_Time desc limit 2",
    );
    expect(ids(answer)).toEqual([crmAccountId(9), crmAccountId(1)]);
    const byName = await coql(
      "select Account_Name from Accounts where id < '4150868000000000005' order by Account_Name desc, id asc",
    );
    expect(ids(byName)).toEqual([
      crmAccountId(3),
      crmAccountId(4),
      crmAccountId(1),
      crmAccountId(2),
    ]);
  });

  it("answers HTTP 204 with an empty body when nothing matches", async () => {
    const answer = await coql("select id from Accounts where Account_Name = 'Nobody'");
    expect(answer.status).toBe(204);
    expect(answer.text).toBe("");
  });

  it("takes each documented operator", async () => {
    const count = async (where: string, module = "Accounts") =>
      (await coql(`select id from ${module} where ${where} limit 200`)).body?.info.count ?? 0;
    expect(await count("Account_Type = 'Former Customer'")).toBe(10);
    expect(await count("Account_Type != 'Customer'")).toBe(14); // 10 former + prospects 7, 14, 21, 35
    expect(await count("Account_Type in ('Prospect', 'Former Customer')")).toBe(14);
    expect(await count("Account_Type not in ('Prospect', 'Former Customer')")).toBe(26);
    expect(await count("Last_Activity_Time is null")).toBe(8);
    expect(await count("Last_Activity_Time is not null")).toBe(32);
    // account n's last activity is n days before 2026-01-01 (none on every 5th): the 23rd is n = 9
    expect(await count("Last_Activity_Time >= '2025-12-23T00:00:00+00:00'")).toBe(8);
    expect(await count("Last_Activity_Time > '2025-12-23T00:00:00+00:00'")).toBe(7);
    expect(await count("Last_Activity_Time < '2025-12-23T00:00:00+00:00'")).toBe(24);
    expect(await count("Last_Activity_Time <= '2025-12-23T00:00:00+00:00'")).toBe(25);
    expect(
      await count(
        "Last_Activity_Time between '2025-12-21T00:00:00+00:00' and '2025-12-31T00:00:00+00:00'",
      ),
    ).toBe(9);
    // two accounts a company (Company 1 … 20): Company 1 and 10–19, in any case
    expect(await count("Account_Name like 'company 1%'")).toBe(22);
    expect(await count("Account_Name not like '%1%'")).toBe(18);
    expect(await count("Email like '%@example.org'", "Contacts")).toBe(4); // the unlinked ones
    expect(await count("Segments = 'Online'")).toBe(14); // n = 1, 4, 7, … 40
    expect(await count(`Account_Name = '${crmAccountId(3)}'`, "Contacts")).toBe(1);
  });

  it("takes AND and OR two at a time, with brackets for more", async () => {
    const answer = await coql(
      "select id from Accounts where ((Account_Type = 'Prospect' or Account_Type = 'Partner') and Last_Activity_Time is null)",
    );
    expect(ids(answer)).toEqual([crmAccountId(35)]);
    const other = await coql(
      "select id from Accounts where (Account_Type = 'Prospect' and (id > '4150868000000000014' and Last_Activity_Time is not null))",
    );
    expect(ids(other)).toEqual([crmAccountId(21)]);
  });
});

describe("CRM COQL: refusals, with Zoho's codes", () => {
  it("refuses a query without WHERE (SYNTAX_ERROR); `where id is not null` selects all", async () => {
    expectError(await coql("select id from Accounts"), 400, "SYNTAX_ERROR");
    expectError(await coql("select id from Accounts limit 10"), 400, "SYNTAX_ERROR");
    expect((await coql("select id from Accounts where id is not null")).status).toBe(200);
  });

  it("refuses more than two criteria not bracketed two at a time", async () => {
    const unbracketed = await coql(
      "select id from Accounts where id is not null and Account_Type = 'Customer' and Segments is null",
    );
    expectError(unbracketed, 400, "SYNTAX_ERROR");
    const bracketed = await coql(
      "select id from Accounts where ((id is not null and Account_Type = 'Customer') and Segments is null)",
    );
    expect(bracketed.status).toBe(200);
  });

  it("takes 50 fields and refuses 51 (LIMIT_EXCEEDED)", async () => {
    const fields = (n: number) => Array.from({ length: n }, () => "Account_Name").join(", ");
    expect((await coql(`select ${fields(50)} from Accounts where id is not null`)).status).toBe(
      200,
    );
    expectError(
      await coql(`select ${fields(51)} from Accounts where id is not null`),
      400,
      "LIMIT_EXCEEDED",
    );
  });

  it("takes 25 criteria and refuses 26 (LIMIT_EXCEEDED)", async () => {
    expect((await coql(`select id from Accounts where ${nested(25)}`)).status).toBe(200);
    expectError(await coql(`select id from Accounts where ${nested(26)}`), 400, "LIMIT_EXCEEDED");
  });

  it("takes 50 values in IN and NOT IN, refuses 51 (LIMIT_EXCEEDED)", async () => {
    const values = (n: number) =>
      Array.from({ length: n }, (_, i) => `'${crmAccountId(i + 1)}'`).join(",");
    const fifty = await coql(`select id from Accounts where id in (${values(50)}) limit 50`);
    expect(fifty.body.info.count).toBe(40);
    expectError(
      await coql(`select id from Accounts where id in (${values(51)})`),
      400,
      "LIMIT_EXCEEDED",
    );
    expectError(
      await coql(`select id from Accounts where id not in (${values(51)})`),
      400,
      "LIMIT_EXCEEDED",
    );
  });

  it("takes LIMIT up to the maximum (2,000 by default) and refuses more (LIMIT_EXCEEDED)", async () => {
    expect((await coql("select id from Accounts where id is not null limit 2000")).status).toBe(
      200,
    );
    expectError(
      await coql("select id from Accounts where id is not null limit 2001"),
      400,
      "LIMIT_EXCEEDED",
    );
    sandbox.settings.crmCoqlMaxLimit = 200;
    expect((await coql("select id from Accounts where id is not null limit 200")).status).toBe(200);
    expectError(
      await coql("select id from Accounts where id is not null limit 201"),
      400,
      "LIMIT_EXCEEDED",
    );
  });

  it("reaches 100,000 records by OFFSET + LIMIT and refuses beyond (LIMIT_EXCEEDED)", async () => {
    expect(
      (await coql("select id from Accounts where id is not null limit 2000 offset 98000")).status,
    ).toBe(204);
    const beyond = await coql(
      "select id from Accounts where id is not null limit 2000 offset 98001",
    );
    expectError(beyond, 400, "LIMIT_EXCEEDED");
    sandbox.settings.crmCoqlLimitCommaForm = true;
    expectError(
      await coql("select id from Accounts where id is not null limit 98001, 2000"),
      400,
      "LIMIT_EXCEEDED",
    );
  });

  it("answers INVALID_MODULE, INVALID_QUERY and SYNTAX_ERROR", async () => {
    expectError(await coql("select id from Leads where id is not null"), 400, "INVALID_MODULE");
    expectError(await coql("select id from accounts where id is not null"), 400, "INVALID_MODULE");
    expectError(
      await coql("select Phone from Accounts where id is not null"),
      400,
      "INVALID_QUERY",
    );
    expectError(await coql("select id from Accounts where Phone = '1'"), 400, "INVALID_QUERY");
    expectError(
      await coql("select id from Accounts where id is not null order by Phone"),
      400,
      "INVALID_QUERY",
    );
    // a datetime without its offset, a like on a datetime, a number for a text field
    expectError(
      await coql("select id from Accounts where Modified_Time > '2026-01-01T00:00:00'"),
      400,
      "INVALID_QUERY",
    );
    expectError(
      await coql("select id from Accounts where Modified_Time like '2026%'"),
      400,
      "INVALID_QUERY",
    );
    expectError(await coql("select id from Accounts where Account_Name = 5"), 400, "INVALID_QUERY");
    for (const broken of [
      "selec id from Accounts where id is not null",
      "select id from Accounts where id = 'open",
      "select id from Accounts where (id is not null",
      "select id from Accounts where id is not null limit ten",
      "select id from Accounts where id is not null order by id sideways",
    ])
      expectError(await coql(broken), 400, "SYNTAX_ERROR");
    expectError(await crm("/coql", { method: "POST", body: {} }), 400, "MANDATORY_NOT_FOUND");
    expectError(await crm("/coql"), 400, "INVALID_REQUEST_METHOD");
  });
});

describe("CRM authorization", () => {
  it("takes the same tokens as Books, from the same grant", async () => {
    const granted = await reply(
      await fetch(`${sandbox.url}/oauth/v2/token`, {
        method: "POST",
        body: new URLSearchParams({ grant_type: "refresh_token", ...SANDBOX_CREDENTIALS }),
      }),
    );
    expect(granted.body.scope.split(" ")).toEqual(ALL_SCOPES);
    const token = granted.body.access_token;
    expect((await coql("select id from Accounts where id is not null", token)).status).toBe(200);
    const booksAnswer = await reply(
      await fetch(`${sandbox.url}/books/v3/contacts?organization_id=${ORGANIZATION_ID}`, {
        headers: { Authorization: `Zoho-oauthtoken ${token}` },
      }),
    );
    expect(booksAnswer.status).toBe(200);
  });

  it("answers 401 INVALID_TOKEN without a token, for an unknown one and for an expired one", async () => {
    const query = "select id from Accounts where id is not null";
    expectError(await coql(query, null), 401, "INVALID_TOKEN");
    expectError(await coql(query, "1000.nothing.issued"), 401, "INVALID_TOKEN");
    const { access_token } = sandbox.issueToken();
    sandbox.advanceClock(3601);
    expectError(await coql(query, access_token), 401, "INVALID_TOKEN");
  });

  it("answers 401 OAUTH_SCOPE_MISMATCH without ZohoCRM.coql.READ or the module's READ; modules.ALL covers every module", async () => {
    const query = "select id from Contacts where id is not null";
    sandbox.settings.grantedScopes = ALL_SCOPES.filter((s) => s !== "ZohoCRM.coql.READ");
    expectError(await coql(query), 401, "OAUTH_SCOPE_MISMATCH");
    sandbox.settings.grantedScopes = ALL_SCOPES.filter(
      (s) => s !== "ZohoCRM.modules.contacts.READ",
    );
    expectError(await coql(query), 401, "OAUTH_SCOPE_MISMATCH");
    expect((await coql("select id from Accounts where id is not null")).status).toBe(200);
    sandbox.settings.grantedScopes = ["ZohoCRM.coql.READ", "ZohoCRM.modules.ALL"];
    expect((await coql(query)).status).toBe(200);
    expect((await crm("/settings/fields?module=Accounts")).status).toBe(401);
  });

  it("answers 403 NO_PERMISSION when the user's CRM profile has no API access", async () => {
    sandbox.settings.crmNoPermission = true;
    expectError(await coql("select id from Accounts where id is not null"), 403, "NO_PERMISSION");
    expectError(await crm("/settings/fields?module=Accounts"), 403, "NO_PERMISSION");
  });

  it("answers 404 INVALID_URL_PATTERN for a CRM path it does not serve", async () => {
    expectError(await crm("/Accounts/search"), 404, "INVALID_URL_PATTERN");
  });
});

describe("CRM limits and faults", () => {
  it("charges COQL credits by LIMIT (1 to 200, 2 to 1,000, 3 above) and refuses past the rolling day with 429", async () => {
    for (const limit of [200, 201, 1000, 1001])
      await coql(`select id from Accounts where id is not null limit ${limit}`);
    expect(sandbox.crm.stats().creditsSpent).toBe(1 + 2 + 2 + 3);
    sandbox.settings.crmCreditsPerDay = 11;
    expect(sandbox.crm.credits()).toEqual({ limit: 11, used: 8, remaining: 3 });
    expect((await coql("select id from Accounts where id is not null limit 2000")).status).toBe(
      200,
    );
    const refused = await coql("select id from Accounts where id is not null");
    expectError(refused, 429, "RATE_LIMIT_EXCEEDED");
    expect(refused.headers.get("retry-after")).toBeNull();
    expect(sandbox.crm.credits().used).toBe(11); // a refusal costs nothing
    sandbox.advanceClock(86_400);
    expect((await coql("select id from Accounts where id is not null")).status).toBe(200);
    expect(sandbox.crm.stats()).toMatchObject({ throttled: 1, creditsSpent: 12 });
  });

  it("answers the 429 code the setting names", async () => {
    sandbox.settings.crmCreditsPerDay = 0;
    sandbox.settings.crmRateLimitCode = "TOO_MANY_REQUESTS";
    expectError(
      await coql("select id from Accounts where id is not null"),
      429,
      "TOO_MANY_REQUESTS",
    );
  });

  it("refuses requests past the concurrency limit with 429", async () => {
    sandbox.settings.crmConcurrencyLimit = 2;
    sandbox.settings.crmLatencyMs = 300;
    const answers = await Promise.all(
      [1, 2, 3].map(() => coql("select id from Accounts where id is not null")),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 429]);
    expect(sandbox.crm.stats().maxInFlight).toBe(2);
  });

  it("fails the next N CRM requests with 500 INTERNAL_ERROR, Books untouched", async () => {
    sandbox.settings.crmFailNext = 1;
    expectError(await coql("select id from Accounts where id is not null"), 500, "INTERNAL_ERROR");
    expect((await books("/contacts")).status).toBe(200);
    expect((await coql("select id from Accounts where id is not null")).status).toBe(200);
  });

  it("counts CRM calls apart from the Books stats, and records them with their codes", async () => {
    await coql("select id from Accounts where id is not null");
    await coql("select id from Nothing where id is not null");
    await books("/contacts");
    expect(sandbox.crm.stats()).toMatchObject({
      calls: { "crm.coql": 2 },
      byStatus: { "200": 1, "400": 1 },
      byCode: { INVALID_MODULE: 1 },
      creditsSpent: 1,
    });
    expect(sandbox.stats().calls).toEqual({ "contacts.list": 1 });
    expect(sandbox.requests().map((r) => [r.endpoint, r.status, r.crmCode])).toEqual([
      ["crm.coql", 200, undefined],
      ["crm.coql", 400, "INVALID_MODULE"],
      ["contacts.list", 200, undefined],
    ]);
    expect((await control("GET", "crm/stats")).body.stats.calls).toEqual({ "crm.coql": 2 });
  });
});

describe("CRM seed and the Books link", () => {
  it("seeds one account and one contact per Books contact, related as linkOf says", async () => {
    expect(sandbox.crm.records("Accounts")).toHaveLength(CONTACTS);
    expect(sandbox.crm.records("Contacts")).toHaveLength(CONTACTS);
    expect(sandbox.crm.links().slice(0, 10)).toEqual([
      "integration",
      "integration",
      "integration",
      "integration",
      "field",
      "integration",
      "email",
      "integration",
      "integration",
      "none",
    ]);
    const field = await coql(
      `select Books_Contact_Id from Accounts where Books_Contact_Id is not null`,
    );
    expect(field.body.data.map((r: { Books_Contact_Id: string }) => r.Books_Contact_Id)).toEqual(
      [5, 15, 25, 35].map(contactId),
    );
    const byEmail = await coql(
      "select Email, Account_Name from Contacts where Email = 'Contact7@Example.com'",
    );
    expect(byEmail.body.data[0].Account_Name.id).toBe(crmAccountId(7));
    expect(sandbox.crm.records("Accounts").every((a) => /^\d{19}$/.test(a.id))).toBe(true);
  });

  it("shows the CRM link on the Books detail of linked contacts only", async () => {
    const linked = await books(`/contacts/${contactId(1)}`);
    expect(linked.body.contact).toMatchObject({
      is_linked_with_zohocrm: true,
      zcrm_account_id: crmAccountId(1),
      zcrm_contact_id: crmContactId(1),
    });
    for (const n of [5, 7, 10]) {
      const detail = (await books(`/contacts/${contactId(n)}`)).body.contact;
      expect(detail.is_linked_with_zohocrm).toBe(false);
      expect(detail).not.toHaveProperty("zcrm_account_id");
    }
  });

  it("keeps the CRM ids off list rows unless booksListCrmIds, and filters by them and by Status.Crm", async () => {
    const rows = (await books("/contacts?per_page=200")).body.contacts;
    expect(rows[0]).not.toHaveProperty("zcrm_account_id");
    sandbox.settings.booksListCrmIds = true;
    const withIds = (await books("/contacts?per_page=200")).body.contacts;
    expect(withIds[0]).toMatchObject({
      zcrm_account_id: crmAccountId(1),
      zcrm_contact_id: crmContactId(1),
    });
    expect(withIds[4]).not.toHaveProperty("zcrm_account_id"); // contact 5: linked by field only
    const one = await books(`/contacts?zcrm_account_id=${crmAccountId(3)}`);
    expect(one.body.contacts.map((c: { contact_id: string }) => c.contact_id)).toEqual([
      contactId(3),
    ]);
    const byContact = await books(`/contacts?zcrm_contact_id=${crmContactId(3)}`);
    expect(byContact.body.contacts).toHaveLength(1);
    expect((await books(`/contacts?zcrm_account_id=${crmAccountId(5)}`)).body.contacts).toEqual([]);
    expect((await books("/contacts?filter_by=Status.Crm")).body.contacts).toHaveLength(28);
  });

  it("carries the amounts: receivable ones on rows, all three on the detail, settable by control", async () => {
    const id = contactId(2);
    const set = await control("PATCH", `contacts/${id}/amounts`, {
      outstanding_receivable_amount: 120.5,
      outstanding_payable_amount: 30,
    });
    expect(set.body).toEqual({
      outstanding_receivable_amount: 120.5,
      outstanding_payable_amount: 30,
      unused_credits_receivable_amount: 0,
    });
    const row = (await books("/contacts")).body.contacts[1];
    expect(row).toMatchObject({
      contact_id: id,
      outstanding_receivable_amount: 120.5,
      unused_credits_receivable_amount: 0,
    });
    expect(row).not.toHaveProperty("outstanding_payable_amount");
    expect((await books(`/contacts/${id}`)).body.contact).toMatchObject({
      outstanding_receivable_amount: 120.5,
      outstanding_payable_amount: 30,
      unused_credits_receivable_amount: 0,
    });
    expect((await control("PATCH", `contacts/${id}/amounts`, { balance: 1 })).status).toBe(400);
    expect(
      (await control("PATCH", `contacts/${id}/amounts`, { outstanding_payable_amount: "1" }))
        .status,
    ).toBe(400);
    sandbox.reset();
    expect(sandbox.contactAmounts(id)?.outstanding_receivable_amount).toBe(0);
  });
});

describe("CRM fields metadata", () => {
  it("describes each field: api_name, data_type, picklist values, lookups", async () => {
    const answer = await crm("/settings/fields?module=Accounts");
    expect(answer.status).toBe(200);
    const byName = Object.fromEntries(
      answer.body.fields.map((f: { api_name: string }) => [f.api_name, f]),
    );
    expect(byName.Account_Type).toMatchObject({
      data_type: "picklist",
      pick_list_values: ACCOUNT_TYPES.map((v) => ({ display_value: v, actual_value: v })),
    });
    expect(byName.Segments).toMatchObject({ data_type: "multiselectpicklist", custom_field: true });
    expect(byName.Segments.pick_list_values).toHaveLength(SEGMENTS.length);
    expect(byName.Modified_Time.data_type).toBe("datetime");
    expect(byName.Books_Contact_Id).toMatchObject({ data_type: "text", custom_field: true });
    const contacts = await crm("/settings/fields?module=Contacts");
    const lookup = contacts.body.fields.find(
      (f: { api_name: string }) => f.api_name === "Account_Name",
    );
    expect(lookup).toMatchObject({
      data_type: "lookup",
      lookup: { module: { api_name: "Accounts" } },
    });
    expect(contacts.body.fields.map((f: { data_type: string }) => f.data_type)).toContain("email");
  });

  it("refuses a missing or unknown module, and a token without ZohoCRM.settings.fields.READ", async () => {
    expectError(await crm("/settings/fields"), 400, "REQUIRED_PARAM_MISSING");
    expectError(await crm("/settings/fields?module=Leads"), 400, "INVALID_MODULE");
    sandbox.settings.grantedScopes = ALL_SCOPES.filter((s) => s !== "ZohoCRM.settings.fields.READ");
    expectError(await crm("/settings/fields?module=Accounts"), 401, "OAUTH_SCOPE_MISMATCH");
  });
});

describe("CRM notifications", () => {
  let receiver: Server;
  let receiverUrl: string;
  let received: Record<string, unknown>[] = [];
  let receiverStatus = 200;

  beforeAll(async () => {
    receiver = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        res.writeHead(receiverStatus).end();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/zoho`;
  });
  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
  beforeEach(() => {
    received = [];
    receiverStatus = 200;
  });

  const inHours = (hours: number) =>
    new Date(sandbox.now() + hours * 3_600_000).toISOString().replace(/\.\d{3}Z$/, "+00:00");
  const enable = (watch: Record<string, unknown>[]) =>
    crm("/actions/watch", { method: "POST", body: { watch } });
  const channel = (more: Record<string, unknown> = {}) => ({
    channel_id: "1000000068001",
    events: ["Accounts.all"],
    notify_url: receiverUrl,
    token: "verify-me",
    channel_expiry: inHours(24),
    ...more,
  });

  it("enables a channel, lists it, and posts Zoho's body for an edit, a create and a delete", async () => {
    const enabled = await enable([channel()]);
    expect(enabled.status).toBe(201);
    expect(enabled.body.watch[0]).toMatchObject({
      code: "SUCCESS",
      status: "success",
      details: {
        events: [
          { channel_id: "1000000068001", resource_name: "Accounts", channel_expiry: inHours(24) },
        ],
      },
    });
    const listed = await crm("/actions/watch");
    expect(listed.body.watch[0]).toMatchObject({
      channel_id: "1000000068001",
      events: ["Accounts.all"],
      token: "verify-me",
    });

    const edit = await control("PATCH", `crm/Accounts/${crmAccountId(3)}`, {
      Account_Type: "Former Customer",
    });
    expect(edit.body.Modified_Time).not.toBe("2026-01-01T00:00:00+00:00");
    expect(received).toEqual([
      {
        server_time: expect.any(Number),
        query_params: {},
        module: "Accounts",
        resource_uri: `${sandbox.url}/crm/v8/Accounts`,
        ids: [crmAccountId(3)],
        affected_fields: [{ [crmAccountId(3)]: ["Account_Type"] }],
        operation: "update",
        channel_id: "1000000068001",
        token: "verify-me",
      },
    ]);
    const seen = await coql(`select Account_Type from Accounts where id = '${crmAccountId(3)}'`);
    expect(seen.body.data[0].Account_Type).toBe("Former Customer");

    const created = await control("POST", "crm/Accounts", {
      Account_Name: "Newco",
      Account_Type: "Prospect",
    });
    expect(received[1]).toMatchObject({
      operation: "insert",
      ids: [created.body.id],
      affected_fields: [],
    });
    await control("DELETE", `crm/Accounts/${created.body.id}`);
    expect(received[2]).toMatchObject({ operation: "delete", ids: [created.body.id] });
    // Contacts are not watched; an edit that changes nothing notifies nobody.
    await control("PATCH", `crm/Contacts/${crmContactId(1)}`, { Last_Name: "Renamed" });
    await control("PATCH", `crm/Accounts/${crmAccountId(4)}`, { Account_Type: "Former Customer" });
    expect(received).toHaveLength(3);
    expect(sandbox.crm.stats().notificationsSent).toBe(3);
  });

  it("adds the changed values when return_affected_field_values is true", async () => {
    await enable([channel({ return_affected_field_values: true, events: ["Accounts.edit"] })]);
    await sandbox.crm.updateRecord("Accounts", crmAccountId(1), {
      Segments: ["Export"],
      Account_Name: "Company 1",
    });
    expect(received[0]).toMatchObject({
      affected_fields: [{ [crmAccountId(1)]: ["Segments"] }],
      affected_values: [{ id: crmAccountId(1), Segments: ["Export"] }],
    });
  });

  it("notifies an edit only when a field of the notification_condition changed", async () => {
    const condition = [
      {
        type: "field_selection",
        module: { api_name: "Accounts" },
        field_selection: { group_operator: "or", group: [{ field: { api_name: "Account_Type" } }] },
      },
    ];
    await enable([channel({ events: ["Accounts.edit"], notification_condition: condition })]);
    await sandbox.crm.updateRecord("Accounts", crmAccountId(1), { Segments: ["Export"] });
    expect(received).toEqual([]);
    await sandbox.crm.updateRecord("Accounts", crmAccountId(1), { Account_Type: "Partner" });
    expect(received).toHaveLength(1);
  });

  it("gives one hour without an expiry or with one more than a week ahead, takes up to a week, refuses the past", async () => {
    await enable([
      channel({ channel_id: "1", channel_expiry: undefined }),
      channel({ channel_id: "2", channel_expiry: inHours(7 * 24 + 1) }),
      channel({ channel_id: "3", channel_expiry: inHours(7 * 24 - 1) }),
    ]);
    const expiry = Object.fromEntries(
      sandbox.crm.channels().map((c) => [c.channel_id, c.channel_expiry]),
    );
    expect(expiry).toEqual({ "1": inHours(1), "2": inHours(1), "3": inHours(7 * 24 - 1) });
    const past = await enable([channel({ channel_id: "4", channel_expiry: inHours(-1) })]);
    expect(past.status).toBe(400);
    expect(past.body.watch[0]).toMatchObject({
      code: "INVALID_DATA",
      details: { api_name: "channel_expiry" },
    });
  });

  it("drops expired channels: they neither notify nor list", async () => {
    await enable([channel({ channel_expiry: inHours(2) })]);
    sandbox.advanceClock(2 * 3600 + 1);
    await sandbox.crm.updateRecord("Accounts", crmAccountId(1), { Account_Type: "Partner" });
    expect(received).toEqual([]);
    expect((await crm("/actions/watch")).status).toBe(204);
  });

  it("takes a token of 50 characters and refuses 51 (the setting)", async () => {
    expect((await enable([channel({ token: "t".repeat(50) })])).status).toBe(201);
    const long = await enable([channel({ token: "t".repeat(51) })]);
    expect(long.status).toBe(400);
    expect(long.body.watch[0]).toMatchObject({
      code: "INVALID_DATA",
      details: { api_name: "token" },
    });
    sandbox.settings.crmWatchTokenMaxLength = 256;
    expect((await enable([channel({ token: "t".repeat(256) })])).status).toBe(201);
  });

  it("refuses bad items (207 for a mix) and answers 401 without a notifications scope", async () => {
    const mixed = await enable([
      channel(),
      channel({ channel_id: "2", events: ["Leads.edit"] }),
      channel({ channel_id: "3", notify_url: undefined }),
    ]);
    expect(mixed.status).toBe(207);
    expect(mixed.body.watch.map((w: { code: string }) => w.code)).toEqual([
      "SUCCESS",
      "INVALID_DATA",
      "MANDATORY_NOT_FOUND",
    ]);
    sandbox.settings.grantedScopes = ALL_SCOPES.filter((s) => s !== "ZohoCRM.notifications.ALL");
    expectError(await crm("/actions/watch"), 401, "OAUTH_SCOPE_MISMATCH");
    sandbox.settings.grantedScopes = [
      ...ALL_SCOPES.filter((s) => s !== "ZohoCRM.notifications.ALL"),
      "ZohoCRM.notifications.READ",
    ];
    expect((await crm("/actions/watch")).status).toBe(200);
    expectError(await enable([channel()]), 401, "OAUTH_SCOPE_MISMATCH");
    sandbox.settings.grantedScopes = ["ZohoCRM.notifications.WRITE"];
    expect((await enable([channel()])).status).toBe(201);
  });

  it("updates (PUT, PATCH), removes events (PATCH _delete_events) and disables (DELETE) channels", async () => {
    await enable([channel()]);
    const put = await crm("/actions/watch", {
      method: "PUT",
      body: {
        watch: [
          {
            channel_id: "1000000068001",
            notify_url: receiverUrl,
            events: ["Contacts.edit", "Accounts.edit"],
          },
        ],
      },
    });
    expect(put.status).toBe(200);
    expect(sandbox.crm.channels()[0]).toMatchObject({
      events: ["Contacts.edit", "Accounts.edit"],
      token: null,
    });
    await crm("/actions/watch", {
      method: "PATCH",
      body: { watch: [{ channel_id: "1000000068001", token: "again" }] },
    });
    expect(sandbox.crm.channels()[0]).toMatchObject({
      events: ["Contacts.edit", "Accounts.edit"],
      token: "again",
    });
    await crm("/actions/watch", {
      method: "PATCH",
      body: {
        watch: [{ channel_id: "1000000068001", events: ["Accounts.edit"], _delete_events: true }],
      },
    });
    expect(sandbox.crm.channels()[0]?.events).toEqual(["Contacts.edit"]);
    const unknown = await crm("/actions/watch", {
      method: "PUT",
      body: { watch: [channel({ channel_id: "9" })] },
    });
    expect(unknown.body.watch[0].code).toBe("NOT_SUBSCRIBED");
    expectError(await crm("/actions/watch", { method: "DELETE" }), 400, "REQUIRED_PARAM_MISSING");
    const deleted = await crm("/actions/watch?channel_ids=1000000068001", { method: "DELETE" });
    expect(deleted.body.watch[0].code).toBe("SUCCESS");
    expect(sandbox.crm.channels()).toEqual([]);
  });

  it("loses deliveries when told to, counts refused ones, and can drop the channel on a failure", async () => {
    await enable([channel()]);
    sandbox.settings.crmNotifyFailNext = 1;
    await sandbox.crm.updateRecord("Accounts", crmAccountId(1), { Account_Type: "Partner" });
    expect(received).toEqual([]);
    receiverStatus = 500;
    await sandbox.crm.updateRecord("Accounts", crmAccountId(1), { Account_Type: "Other" });
    expect(sandbox.crm.deliveries().map((d) => [d.outcome, d.status])).toEqual([
      ["lost", undefined],
      ["failed", 500],
    ]);
    expect(sandbox.crm.stats()).toMatchObject({ notificationsSent: 0, notificationsFailed: 2 });
    expect((await control("GET", "crm/channels")).body).toHaveLength(1);
    expect(
      (await control("GET", "crm/deliveries")).body.map((d: { outcome: string }) => d.outcome),
    ).toEqual(["lost", "failed"]);
    sandbox.settings.crmDropChannelOnFailure = true;
    await sandbox.crm.updateRecord("Accounts", crmAccountId(1), { Account_Type: "Partner" });
    expect(sandbox.crm.channels()).toEqual([]);
  });
});

describe("CRM control API", () => {
  it("creates, reads, edits and deletes records, refusing what a user could not set", async () => {
    const made = await control("POST", "crm/Contacts", {
      Last_Name: "New",
      Email: "new@example.com",
      Account_Name: crmAccountId(2),
    });
    expect(made.status).toBe(200);
    expect(made.body).toMatchObject({
      Created_Time: made.body.Modified_Time,
      Account_Name: crmAccountId(2),
    });
    const found = await coql(`select Account_Name from Contacts where Email = 'new@example.com'`);
    expect(found.body.data[0].Account_Name).toEqual({ id: crmAccountId(2), name: "Company 1" });
    for (const bad of [
      { Phone: "1" },
      { Modified_Time: "2026-01-01T00:00:00+00:00" },
      { Account_Name: "999" },
      { Last_Activity_Time: "yesterday" },
    ])
      expect((await control("PATCH", `crm/Contacts/${made.body.id}`, bad)).status).toBe(400);
    expect(
      (await control("PATCH", `crm/Accounts/${crmAccountId(1)}`, { Account_Type: "Gone" })).status,
    ).toBe(400);
    expect(
      (await control("PATCH", `crm/Accounts/${crmAccountId(1)}`, { Segments: ["Nope"] })).status,
    ).toBe(400);
    expect((await control("GET", `crm/Accounts/${crmAccountId(1)}`)).body.Account_Name).toBe(
      "Company 1",
    );
    expect((await control("GET", "crm/Accounts/1")).status).toBe(404);
    expect((await control("DELETE", `crm/Contacts/${made.body.id}`)).status).toBe(200);
    expect((await control("GET", "crm/Contacts")).body).toHaveLength(CONTACTS);
    expect((await control("GET", "crm/Leads")).status).toBe(404);
  });

  it("bumps Modified_Time on the sandbox clock, and reset() restores the seed", async () => {
    sandbox.advanceClock(86_400 * 30);
    const edited = await sandbox.crm.updateRecord("Accounts", crmAccountId(1), {
      Account_Type: "Partner",
    });
    expect(Date.parse(edited.Modified_Time as string)).toBeGreaterThan(
      Date.now() + 29 * 86_400_000,
    );
    const since = await coql(
      "select id from Accounts where Modified_Time > '2026-01-01T00:00:00+00:00'",
    );
    expect(ids(since)).toEqual([crmAccountId(1)]);
    sandbox.reset();
    expect(sandbox.crm.record("Accounts", crmAccountId(1))?.Account_Type).toBe("Customer");
  });
});
