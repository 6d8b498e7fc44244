import { describe, expect, it } from "vitest";
import { idsQuery, NotificationSchema } from "../../lib/crm/notifications";
import { ZohoCrmSourceSchema } from "../../lib/crm/source";
import {
  askedExpiry,
  CHANNEL_MAX_MS,
  missingNotificationScopes,
  newChannelId,
  newWatchToken,
  notifyUrl,
  planWatch,
  tokenAccepted,
  tokenDigest,
  type WatchState,
} from "../../lib/crm/watch";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const now = new Date("2026-12-07T12:00:00Z");
const url = "https://api.example.com/webhooks/zoho-crm-notifications?organization_id=1";
const events = ["Accounts.create", "Accounts.edit"];
const channel = (
  expiresInMs: number,
  more: Partial<{ events: string[]; notify_url: string }> = {},
) => ({
  channel_id: "12345678901234",
  events,
  notify_url: url,
  channel_expiry: new Date(now.getTime() + expiresInMs).toISOString(),
  ...more,
});

describe("planWatch", () => {
  it("enables when Zoho lists no channel of ours", () => {
    expect(planWatch({ listed: undefined, wanted: { events, notifyUrl: url }, now })).toBe(
      "enable",
    );
  });

  it("renews within two days of the expiry, keeps before", () => {
    const plan = (ms: number) =>
      planWatch({ listed: channel(ms), wanted: { events, notifyUrl: url }, now });
    expect(plan(2 * DAY + HOUR)).toBe("keep");
    expect(plan(2 * DAY - HOUR)).toBe("renew");
    expect(plan(HOUR)).toBe("renew");
  });

  it("renews a channel that watches other events or notifies another URL, whatever its expiry", () => {
    const wanted = { events, notifyUrl: url };
    const listed = (more: Parameters<typeof channel>[1]) => channel(6 * DAY, more);
    expect(planWatch({ listed: listed({ events: ["Accounts.edit"] }), wanted, now })).toBe("renew");
    expect(planWatch({ listed: listed({ notify_url: `${url}2` }), wanted, now })).toBe("renew");
    expect(planWatch({ listed: listed({ events: [...events].reverse() }), wanted, now })).toBe(
      "keep",
    );
  });

  it("renews a channel whose expiry cannot be read", () => {
    const listed = { ...channel(6 * DAY), channel_expiry: "soon" };
    expect(planWatch({ listed, wanted: { events, notifyUrl: url }, now })).toBe("renew");
  });
});

describe("askedExpiry", () => {
  it("asks a week less an hour, never more than Zoho's week, in Zoho's time form", () => {
    const asked = askedExpiry(now);
    expect(asked).toBe("2026-12-14T11:00:00+00:00");
    expect(Date.parse(asked) - now.getTime()).toBeLessThan(CHANNEL_MAX_MS);
  });
});

describe("channel tokens", () => {
  it("are at least 32 random characters within Zoho's 50, URL-safe, never twice the same", () => {
    const tokens = Array.from({ length: 50 }, newWatchToken);
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_-]{32,50}$/);
    expect(new Set(tokens).size).toBe(50);
  });

  it("channel ids are decimal longs", () => {
    expect(newChannelId()).toMatch(/^[1-9]\d{13}$/);
  });

  const token = newWatchToken();
  const state = (tokens: WatchState["tokens"]): WatchState => ({
    channelId: "1",
    tokens,
    config: {
      source: ZohoCrmSourceSchema.parse({
        type: "zoho_crm",
        module: "Accounts",
        rules: [{ field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] }],
        match: ["zcrm_link"],
      }),
      apply_deactivations: false,
      guard: { outstanding: true },
    },
  });

  it("takes the token whose digest the ledger keeps, and refuses another, a prefix, none", () => {
    const s = state([{ sha256: tokenDigest(token) }]);
    expect(tokenAccepted(s, token, now.getTime())).toBe(true);
    expect(tokenAccepted(s, `${token}x`, now.getTime())).toBe(false);
    expect(tokenAccepted(s, token.slice(0, -1), now.getTime())).toBe(false);
    for (const missing of [undefined, null, "", 42, { token }])
      expect(tokenAccepted(s, missing, now.getTime())).toBe(false);
  });

  it("takes a replaced token until its grace ends, then no more", () => {
    const old = newWatchToken();
    const s = state([
      { sha256: tokenDigest(token) },
      { sha256: tokenDigest(old), validUntil: now.getTime() + HOUR },
    ]);
    expect(tokenAccepted(s, old, now.getTime())).toBe(true);
    expect(tokenAccepted(s, old, now.getTime() + HOUR)).toBe(false);
    expect(tokenAccepted(s, token, now.getTime() + HOUR)).toBe(true);
  });

  it("keeps no token in the state, only its SHA-256", () => {
    expect(tokenDigest(token)).toMatch(/^[0-9a-f]{64}$/);
    expect(tokenDigest(token)).not.toContain(token);
  });
});

