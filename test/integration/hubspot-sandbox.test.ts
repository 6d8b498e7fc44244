import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  DEFAULT_SETTINGS,
  type HubSpotSandbox,
  type ObjectType,
  startHubSpotSandbox,
} from "../../local/hubspot";
import { contactId, seedContacts } from "../../local/sandbox";

// The HubSpot sandbox is the HubSpot the `hubspot` source will be tested against: these tests pin
// its behaviour through real HTTP. Time passes on the sandbox clock (advanceClock), never by
// waiting, except where a test measures latency.

const RECORDS = 40;
let hubspot: HubSpotSandbox;
beforeAll(async () => {
  // Most tests search many times in a row and want writes searchable at once; the tests of the
  // search rate limit and of search lag set the documented values themselves.
  hubspot = await startHubSpotSandbox({
    records: RECORDS,
    settings: { searchPerSecond: 100_000, searchLagMs: 0 },
  });
});
afterAll(() => hubspot.close());
beforeEach(() => hubspot.reset());

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: a JSON body, read by the assertions
  body: any;
}

async function reply(response: Response): Promise<Reply> {
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) };
}

/** A request to the API with the portal's token, another (`token`), or none (`token: null`). */
async function call(
  method: string,
  path: string,
  body?: unknown,
  token: string | null = hubspot.token,
  on: HubSpotSandbox = hubspot,
): Promise<Reply> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  return reply(await fetch(`${on.url}${path}`, init));
}

const search = (type: ObjectType, body: unknown, on = hubspot) =>
  call("POST", `/crm/v3/objects/${type}/search`, body, hubspot.token, on);
const read = (type: ObjectType, idAndQuery: string) =>
  call("GET", `/crm/v3/objects/${type}/${idAndQuery}`);
const batchRead = (type: ObjectType, body: unknown, query = "") =>
  call("POST", `/crm/v3/objects/${type}/batch/read${query}`, body);

type FilterSpec = Record<string, unknown>;
const filter = (propertyName: string, operator: string, more: FilterSpec = {}) => ({
  propertyName,
  operator,
  ...more,
});
/** A search of one group of filters, all records on one page. */
const where = (...filters: FilterSpec[]) => ({ filterGroups: [{ filters }], limit: 200 });
const contact = (n: number) => String(1_000_000 + n);
const company = (n: number) => String(2_000_000 + n);
const ids = (r: Reply): string[] => r.body.results.map((x: { id: string }) => x.id);
const numbers = (...ns: number[]) => ns.map(contact);
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
/** Epoch ms of a seeded record's last-modified date (minutes after 2026-01-01). */
const modifiedAt = (n: number) => Date.parse("2026-01-01T00:00:00.000Z") + n * 60_000;

function rateHeaders(r: Reply): Record<string, string> {
  return Object.fromEntries(
    [...r.headers].filter(([name]) => name.toLowerCase().startsWith("x-hubspot-ratelimit")),
  );
}

function expectValidationError(r: Reply, message?: RegExp): void {
  expect(r.status).toBe(400);
  expect(r.body).toMatchObject({ status: "error", category: "VALIDATION_ERROR" });
  expect(r.body.correlationId).toEqual(expect.any(String));
  if (message) expect(r.body.message).toMatch(message);
}

describe("HubSpot sandbox authentication and scopes", () => {
  const unauthenticated = {
    status: "error",
    message: expect.stringMatching(/^Authentication credentials not found\./),
    correlationId: expect.any(String),
    category: "INVALID_AUTHENTICATION",
  };

  it("answers 401 INVALID_AUTHENTICATION without a token, with an unknown one, and with a revoked one", async () => {
    const missing = await call("POST", "/crm/v3/objects/contacts/search", {}, null);
    const unknown = await call("POST", "/crm/v3/objects/contacts/search", {}, "pat-na1-unknown");
    const wrongScheme = await reply(
      await fetch(`${hubspot.url}/crm/v3/objects/contacts/${contact(1)}`, {
        headers: { authorization: hubspot.token },
      }),
    );
    hubspot.settings.tokenRevoked = true;
    const revoked = await read("contacts", contact(1));
    for (const r of [missing, unknown, wrongScheme, revoked]) {
      expect(r.status).toBe(401);
      expect(r.body).toEqual(unauthenticated);
      expect(r.text).not.toContain(hubspot.token);
      expect(rateHeaders(r)).toEqual({});
    }
    hubspot.settings.tokenRevoked = false;
    expect((await read("contacts", contact(1))).status).toBe(200);
  });

  it("uses a private-app token, and counts refused requests in the stats", async () => {
    expect(hubspot.token).toMatch(/^pat-/);
    await call("GET", `/crm/v3/objects/contacts/${contact(1)}`, undefined, null);
    expect(hubspot.stats()).toMatchObject({ otherCalls: 1, byStatus: { 401: 1 } });
  });

  it("answers 403 MISSING_SCOPES for an object type whose read scope the app lacks, per type", async () => {
    hubspot.settings.grantedScopes = ["crm.objects.companies.read"];
    const refused = [
      await search("contacts", {}),
      await read("contacts", contact(1)),
      await batchRead("contacts", { inputs: [{ id: contact(1) }] }),
    ];
    for (const r of refused) {
      expect(r.status).toBe(403);
      expect(r.body).toEqual({
        status: "error",
        message:
          "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
        correlationId: expect.any(String),
        errors: [
          {
            message: "One or more of the following scopes are required.",
            context: { requiredGranularScopes: ["crm.objects.contacts.read"] },
          },
        ],
        links: { scopes: "https://developers.hubspot.com/scopes" },
        category: "MISSING_SCOPES",
      });
    }
    expect((await search("companies", {})).status).toBe(200);
    hubspot.settings.grantedScopes = ["crm.objects.contacts.read"];
    expect((await read("companies", company(1))).status).toBe(403);
    expect((await read("contacts", contact(1))).status).toBe(200);
  });
});

