import { describe, expect, it } from "vitest";
import { missingCrmScopes } from "../../lib/crm/zoho-crm-client";

describe("missingCrmScopes", () => {
  const books = "ZohoBooks.contacts.CREATE ZohoBooks.contacts.UPDATE ZohoBooks.contacts.READ";

  it("names both scopes a COQL read of the module needs when a Books-only grant has neither", () => {
    expect(missingCrmScopes(books, "Accounts")).toEqual([
      "ZohoCRM.coql.READ",
      "ZohoCRM.modules.Accounts.READ",
    ]);
  });

  it("names the module's read scope only for the module asked for", () => {
    const grant = `${books} ZohoCRM.coql.READ ZohoCRM.modules.contacts.READ`;
    expect(missingCrmScopes(grant, "Contacts")).toEqual([]);
    expect(missingCrmScopes(grant, "Accounts")).toEqual(["ZohoCRM.modules.Accounts.READ"]);
  });

  it.each([
    "ZohoCRM.coql.ALL,ZohoCRM.modules.ALL",
    "zohocrm.coql.read zohocrm.modules.accounts.read",
    "ZohoCRM.coql.READ ZohoCRM.modules.Accounts.ALL",
  ])("accepts %s (ALL covers READ; case and separators do not matter)", (grant) => {
    expect(missingCrmScopes(grant, "Accounts")).toEqual([]);
  });

  it("does not take another module's scope, or a write scope, for the read", () => {
    expect(
      missingCrmScopes(
        "ZohoCRM.coql.READ ZohoCRM.modules.Contacts.ALL ZohoCRM.modules.Accounts.CREATE",
        "Accounts",
      ),
    ).toEqual(["ZohoCRM.modules.Accounts.READ"]);
  });
});
