import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildBooksIndex,
  type CrmRecord,
  type MatchableContact,
  matchRecord,
} from "../../lib/crm/match";
import { MatchSchema, type MatchStrategy } from "../../lib/crm/rules";

const contacts: MatchableContact[] = [
  {
    contact_id: "460000000000001",
    email: "ap@zylker.com",
    zcrm_account_id: "554023000000238116",
    contact_persons: [{ email: "AP@zylker.com" }, { email: " billing@zylker.com " }],
  },
  {
    contact_id: "460000000000002",
    zcrm_contact_id: "554023000000310003",
    contact_persons: [{ email: "shared@acme.io" }],
  },
  { contact_id: "460000000000003", contact_persons: [{ email: "Shared@Acme.io" }, {}] },
  // two Books contacts linked to the same CRM account (a customer and a vendor, say)
  { contact_id: "460000000000004", zcrm_account_id: "554023000000999999" },
  { contact_id: "460000000000005", zcrm_account_id: "554023000000999999" },
];
const index = buildBooksIndex(contacts);
const all = MatchSchema.parse(["books_id_field:Books_Contact_Id", "zcrm_link", "email"]);
const accounts = { zcrmModule: "Accounts" as const, emailFields: ["Email"] };

describe("buildBooksIndex", () => {
  it("indexes every person's email, trimmed and lower-case, once per contact", () => {
    expect(index.byEmail.get("ap@zylker.com")).toEqual(["460000000000001"]);
    expect(index.byEmail.get("billing@zylker.com")).toEqual(["460000000000001"]);
    expect(index.byEmail.get("shared@acme.io")).toEqual(["460000000000002", "460000000000003"]);
    expect(index.byZcrmAccountId.get("554023000000238116")).toEqual(["460000000000001"]);
    expect(index.byZcrmContactId.get("554023000000310003")).toEqual(["460000000000002"]);
    expect(index.byId.size).toBe(5);
  });
});