describe("HubSpot sandbox search: answers", () => {
  it("answers every record, 10 a page in creation order, with the default properties as strings", async () => {
    const r = await search("contacts", {});
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(RECORDS);
    expect(ids(r)).toEqual(numbers(...range(1, 10)));
    expect(r.body.paging).toEqual({ next: { after: "10" } });
    expect(r.body.results[0]).toEqual({
      id: contact(1),
      properties: {
        createdate: "2026-01-01T00:00:01.000Z",
        email: "contact1@example.com",
        firstname: "Contact",
        hs_object_id: contact(1),
        lastmodifieddate: "2026-01-01T00:01:00.000Z",
        lastname: "1",
      },
      createdAt: "2026-01-01T00:00:01.000Z",
      updatedAt: "2026-01-01T00:01:00.000Z",
      archived: false,
    });
    const last = await search("contacts", { after: "30" });
    expect(ids(last)).toEqual(numbers(...range(31, 40)));
    expect(last.body.paging).toBeUndefined();
  });

  it("answers companies with theirs: name, domain, createdate, hs_lastmodifieddate, hs_object_id", async () => {
    const r = await search("companies", { limit: 1 });
    expect(Object.keys(r.body.results[0].properties)).toEqual([
      "createdate",
      "domain",
      "hs_lastmodifieddate",
      "hs_object_id",
      "name",
    ]);
    expect(r.body.results[0].id).toBe(company(1));
  });

  it("answers the requested properties plus createdate, hs_object_id and the last-modified date; empty ones as null", async () => {
    const r = await search("contacts", {
      ...where(filter("hs_object_id", "EQ", { value: contact(3) })),
      properties: ["zoho_books_contact_id", "notes_last_contacted", "billing_systems", "no_such"],
    });
    expect(r.body.results).toEqual([
      expect.objectContaining({
        id: contact(3),
        properties: {
          billing_systems: "zoho_books;stripe",
          createdate: "2026-01-01T00:00:03.000Z",
          hs_object_id: contact(3),
          lastmodifieddate: "2026-01-01T00:03:00.000Z",
          notes_last_contacted: null,
          zoho_books_contact_id: contactId(3),
        },
      }),
    ]);
  });

  it("pages with limit (1 to 200) and after (a whole number)", async () => {
    expect(ids(await search("contacts", { limit: 3, after: 5 }))).toEqual(numbers(6, 7, 8));
    expect((await search("contacts", { limit: 200 })).body.results).toHaveLength(RECORDS);
    expectValidationError(await search("contacts", { limit: 201 }), /limit/);
    expectValidationError(await search("contacts", { limit: 0 }), /limit/);
    expectValidationError(await search("contacts", { after: "abc" }), /after/);
    expectValidationError(await search("contacts", { after: -10 }), /after/);
  });

  it("sorts by one property, either way; a second sort or an unknown property is a 400", async () => {
    const down = await search("contacts", {
      sorts: [{ propertyName: "hs_object_id", direction: "DESCENDING" }],
      limit: 3,
    });
    expect(ids(down)).toEqual(numbers(40, 39, 38));
    const byContacted = await search("contacts", {
      sorts: [{ propertyName: "notes_last_contacted", direction: "ASCENDING" }],
      limit: 200,
    });
    // Ascending by time; records without a value (every 3rd) come last.
    expect(ids(byContacted).slice(0, 3)).toEqual(numbers(1, 2, 4));
    expect(ids(byContacted).slice(-2)).toEqual(numbers(36, 39));
    expectValidationError(
      await search("contacts", {
        sorts: [
          { propertyName: "hs_object_id", direction: "ASCENDING" },
          { propertyName: "email", direction: "ASCENDING" },
        ],
      }),
      /one sort/,
    );
    const unknown = await search("contacts", { sorts: [{ propertyName: "favourite_colour" }] });
    expectValidationError(unknown);
    expect(unknown.body.errors[0].code).toBe("PROPERTY_DOESNT_EXIST");
  });

  it("carries no rate-limit headers, whatever the answer", async () => {
    const answers = [
      await search("contacts", {}),
      await search("contacts", { limit: 500 }),
      await search("contacts", where(filter("nope", "EQ", { value: "1" }))),
    ];
    for (const r of answers) expect(rateHeaders(r)).toEqual({});
  });
});

