import { describe, expect, it } from "vitest";
import { describeWithPath } from "../../lib/crm/rules";
import {
  emailFields,
  HubSpotSourceSchema,
  readFields,
  ZohoCrmSourceSchema,
} from "../../lib/crm/source";

const engagement = {
  activity_field: "Last_Activity_Time",
  active_within_days: 180,
  inactive_after_days: 365,
};
const contractExample = {
  type: "zoho_crm",
  module: "Accounts",
  rules: [
    { field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] },
    engagement,
  ],
  match: ["books_id_field:Books_Contact_Id", "zcrm_link", "email"],
};
const problems = (result: {
  success: boolean;
  error?: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> };
}) => (result.success ? "" : describeWithPath(result.error?.issues ?? []));

describe("CRM source schemas", () => {
  it("accept the contract's example", () => {
    const source = ZohoCrmSourceSchema.parse(contractExample);
    expect(source.match[0]).toEqual({ kind: "books_id_field", field: "Books_Contact_Id" });
    expect(readFields(source)).toEqual(["Books_Contact_Id"]); // Accounts have no email field
  });

  it("read the email field of contacts for the email strategy", () => {
    const zoho = ZohoCrmSourceSchema.parse({ ...contractExample, module: "Contacts" });
    expect(readFields(zoho)).toEqual(["Books_Contact_Id", "Email"]);
    const hubspot = HubSpotSourceSchema.parse({
      type: "hubspot",
      object: "contacts",
      rules: [
        { activity_field: "notes_last_contacted", active_within_days: 9, inactive_after_days: 99 },
      ],
      match: ["email"],
    });
    expect(emailFields(hubspot)).toEqual(["email"]);
    expect(readFields(hubspot)).toEqual(["email"]);
  });

  it("refuse a rule set that could not fit one COQL query, at parse time", () => {
    const result = ZohoCrmSourceSchema.safeParse({
      ...contractExample,
      rules: Array.from({ length: 12 }, () => engagement),
    });
    // 24 criteria, + Modified_Time and id paging on an incremental run
    expect(problems(result)).toMatch(/the rules need 26 COQL criteria and COQL allows 25/);
  });

  it("refuse zcrm_link and more than 5 filter groups for HubSpot", () => {
    const source = {
      type: "hubspot",
      object: "companies",
      rules: [{ field: "lifecyclestage", active: ["customer"] }],
      match: ["zcrm_link"],
    };
    expect(problems(HubSpotSourceSchema.safeParse(source))).toMatch(
      /zcrm_link matches Zoho CRM records only/,
    );
    expect(
      problems(
        HubSpotSourceSchema.safeParse({
          ...source,
          match: ["email"],
          rules: [engagement, engagement, engagement],
        }),
      ),
    ).toMatch(/need 6 filter groups/);
  });

  it("name the bad module, object or key", () => {
    expect(
      problems(ZohoCrmSourceSchema.safeParse({ ...contractExample, module: "Leads" })),
    ).toMatch(/module: source.module must be "Accounts" or "Contacts"/);
    expect(
      problems(ZohoCrmSourceSchema.safeParse({ ...contractExample, object: "contacts" })),
    ).toMatch(/a zoho_crm source is \{type, module, rules, match\}/);
    expect(
      problems(
        ZohoCrmSourceSchema.safeParse({
          ...contractExample,
          rules: [{ field: "A", active: [] }],
        }),
      ),
    ).toMatch(/rules\[0\]\.active: active must not be an empty list/);
  });
});
