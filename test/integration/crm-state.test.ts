import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ledgerKeys } from "../../lib/ledger/keys";
import { DynamoCrmLedger, MAX_STATUSES_BYTES } from "../../lib/sync/crm-state";
import { type Ledger, startLedger } from "../support/ledger";

// What the CRM sync keeps in the ledger (lib/sync/crm-state.ts), on dynalite, which enforces
// DynamoDB's 400 KB item limit as DynamoDB does.

const ORG = "10234695";
let ledger: Ledger;
beforeAll(async () => {
  ledger = await startLedger();
});
afterAll(() => ledger.close());
beforeEach(() => ledger.reset());

const crmLedger = (now = () => new Date()) =>
  new DynamoCrmLedger({ dynamo: ledger.dynamo, table: ledger.table, now });
/** Zoho-like ids: 18 digits, not in sequence (the worst case for compression). */
const randomIds = (count: number) =>
  Array.from(
    { length: count },
    () =>
      `${1 + Math.floor(Math.random() * 9)}${String(Math.random()).slice(2, 19).padEnd(17, "7")}`,
  );

describe("Books statuses", () => {
  it("reads back what was kept: every id with its status, and the time", async () => {
    const kept = crmLedger();
    const asOf = new Date("2026-12-07T10:00:00Z");
    const ids = randomIds(10_000);
    const statuses = new Map(
      ids.map((id, i) => [id, i % 4 === 0 ? "inactive" : "active"] as const),
    );
    expect(await kept.saveBooksStatuses(ORG, { asOf, statuses })).toBe(true);
    const read = await kept.booksStatuses(ORG);
    expect(read?.asOf).toEqual(asOf);
    expect(read?.statuses).toEqual(statuses);
    expect(kept.requests).toBe(2);
  });

  it("keeps 10,000 random 18-digit ids in well under the 400 KB item limit", async () => {
    await crmLedger().saveBooksStatuses(ORG, {
      asOf: new Date(),
      statuses: new Map(randomIds(10_000).map((id) => [id, "active"] as const)),
    });
    const { Item } = await ledger.dynamo.send(
      new GetItemCommand({ TableName: ledger.table, Key: ledgerKeys.booksStatuses(ORG) }),
    );
    const bytes = (Item?.active?.B?.length ?? 0) + (Item?.inactive?.B?.length ?? 0);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(100_000);
  });

  it("keeps nothing when the statuses do not fit, and deletes the older ones (runs list Books instead)", async () => {
    const kept = crmLedger();
    await kept.saveBooksStatuses(ORG, {
      asOf: new Date(),
      statuses: new Map([["460000000000001", "active"]]),
    });
    const many = new Map(randomIds(60_000).map((id) => [id, "active"] as const));
    expect(await kept.saveBooksStatuses(ORG, { asOf: new Date(), statuses: many })).toBe(false);
    expect(await kept.booksStatuses(ORG)).toBeUndefined();
  });

  it("the limit is below DynamoDB's: an item of MAX_STATUSES_BYTES is stored", async () => {
    await expect(
      ledger.dynamo.send(
        new PutItemCommand({
          TableName: ledger.table,
          Item: {
            ...ledgerKeys.booksStatuses(ORG),
            active: { B: new Uint8Array(MAX_STATUSES_BYTES) },
          },
        }),
      ),
    ).resolves.toBeDefined();
    // and dynalite refuses more than 400 KB, as DynamoDB does
    await expect(
      ledger.dynamo.send(
        new PutItemCommand({
          TableName: ledger.table,
          Item: { ...ledgerKeys.booksStatuses(ORG), active: { B: new Uint8Array(410_000) } },
        }),
      ),
    ).rejects.toThrow(/size/i);
  });
});

describe("CRM links", () => {
  it("reads back the links of a module with one Query, and ignores a looked-up link past its expiry", async () => {
    let now = new Date("2026-12-07T10:00:00Z");
    const kept = crmLedger(() => now);
    await kept.saveLinks(ORG, "Accounts", {
      put: new Map([
        ["554023000000238116", { contacts: ["460000000026049"], from: "lookup" }],
        ["554023000000238117", { contacts: [], from: "lookup" }],
        ["554023000000238118", { contacts: ["460000000026051", "460000000026050"], from: "rows" }],
      ]),
      remove: [],
    });
    await kept.saveLinks(ORG, "Contacts", {
      put: new Map([["554023000000999999", { contacts: ["460000000026049"], from: "rows" }]]),
      remove: [],
    });
    expect(await kept.links(ORG, "Accounts")).toEqual(
      new Map([
        ["554023000000238116", { contacts: ["460000000026049"], from: "lookup" }],
        ["554023000000238117", { contacts: [], from: "lookup" }],
        ["554023000000238118", { contacts: ["460000000026050", "460000000026051"], from: "rows" }],
      ]),
    );
    // 8 days on: "linked to none" (7 days) is looked up again; a link (90 days) and rows' stay
    now = new Date(now.getTime() + 8 * 86_400_000);
    expect([...(await kept.links(ORG, "Accounts")).keys()]).toEqual([
      "554023000000238116",
      "554023000000238118",
    ]);
    now = new Date(now.getTime() + 90 * 86_400_000);
    expect([...(await kept.links(ORG, "Accounts")).keys()]).toEqual(["554023000000238118"]);
    await kept.saveLinks(ORG, "Accounts", { put: new Map(), remove: ["554023000000238118"] });
    expect((await kept.links(ORG, "Accounts")).size).toBe(0);
    expect((await kept.links(ORG, "Contacts")).size).toBe(1);
  });
});