describe("HubSpot sandbox search: operators", () => {
  const found = async (...filters: FilterSpec[]) =>
    ids(await search("contacts", where(...filters)));

  it("EQ and NEQ compare strings case-insensitively", async () => {
    expect(await found(filter("email", "EQ", { value: "CONTACT1@EXAMPLE.COM" }))).toEqual(
      numbers(1),
    );
    expect(await found(filter("email", "EQ", { value: "contact7@example.com" }))).toEqual(
      numbers(7),
    );
    expect(await found(filter("email", "NEQ", { value: "shared@example.com" }))).toHaveLength(
      RECORDS - 2,
    );
  });

  it("compares enumerations case-sensitively: the portal's internal values", async () => {
    const others = numbers(...range(1, 10).map((i) => i * 4));
    expect(await found(filter("lifecyclestage", "EQ", { value: "other" }))).toEqual(others);
    expect(await found(filter("lifecyclestage", "EQ", { value: "Other" }))).toEqual([]);
    expect(await found(filter("lifecyclestage", "NEQ", { value: "customer" }))).toEqual(others);
    expect(await found(filter("lifecyclestage", "NOT_IN", { values: ["customer"] }))).toEqual(
      others,
    );
    expect(await found(filter("lifecyclestage", "IN", { values: ["Customer"] }))).toEqual([]);
  });

  it("LT, LTE, GT, GTE compare numbers as numbers", async () => {
    expect(await found(filter("hs_object_id", "GT", { value: contact(37) }))).toEqual(
      numbers(38, 39, 40),
    );
    expect(await found(filter("hs_object_id", "GTE", { value: contact(38) }))).toEqual(
      numbers(38, 39, 40),
    );
    expect(await found(filter("hs_object_id", "LT", { value: contact(3) }))).toEqual(numbers(1, 2));
    expect(await found(filter("hs_object_id", "LTE", { value: Number(contact(2)) }))).toEqual(
      numbers(1, 2),
    );
    expectValidationError(
      await search("contacts", where(filter("hs_object_id", "GT", { value: "many" }))),
      /number/,
    );
  });

  it("compares datetimes as epoch milliseconds (strings or numbers); anything else is a 400", async () => {
    const between = filter("lastmodifieddate", "BETWEEN", {
      value: String(modifiedAt(5)),
      highValue: String(modifiedAt(8)),
    });
    expect(await found(between)).toEqual(numbers(5, 6, 7, 8));
    expect(await found(filter("lastmodifieddate", "GT", { value: modifiedAt(38) }))).toEqual(
      numbers(39, 40),
    );
    for (const value of ["2026-01-01T00:38:00.000Z", "2026-01-01", "soon"]) {
      expectValidationError(
        await search("contacts", where(filter("lastmodifieddate", "GT", { value }))),
        /epoch milliseconds/,
      );
    }
    expectValidationError(
      await search("contacts", where(filter("lastmodifieddate", "BETWEEN", { value: "1" }))),
      /highValue/,
    );
  });

  it("IN and NOT_IN take a values list; a string property's values must be lowercase", async () => {
    // Contact 7's address is stored as Contact7@Example.com.
    expect(
      await found(
        filter("email", "IN", { values: ["contact7@example.com", "contact9@example.com"] }),
      ),
    ).toEqual(numbers(7, 9));
    expect(await found(filter("email", "IN", { values: ["Contact7@Example.com"] }))).toEqual([]);
    expect(await found(filter("email", "NOT_IN", { values: ["shared@example.com"] }))).toHaveLength(
      RECORDS - 2,
    );
    expectValidationError(await search("contacts", where(filter("email", "IN", {}))), /values/);
    expectValidationError(
      await search("contacts", where(filter("email", "IN", { values: [] }))),
      /values/,
    );
  });

  it("HAS_PROPERTY and NOT_HAS_PROPERTY tell records with a value from those without", async () => {
    const without = numbers(...range(1, 13).map((i) => i * 3));
    expect(await found(filter("notes_last_contacted", "NOT_HAS_PROPERTY"))).toEqual(without);
    expect(await found(filter("notes_last_contacted", "HAS_PROPERTY"))).toHaveLength(
      RECORDS - without.length,
    );
  });

  it("CONTAINS_TOKEN matches words, or a pattern with * wildcards; NOT_CONTAINS_TOKEN the rest", async () => {
    expect(await found(filter("email", "CONTAINS_TOKEN", { value: "shared" }))).toEqual(
      numbers(5, 6),
    );
    // contact1@, contact10@ … contact19@, not xcontact1@ (contact 12)
    expect(await found(filter("email", "CONTAINS_TOKEN", { value: "contact1*" }))).toEqual(
      numbers(1, 10, 11, 13, 14, 15, 16, 17, 18, 19),
    );
    expect(await found(filter("email", "CONTAINS_TOKEN", { value: "*@example.com" }))).toHaveLength(
      RECORDS,
    );
    expect(await found(filter("email", "CONTAINS_TOKEN", { value: "*@example.org" }))).toEqual([]);
    expect(await found(filter("email", "NOT_CONTAINS_TOKEN", { value: "shared" }))).toHaveLength(
      RECORDS - 2,
    );
  });

  it("matches a multiple-checkbox property by any of its ;-separated values, case-sensitively", async () => {
    const stripe = numbers(...range(1, 13).map((i) => i * 3));
    expect(await found(filter("billing_systems", "EQ", { value: "stripe" }))).toEqual(stripe);
    expect(
      await found(filter("billing_systems", "IN", { values: ["chargebee", "stripe"] })),
    ).toEqual(stripe);
    expect(await found(filter("billing_systems", "EQ", { value: "Stripe" }))).toEqual([]);
    expect(await found(filter("billing_systems", "NEQ", { value: "stripe" }))).toHaveLength(
      RECORDS - stripe.length,
    );
  });

  it("finds a record by its Books contact id in the custom property", async () => {
    expect(await found(filter("zoho_books_contact_id", "EQ", { value: contactId(7) }))).toEqual(
      numbers(7),
    );
  });

  it("ANDs the filters of a group and ORs the groups", async () => {
    const r = await search("contacts", {
      filterGroups: [
        {
          filters: [
            filter("lifecyclestage", "EQ", { value: "other" }),
            filter("hs_object_id", "LTE", { value: contact(10) }),
          ],
        },
        { filters: [filter("email", "EQ", { value: "contact1@example.com" })] },
      ],
    });
    expect(ids(r)).toEqual(numbers(1, 4, 8));
    expect(r.body.total).toBe(3);
  });

  it("refuses an unknown property with HubSpot's PROPERTY_DOESNT_EXIST body", async () => {
    const r = await search("contacts", where(filter("favourite_colour", "EQ", { value: "red" })));
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      status: "error",
      message: 'Property "favourite_colour" does not exist',
      correlationId: expect.any(String),
      errors: [
        {
          message: 'Property "favourite_colour" does not exist',
          code: "PROPERTY_DOESNT_EXIST",
          context: { propertyName: ["favourite_colour"] },
        },
      ],
      category: "VALIDATION_ERROR",
    });
    // A company property is unknown on contacts.
    expectValidationError(
      await search("contacts", where(filter("domain", "EQ", { value: "x" }))),
      /does not exist/,
    );
  });

  it("refuses an unknown operator, an unknown field, a missing value and a body that is not JSON", async () => {
    expectValidationError(
      await search("contacts", where(filter("email", "LIKE", { value: "x" }))),
      /Invalid input JSON/,
    );
    expectValidationError(await search("contacts", { filters: [] }), /Invalid input JSON/);
    expectValidationError(
      await search("contacts", where({ propertyName: "email", operator: "EQ", valu: "x" })),
      /Invalid input JSON/,
    );
    expectValidationError(await search("contacts", where(filter("email", "EQ"))), /value/);
    expectValidationError(await search("contacts", "{not json"), /Invalid input JSON/);
  });
});