describe("missingNotificationScopes", () => {
  it("names ZohoCRM.notifications.ALL unless the grant has ALL, or READ with CREATE and UPDATE (WRITE gives both)", () => {
    expect(missingNotificationScopes("ZohoBooks.contacts.ALL ZohoCRM.coql.READ")).toEqual([
      "ZohoCRM.notifications.ALL",
    ]);
    expect(missingNotificationScopes("zohocrm.notifications.all")).toEqual([]);
    expect(
      missingNotificationScopes("ZohoCRM.notifications.READ,ZohoCRM.notifications.WRITE"),
    ).toEqual([]);
    expect(
      missingNotificationScopes(
        "ZohoCRM.notifications.READ ZohoCRM.notifications.CREATE ZohoCRM.notifications.UPDATE",
      ),
    ).toEqual([]);
    expect(
      missingNotificationScopes("ZohoCRM.notifications.READ ZohoCRM.notifications.CREATE"),
    ).toEqual(["ZohoCRM.notifications.ALL"]);
  });
});

describe("notifyUrl", () => {
  it("is the HTTP API's webhook route for the built-in source, with the organization", () => {
    expect(notifyUrl("https://abc.execute-api.eu-west-1.amazonaws.com/", "10234695")).toBe(
      "https://abc.execute-api.eu-west-1.amazonaws.com/webhooks/zoho-crm-notifications?organization_id=10234695",
    );
  });

  it("refuses one longer than Zoho's 255 characters", () => {
    expect(() => notifyUrl(`https://${"a".repeat(250)}.example.com`, "1")).toThrow(/255/);
  });
});

describe("idsQuery", () => {
  const source = ZohoCrmSourceSchema.parse({
    type: "zoho_crm",
    module: "Contacts",
    rules: [
      { field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] },
      { activity_field: "Last_Activity_Time", active_within_days: 180, inactive_after_days: 365 },
    ],
    match: ["books_id_field:Books_Contact_Id", "zcrm_link", "email"],
  });

  it("selects what the rules and the matching read, by id, quoted", () => {
    expect(idsQuery(source, ["1", "2"])).toBe(
      "select id, Account_Type, Last_Activity_Time, Books_Contact_Id, Email, Modified_Time from Contacts where id in ('1', '2') limit 50",
    );
  });

  it("takes 1 to 50 ids, as COQL's in does", () => {
    const ids = Array.from({ length: 51 }, (_, i) => String(i + 1));
    expect(() => idsQuery(source, ids.slice(0, 50))).not.toThrow();
    expect(() => idsQuery(source, ids)).toThrow(RangeError);
    expect(() => idsQuery(source, [])).toThrow(RangeError);
  });
});

describe("NotificationSchema", () => {
  const body = {
    server_time: 1765100000000,
    query_params: {},
    module: "Accounts",
    resource_uri: "https://www.zohoapis.com/crm/v8/Accounts",
    ids: ["4150868000000000001"],
    affected_fields: [{ "4150868000000000001": ["Account_Type"] }],
    operation: "insert",
    channel_id: "12345678901234",
    token: "t",
  };

  it("takes Zoho's body (insert for create, update, delete)", () => {
    for (const operation of ["insert", "update", "delete"])
      expect(NotificationSchema.safeParse({ ...body, operation }).success).toBe(true);
  });

  it("refuses another operation, no ids, ids that are not record ids", () => {
    for (const bad of [
      { ...body, operation: "create" },
      { ...body, ids: [] },
      { ...body, ids: ["1 or 1=1"] },
      { ...body, ids: [1.5] },
      { ...body, module: undefined },
    ])
      expect(NotificationSchema.safeParse(bad).success).toBe(false);
  });
});
