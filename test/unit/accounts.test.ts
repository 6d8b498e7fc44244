import { describe, expect, it } from "vitest";
import type { ZohoSecret } from "../../lib/credentials/secret";
import type { ServiceError } from "../../lib/errors";
import { grantAccessToken } from "../../lib/zoho/accounts";

const SECRET = {
  client_id: "1000.CLIENT",
  client_secret: "client-secret-value",
  refresh_token: "1000.refresh.token",
  data_center: "eu",
} as ZohoSecret;
const ACCESS_TOKEN = "1000.access.token";

/** A grant answered with these extra fields (a `scope`, or none). */
function grant(fields: Record<string, unknown>) {
  const fetch = async () =>
    new Response(
      JSON.stringify({
        access_token: ACCESS_TOKEN,
        api_domain: "https://www.zohoapis.eu",
        token_type: "Bearer",
        expires_in: 3600,
        ...fields,
      }),
      { status: 200, headers: { "content-type": "application/json" } },
    );
  return grantAccessToken(SECRET, {
    timeoutMs: 1000,
    now: () => 0,
    fetch: fetch as typeof globalThis.fetch,
  });
}

const refused = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a refusal");
    },
    (e: unknown) => e as ServiceError,
  );

const ALL_THREE = "ZohoBooks.contacts.CREATE ZohoBooks.contacts.UPDATE ZohoBooks.contacts.READ";

describe("the scopes of a grant", () => {
  it.each([
    ["all three, space-separated", ALL_THREE],
    ["all three, comma-separated", ALL_THREE.replaceAll(" ", ",")],
    ["comma and space, any case", "zohobooks.contacts.create, ZOHOBOOKS.CONTACTS.READ"],
    ["CREATE and READ (Zoho's reference)", "ZohoBooks.contacts.CREATE ZohoBooks.contacts.READ"],
    ["UPDATE and READ (the seed article)", "ZohoBooks.contacts.UPDATE,ZohoBooks.contacts.READ"],
    ["contacts.ALL", "ZohoBooks.contacts.ALL"],
    ["full access", "ZohoBooks.fullaccess.all"],
    ["more than needed", `ZohoBooks.invoices.READ ${ALL_THREE} ZohoCRM.modules.ALL`],
  ])("are enough with %s", async (_what, scope) => {
    expect((await grant({ scope })).accessToken).toBe(ACCESS_TOKEN);
  });

  it("are not checked when the answer has no scope", async () => {
    expect((await grant({})).accessToken).toBe(ACCESS_TOKEN);
  });

  it.each([
    [
      "READ only",
      "ZohoBooks.contacts.READ",
      ["ZohoBooks.contacts.CREATE", "ZohoBooks.contacts.UPDATE"],
    ],
    ["CREATE only", "ZohoBooks.contacts.CREATE", ["ZohoBooks.contacts.READ"]],
    [
      "no Books scope",
      "ZohoCRM.modules.ALL",
      ["ZohoBooks.contacts.CREATE", "ZohoBooks.contacts.UPDATE", "ZohoBooks.contacts.READ"],
    ],
    [
      "an empty scope",
      "",
      ["ZohoBooks.contacts.CREATE", "ZohoBooks.contacts.UPDATE", "ZohoBooks.contacts.READ"],
    ],
    [
      "a scope of another product's contacts",
      "ZohoInvoice.contacts.ALL",
      ["ZohoBooks.contacts.CREATE", "ZohoBooks.contacts.UPDATE", "ZohoBooks.contacts.READ"],
    ],
  ])("are refused with %s, naming the scopes to grant", async (_what, scope, missing) => {
    const error = await refused(grant({ scope }));
    expect(error).toMatchObject({
      code: "ZOHO_UNAUTHORIZED",
      details: { missing_scopes: missing },
    });
    for (const name of missing) expect(error.message).toContain(name);
    expect(error.message).toContain(
      "ZohoBooks.contacts.CREATE,ZohoBooks.contacts.UPDATE,ZohoBooks.contacts.READ",
    );
    for (const secret of [ACCESS_TOKEN, SECRET.client_secret, SECRET.refresh_token])
      expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain(
        secret,
      );
  });
});