describe("HubSpot sandbox search: documented limits", () => {
  const eq = filter("lifecyclestage", "EQ", { value: "customer" });
  const groups = (...sizes: number[]) => ({
    filterGroups: sizes.map((n) => ({ filters: Array.from({ length: n }, () => eq) })),
  });

  it("has HubSpot's documented defaults", () => {
    expect(DEFAULT_SETTINGS).toMatchObject({
      searchPerSecond: 5,
      tenSecondlyLimit: 100,
      dailyLimit: 250_000,
      maxFilterGroups: 5,
      maxFiltersPerGroup: 6,
      maxFilters: 18,
      maxPageSize: 200,
      maxResults: 10_000,
      maxQueryChars: 3_000,
      maxBatchInputs: 100,
    });
  });

  it("takes 5 groups, 6 filters a group and 18 in all; one more of any is a VALIDATION_ERROR", async () => {
    expect((await search("contacts", groups(1, 1, 1, 1, 1))).status).toBe(200);
    expectValidationError(await search("contacts", groups(1, 1, 1, 1, 1, 1)), /filter groups/);
    expect((await search("contacts", groups(6))).status).toBe(200);
    expectValidationError(await search("contacts", groups(7)), /in a group/);
    expect((await search("contacts", groups(6, 6, 6))).status).toBe(200);
    expectValidationError(await search("contacts", groups(6, 6, 6, 1)), /at most 18/);
  });

  it("follows its settings for those limits", async () => {
    hubspot.settings.maxFilterGroups = 2;
    expectValidationError(await search("contacts", groups(1, 1, 1)), /at most 2/);
  });

  it("refuses a body over 3,000 characters", async () => {
    const padded = { ...where(eq), properties: ["email".padEnd(3_000, " ")] };
    expectValidationError(await search("contacts", padded), /3000 characters/);
  });
});