describe("matchRecord", () => {
  it("matches by the Books id field first", () => {
    const record: CrmRecord = {
      id: "554023000000238116", // linked to ...001, but the id field decides first
      Books_Contact_Id: " 460000000000002 ",
    };
    expect(matchRecord(record, all, index, accounts)).toEqual({
      matched: "460000000000002",
      by: "books_id_field:Books_Contact_Id",
    });
  });

  it("falls through a strategy that finds nothing, saying what an operator could fix", () => {
    const record: CrmRecord = {
      id: "554023000000238116",
      Books_Contact_Id: "460000000099999",
    };
    expect(matchRecord(record, all, index, accounts)).toEqual({
      matched: "460000000000001",
      by: "zcrm_link",
    });
    expect(matchRecord({ id: "1", Books_Contact_Id: "INV-12" }, all, index, accounts)).toEqual({
      unmatched: true,
      notes: ["Books_Contact_Id does not hold a Books contact id (1 to 25 digits)"],
    });
    expect(
      matchRecord({ id: "1", Books_Contact_Id: "460000000099999" }, all, index, accounts),
    ).toEqual({
      unmatched: true,
      notes: ["Books_Contact_Id names Books contact 460000000099999, which does not exist"],
    });
  });

  it("takes a Books id held as a number only when it is exact", () => {
    const byNumber = matchRecord({ id: "1", Books_Contact_Id: 460000000000003 }, all, index);
    expect(byNumber).toEqual({ matched: "460000000000003", by: "books_id_field:Books_Contact_Id" });
    expect(matchRecord({ id: "1", Books_Contact_Id: 4.6e20 }, all, index)).toMatchObject({
      unmatched: true,
    });
  });

  it("links by the module's own zcrm id", () => {
    const contact: CrmRecord = { id: "554023000000310003" };
    expect(matchRecord(contact, all, index, { zcrmModule: "Contacts" })).toEqual({
      matched: "460000000000002",
      by: "zcrm_link",
    });
    // the same id as an account links to nothing; without a module (HubSpot) neither
    expect(matchRecord(contact, all, index, { zcrmModule: "Accounts" })).toMatchObject({
      unmatched: true,
    });
    expect(matchRecord({ id: "554023000000238116" }, all, index)).toMatchObject({
      unmatched: true,
    });
  });

  it("matches an email exactly after trim and lower-case, against every person", () => {
    const record: CrmRecord = { id: "1", Email: "  Billing@Zylker.com" };
    expect(matchRecord(record, all, index, accounts)).toEqual({
      matched: "460000000000001",
      by: "email",
    });
    expect(
      matchRecord({ id: "1", Email: "billing@zylker.co" }, all, index, accounts),
    ).toMatchObject({ unmatched: true });
    expect(matchRecord({ id: "1", email: "ap@zylker.com" }, all, index, accounts)).toMatchObject({
      unmatched: true, // `email` is not among the record's email fields
    });
  });

  it("is ambiguous when a strategy finds several contacts, and stops there", () => {
    const record: CrmRecord = { id: "554023000000999999", Email: "ap@zylker.com" };
    expect(matchRecord(record, all, index, accounts)).toEqual({
      ambiguous: ["460000000000004", "460000000000005"],
      by: "zcrm_link",
    });
    expect(matchRecord({ id: "1", Email: "shared@acme.io" }, all, index, accounts)).toEqual({
      ambiguous: ["460000000000002", "460000000000003"],
      by: "email",
    });
  });

  it("is ambiguous when the record's email fields name different contacts", () => {
    const record: CrmRecord = { id: "1", Email: "ap@zylker.com", Secondary: "shared@acme.io" };
    expect(
      matchRecord(record, [{ kind: "email" }], index, { emailFields: ["Email", "Secondary"] }),
    ).toEqual({
      ambiguous: ["460000000000001", "460000000000002", "460000000000003"],
      by: "email",
    });
  });

  it("tries the strategies in the configured order", () => {
    const record: CrmRecord = { id: "554023000000238116", Email: "shared@acme.io" };
    const emailFirst = MatchSchema.parse(["email", "zcrm_link"]);
    expect(matchRecord(record, emailFirst, index, accounts)).toMatchObject({ by: "email" });
    expect(matchRecord(record, [...emailFirst].reverse(), index, accounts)).toEqual({
      matched: "460000000000001",
      by: "zcrm_link",
    });
  });

  it("never matches a contact no strategy names (property)", () => {
    const strategy = fc.constantFrom<MatchStrategy>(
      { kind: "books_id_field", field: "B" },
      { kind: "zcrm_link" },
      { kind: "email" },
    );
    const id = fc.constantFrom("1", "2", "3", "4");
    const email = fc.constantFrom("a@x.io", "B@x.io", " b@x.io", "c@x.io");
    const contact = fc.record({
      contact_id: id,
      zcrm_account_id: fc.option(fc.constantFrom("91", "92"), { nil: undefined }),
      contact_persons: fc.array(fc.record({ email }), { maxLength: 2 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(contact, { selector: (c) => c.contact_id }),
        fc.uniqueArray(strategy, { selector: (s) => s.kind, minLength: 1 }),
        fc.record({ id: fc.constantFrom("91", "92", "93"), B: id, Email: email }),
        (books, strategies, record) => {
          const result = matchRecord(record, strategies, buildBooksIndex(books), {
            zcrmModule: "Accounts",
            emailFields: ["Email"],
          });
          const named = (c: (typeof books)[number]) =>
            strategies.some((s) =>
              s.kind === "books_id_field"
                ? c.contact_id === record.B
                : s.kind === "zcrm_link"
                  ? c.zcrm_account_id === record.id
                  : c.contact_persons.some(
                      (p) => p.email.trim().toLowerCase() === record.Email.trim().toLowerCase(),
                    ),
            );
          const candidates = books.filter(named).map((c) => c.contact_id);
          if ("matched" in result) expect(candidates).toContain(result.matched);
          else if ("ambiguous" in result)
            for (const id of result.ambiguous) expect(candidates).toContain(id);
          else expect(candidates).toEqual([]);
        },
      ),
    );
  });
});