describe("HubSpot sandbox search: 10,000 results and a full scan by hs_object_id", () => {
  const MANY = 10_050;
  let large: HubSpotSandbox;
  beforeAll(async () => {
    large = await startHubSpotSandbox({
      records: MANY,
      settings: { searchPerSecond: 100_000, searchLagMs: 0 },
    });
  });
  afterAll(() => large.close());

  it("reports the whole total but pages through at most 10,000 results of one query", async () => {
    const lastPage = await search("contacts", { limit: 200, after: "9800" }, large);
    expect(lastPage.status).toBe(200);
    expect(lastPage.body.total).toBe(MANY);
    expect(lastPage.body.results).toHaveLength(200);
    // The cursor is still given; following it is the 400.
    expect(lastPage.body.paging).toEqual({ next: { after: "10000" } });
    const beyond = await search("contacts", { limit: 200, after: "10000" }, large);
    expectValidationError(beyond, /10000/);
    expectValidationError(await search("contacts", { limit: 200, after: "9900" }, large), /10000/);
    expect((await search("contacts", { limit: 100, after: "9900" }, large)).status).toBe(200);
  });

  it("reads every record with hs_object_id GT the last id seen, sorted by hs_object_id", async () => {
    const seen: string[] = [];
    let last = "0";
    for (;;) {
      const page = await search(
        "contacts",
        {
          ...where(filter("hs_object_id", "GT", { value: last })),
          sorts: [{ propertyName: "hs_object_id", direction: "ASCENDING" }],
          properties: ["zoho_books_contact_id"],
        },
        large,
      );
      expect(page.status).toBe(200);
      if (page.body.results.length === 0) break;
      seen.push(...ids(page));
      last = seen.at(-1) as string;
    }
    expect(seen).toHaveLength(MANY);
    expect(new Set(seen).size).toBe(MANY);
    expect(seen.at(-1)).toBe(contact(MANY));
  });
});

describe("HubSpot sandbox read by id and batch read", () => {
  it("reads a record by id with its default or requested properties", async () => {
    const plain = await read("contacts", contact(2));
    expect(plain.status).toBe(200);
    expect(plain.body).toMatchObject({
      id: contact(2),
      properties: { email: "contact2@example.com", hs_object_id: contact(2) },
      archived: false,
    });
    // A property without a value is left out of a read (null only in search answers).
    const empty = await read("contacts", `${contact(3)}?properties=notes_last_contacted,email`);
    expect(empty.body.properties).not.toHaveProperty("notes_last_contacted");
    expect(empty.body.properties.email).toBe("contact3@example.com");
    const chosen = await read("companies", `${company(2)}?properties=name,zoho_books_contact_id`);
    expect(chosen.body.properties).toEqual({
      createdate: "2026-01-01T00:00:02.000Z",
      hs_lastmodifieddate: "2026-01-01T00:02:00.000Z",
      hs_object_id: company(2),
      name: "Company 2",
      zoho_books_contact_id: contactId(2),
    });
  });

  it("reads by a unique property with idProperty (email case-insensitively); a non-unique one is a 400", async () => {
    const byEmail = await read("contacts", "CONTACT9@example.com?idProperty=email");
    expect(byEmail.body.id).toBe(contact(9));
    const byBooksId = await read("contacts", `${contactId(11)}?idProperty=zoho_books_contact_id`);
    expect(byBooksId.body.id).toBe(contact(11));
    expectValidationError(await read("contacts", "Contact?idProperty=firstname"), /unique/);
  });

  it("answers 404 OBJECT_NOT_FOUND for a record that does not exist", async () => {
    for (const id of ["999", "not-a-number"]) {
      const r = await read("contacts", id);
      expect(r.status).toBe(404);
      expect(r.body).toEqual({
        status: "error",
        message: "Object not found.  objectId are usually numeric.",
        correlationId: expect.any(String),
        context: { id: [id] },
        category: "OBJECT_NOT_FOUND",
      });
    }
  });

  it("carries the rate-limit headers, counting down", async () => {
    const first = await read("contacts", contact(1));
    const second = await read("contacts", contact(2));
    expect(rateHeaders(first)).toEqual({
      "x-hubspot-ratelimit-daily": "250000",
      "x-hubspot-ratelimit-daily-remaining": "249999",
      "x-hubspot-ratelimit-interval-milliseconds": "10000",
      "x-hubspot-ratelimit-max": "100",
      "x-hubspot-ratelimit-remaining": "99",
    });
    expect(rateHeaders(second)).toMatchObject({
      "x-hubspot-ratelimit-daily-remaining": "249998",
      "x-hubspot-ratelimit-remaining": "98",
    });
    const batch = await batchRead("contacts", { inputs: [{ id: contact(1) }] });
    expect(rateHeaders(batch)["x-hubspot-ratelimit-remaining"]).toBe("97");
  });

  it("batch-reads up to 100 records: 200 when all are found, 207 naming those that are not", async () => {
    const all = await batchRead("contacts", {
      inputs: [{ id: contact(1) }, { id: contact(2) }],
      properties: ["zoho_books_contact_id"],
    });
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ status: "COMPLETE", startedAt: expect.any(String) });
    expect(ids(all)).toEqual(numbers(1, 2));
    expect(all.body.results[0].properties.zoho_books_contact_id).toBe(contactId(1));

    const some = await batchRead("contacts", { inputs: [{ id: contact(3) }, { id: "999" }] });
    expect(some.status).toBe(207);
    expect(ids(some)).toEqual(numbers(3));
    expect(some.body).toMatchObject({
      numErrors: 1,
      errors: [
        {
          status: "error",
          category: "OBJECT_NOT_FOUND",
          message:
            "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
          context: { ids: ["999"] },
        },
      ],
    });

    const hundred = range(1, 100).map((i) => ({ id: contact(i) }));
    expect((await batchRead("contacts", { inputs: hundred })).status).toBe(207); // 60 of them missing
    expectValidationError(
      await batchRead("contacts", { inputs: [...hundred, { id: contact(1) }] }),
      /at most 100/,
    );
  });

  it("batch-reads by idProperty, returning that property", async () => {
    const r = await batchRead("companies", {
      inputs: [{ id: contactId(4) }, { id: contactId(5) }],
      idProperty: "zoho_books_contact_id",
      properties: ["lifecyclestage"],
    });
    expect(r.status).toBe(200);
    expect(r.body.results.map((x: { id: string }) => x.id)).toEqual([company(4), company(5)]);
    expect(r.body.results[0].properties).toMatchObject({
      lifecyclestage: "other",
      zoho_books_contact_id: contactId(4),
    });
    expectValidationError(
      await batchRead("contacts", { inputs: [{ id: "x" }], idProperty: "lastname" }),
      /unique/,
    );
    expectValidationError(await batchRead("contacts", { ids: [contact(1)] }), /Invalid input JSON/);
  });
});

describe("HubSpot sandbox eventual consistency", () => {
  const byEmail = (email: string) =>
    search("contacts", where(filter("email", "EQ", { value: email })));

  it("shows a new record to read by id at once and to search only after searchLagMs", async () => {
    hubspot.settings.searchLagMs = 500;
    const created = hubspot.create("contacts", {
      email: "new@example.com",
      lifecyclestage: "customer",
      zoho_books_contact_id: "460000099999998",
    });
    expect(Number(created.id)).toBeGreaterThan(Number(contact(RECORDS)));
    expect((await read("contacts", created.id)).status).toBe(200);
    expect((await batchRead("contacts", { inputs: [{ id: created.id }] })).status).toBe(200);
    expect((await byEmail("new@example.com")).body.total).toBe(0);
    // The sandbox clock also moves with real time: these steps leave room for a slow machine.
    hubspot.advanceClock(0.25);
    expect((await byEmail("new@example.com")).body.total).toBe(0);
    hubspot.advanceClock(0.25);
    expect(ids(await byEmail("new@example.com"))).toEqual([created.id]);
  });

  it("shows an update to search late, and bumps the last-modified date at once", async () => {
    hubspot.settings.searchLagMs = 300;
    const before = hubspot.now();
    hubspot.update("contacts", contact(1), { lifecyclestage: "other" });
    const now = await read("contacts", `${contact(1)}?properties=lifecyclestage`);
    expect(now.body.properties.lifecyclestage).toBe("other");
    expect(Date.parse(now.body.properties.lastmodifieddate)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(now.body.updatedAt)).toBeGreaterThanOrEqual(before);
    const isOther = where(
      filter("hs_object_id", "EQ", { value: contact(1) }),
      filter("lifecyclestage", "EQ", { value: "other" }),
    );
    expect((await search("contacts", isOther)).body.total).toBe(0);
    hubspot.advanceClock(0.3);
    expect((await search("contacts", isOther)).body.total).toBe(1);
  });

  it("hides an archived record from read by id at once (unless archived=true) and from search later", async () => {
    hubspot.settings.searchLagMs = 300;
    hubspot.archive("contacts", contact(2));
    expect((await read("contacts", contact(2))).status).toBe(404);
    const archived = await read("contacts", `${contact(2)}?archived=true`);
    expect(archived.body).toMatchObject({ id: contact(2), archived: true });
    expect((await read("contacts", `${contact(3)}?archived=true`)).status).toBe(404);
    const batch = await batchRead("contacts", { inputs: [{ id: contact(2) }] }, "?archived=true");
    expect(batch.status).toBe(200);
    expect((await batchRead("contacts", { inputs: [{ id: contact(2) }] })).status).toBe(207);
    const two = where(filter("hs_object_id", "EQ", { value: contact(2) }));
    expect((await search("contacts", two)).body.total).toBe(1);
    hubspot.advanceClock(0.3);
    expect((await search("contacts", two)).body.total).toBe(0);
  });

  it("defaults to a few hundred milliseconds of lag", () => {
    expect(DEFAULT_SETTINGS.searchLagMs).toBeGreaterThanOrEqual(100);
    expect(DEFAULT_SETTINGS.searchLagMs).toBeLessThan(1000);
  });
});

describe("HubSpot sandbox rate limits", () => {
  it("allows 5 searches a second, then answers 429 SECONDLY with no rate-limit headers", async () => {
    hubspot.settings.searchPerSecond = DEFAULT_SETTINGS.searchPerSecond;
    for (let i = 0; i < 5; i++) expect((await search("contacts", { limit: 1 })).status).toBe(200);
    const refused = await search("contacts", { limit: 1 });
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      status: "error",
      message: "You have reached your secondly limit.",
      errorType: "RATE_LIMIT",
      correlationId: expect.any(String),
      policyName: "SECONDLY",
      requestId: expect.any(String),
    });
    expect(rateHeaders(refused)).toEqual({});
    // Reads are not searches: they pass meanwhile.
    expect((await read("contacts", contact(1))).status).toBe(200);
    hubspot.advanceClock(1);
    expect((await search("contacts", { limit: 1 })).status).toBe(200);
    expect(hubspot.stats()).toMatchObject({
      searchCalls: 7,
      otherCalls: 1,
      throttled: { SECONDLY: 1, TEN_SECONDLY_ROLLING: 0, DAILY: 0 },
    });
  });

  it("allows 100 other requests per rolling 10 seconds, then answers 429 TEN_SECONDLY_ROLLING", async () => {
    for (let i = 0; i < 100; i++) expect((await read("contacts", contact(1))).status).toBe(200);
    const refused = await read("contacts", contact(1));
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({
      status: "error",
      message: "You have reached your ten_secondly_rolling limit.",
      errorType: "RATE_LIMIT",
      policyName: "TEN_SECONDLY_ROLLING",
    });
    expect(rateHeaders(refused)).toMatchObject({
      "x-hubspot-ratelimit-max": "100",
      "x-hubspot-ratelimit-remaining": "0",
    });
    // Search has its own limit.
    expect((await search("contacts", { limit: 1 })).status).toBe(200);
    // The window is rolling: the sandbox clock also moves with real time, so the steps leave room.
    hubspot.advanceClock(9);
    expect((await read("contacts", contact(1))).status).toBe(429);
    hubspot.advanceClock(1.1);
    expect((await read("contacts", contact(1))).status).toBe(200);
    expect(hubspot.stats().throttled.TEN_SECONDLY_ROLLING).toBe(2);
  });

  it("takes the 190 of the Professional and Enterprise tiers as a setting", async () => {
    hubspot.settings.tenSecondlyLimit = 190;
    for (let i = 0; i < 190; i++) await read("contacts", contact(1));
    expect((await read("contacts", contact(1))).status).toBe(429);
  });

  it("enforces the daily limit on every request until midnight in the account's time zone", async () => {
    hubspot.settings.dailyLimit = 3;
    hubspot.settings.timeZoneOffsetMinutes = -300; // UTC-5
    // Move to 23:59 local time.
    const local = hubspot.now() - 300 * 60_000;
    hubspot.advanceClock((86_400_000 - (local % 86_400_000) - 60_000) / 1000);
    await read("contacts", contact(1));
    await search("contacts", {});
    const third = await read("contacts", contact(1));
    expect(rateHeaders(third)["x-hubspot-ratelimit-daily-remaining"]).toBe("0");
    for (const refused of [await read("contacts", contact(1)), await search("contacts", {})]) {
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({
        message: "You have reached your daily limit.",
        errorType: "RATE_LIMIT",
        policyName: "DAILY",
      });
    }
    hubspot.advanceClock(60);
    expect((await read("contacts", contact(1))).status).toBe(200);
  });
});

describe("HubSpot sandbox faults and stats", () => {
  it("fails the next N requests with HTTP 500 (failNext)", async () => {
    hubspot.settings.failNext = 2;
    expect((await search("contacts", {})).status).toBe(500);
    const failed = await read("contacts", contact(1));
    expect(failed.status).toBe(500);
    expect(failed.body).toMatchObject({ status: "error", category: "INTERNAL_ERROR" });
    expect((await read("contacts", contact(1))).status).toBe(200);
    expect(hubspot.settings.failNext).toBe(0);
  });

  it("adds latencyMs to each request", async () => {
    hubspot.settings.latencyMs = 150;
    const started = performance.now();
    await read("contacts", contact(1));
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  it("counts search calls, other calls and 429s, and clears them", async () => {
    await search("contacts", {});
    await read("contacts", contact(1));
    await batchRead("contacts", { inputs: [{ id: contact(1) }] });
    await call("GET", "/crm/v3/objects/deals/1");
    expect(hubspot.stats()).toEqual({
      searchCalls: 1,
      otherCalls: 3,
      throttled: { SECONDLY: 0, TEN_SECONDLY_ROLLING: 0, DAILY: 0 },
      calls: { search: 1, read: 1, batchRead: 1, unknown: 1 },
      byStatus: { 200: 3, 404: 1 },
    });
    hubspot.clearStats();
    expect(hubspot.stats().searchCalls).toBe(0);
  });
});

describe("HubSpot sandbox control API", () => {
  const control = async (method: string, path: string, body?: unknown) =>
    reply(
      await fetch(`${hubspot.url}/__hubspot/${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    );

  it("creates, reads, updates and archives records over HTTP", async () => {
    const created = await control("POST", "objects/companies", {
      properties: { name: "Acme", domain: "acme.example.com", lifecyclestage: "lead" },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect((await read("companies", id)).body.properties.name).toBe("Acme");
    const updated = await control("PATCH", `objects/companies/${id}`, {
      properties: { lifecyclestage: "customer", notes_last_contacted: modifiedAt(1) },
    });
    expect(updated.body.properties).toMatchObject({
      lifecyclestage: "customer",
      notes_last_contacted: "2026-01-01T00:01:00.000Z",
    });
    expect((await control("GET", `objects/companies/${id}`)).body.archived).toBe(false);
    expect((await control("DELETE", `objects/companies/${id}`)).body.archived).toBe(true);
    expect((await read("companies", id)).status).toBe(404);
    expect((await control("GET", "objects/companies/1")).status).toBe(404);
  });

  it("refuses writes HubSpot would refuse: unknown or read-only properties, other options, duplicates", async () => {
    const refusals = [
      { properties: { favourite_colour: "red" } },
      { properties: { hs_object_id: "5" } },
      { properties: { lifecyclestage: "Customer" } },
      { properties: { billing_systems: "zoho_books;paypal" } },
      { properties: { notes_last_contacted: "yesterday" } },
      { properties: { zoho_books_contact_id: contactId(1) } },
      { properties: "none" },
    ];
    for (const body of refusals) {
      const r = await control("PATCH", `objects/contacts/${contact(2)}`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
    }
    expect(() => hubspot.update("contacts", "1", {})).toThrow(/no contacts record 1/);
  });

  it("changes settings, moves the clock, reports state and resets", async () => {
    expect((await control("PATCH", "settings", { searchLagMs: 50 })).body.searchLagMs).toBe(50);
    expect((await control("PATCH", "settings", { searchLagMs: -1 })).status).toBe(400);
    expect((await control("PATCH", "settings", { nope: 1 })).status).toBe(400);
    const before = hubspot.now();
    await control("POST", "clock/advance", { seconds: 3600 });
    expect(hubspot.now() - before).toBeGreaterThanOrEqual(3_600_000);
    hubspot.create("contacts", { email: "x@example.com" });
    const state = await control("GET", "state");
    expect(state.body).toMatchObject({ records: { contacts: RECORDS + 1, companies: RECORDS } });
    await control("POST", "reset");
    expect(hubspot.settings.searchLagMs).toBe(0);
    expect(hubspot.records("contacts")).toHaveLength(RECORDS);
    expect((await control("GET", "nowhere")).status).toBe(404);
  });

  it("rejects invalid start settings", async () => {
    await expect(startHubSpotSandbox({ settings: { maxFilters: 0 } })).rejects.toThrow(
      /maxFilters/,
    );
  });
});

describe("HubSpot sandbox seed", () => {
  it("links record i to the Books sandbox's contact i: its id, email and name", () => {
    const books = seedContacts(RECORDS);
    const contacts = hubspot.records("contacts");
    const companies = hubspot.records("companies");
    books.forEach((book, i) => {
      expect(contacts[i]?.properties).toMatchObject({
        hs_object_id: contact(i + 1),
        zoho_books_contact_id: book.contact_id,
        email: book.email,
        firstname: "Contact",
        lastname: String(i + 1),
      });
      expect(companies[i]?.properties).toMatchObject({
        hs_object_id: company(i + 1),
        zoho_books_contact_id: book.contact_id,
        name: `Company ${i + 1}`,
      });
    });
    // hs_object_id increases with creation.
    const created = contacts.map((c) => c.createdAt);
    expect([...created].sort((a, b) => a - b)).toEqual(created);
  });

  it("leaves every n-th record unlinked or linked by email only, on request", async () => {
    const small = await startHubSpotSandbox({ records: 12, unlinkedEvery: 4, emailOnlyEvery: 3 });
    try {
      const byN = (n: number) => small.record("contacts", contact(n))?.properties ?? {};
      expect(byN(4).zoho_books_contact_id).toBeUndefined();
      expect(byN(4).email).toBe("hubspot-only4@example.org");
      expect(byN(3).zoho_books_contact_id).toBeUndefined();
      expect(byN(3).email).toBe("contact3@example.com");
      expect(byN(12).email).toBe("hubspot-only12@example.org"); // unlinked wins over email-only
      expect(byN(1).zoho_books_contact_id).toBe(contactId(1));
      expect(
        small.record("companies", company(8))?.properties.zoho_books_contact_id,
      ).toBeUndefined();
    } finally {
      await small.close();
    }
  });

  it("runs from the command line, printing one JSON line, and stops on SIGTERM", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "local/hubspot/main.ts", "--port", "0", "--records", "5"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
    const started = JSON.parse(line);
    expect(started).toEqual({
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      token: hubspot.token,
    });
    const state = await (await fetch(`${started.url}/__hubspot/state`)).json();
    expect(state).toMatchObject({ records: { contacts: 5, companies: 5 } });
    child.kill("SIGTERM");
    expect(await once(child, "exit")).toEqual([0, null]);
  });
});
