import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type EngagementRule,
  evaluateRules,
  type FieldRule,
  MatchSchema,
  parseActivityTime,
  parseCrmRules,
  type Rule,
  RulesSchema,
} from "../../lib/crm/rules";
import { ServiceError } from "../../lib/errors";

const NOW = new Date("2026-12-07T12:00:00Z");
const DAY = 86_400_000;
const daysAgo = (days: number) => new Date(NOW.getTime() - days * DAY).toISOString();

const accountType: FieldRule = {
  field: "Account_Type",
  active: ["Customer"],
  inactive: ["Former Customer"],
};
const engagement: EngagementRule = {
  activity_field: "Last_Activity_Time",
  active_within_days: 180,
  inactive_after_days: 365,
};

/** the error `parseCrmRules` throws, as text */
function refusal(rules: unknown, match: unknown = ["email"]): string {
  try {
    parseCrmRules({ rules, match });
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceError);
    expect((error as ServiceError).code).toBe("INVALID_REQUEST");
    return (error as Error).message;
  }
  throw new Error("the rules were accepted");
}

describe("the rules schema", () => {
  it("accepts the contract's example and fills the missing value list", () => {
    const { rules, match } = parseCrmRules({
      rules: [{ field: "Account_Type", inactive: ["Former Customer"] }, engagement],
      match: ["books_id_field:Books_Contact_Id", "zcrm_link", "email"],
    });
    expect(rules).toEqual([
      { field: "Account_Type", active: [], inactive: ["Former Customer"] },
      engagement,
    ]);
    expect(match).toEqual([
      { kind: "books_id_field", field: "Books_Contact_Id" },
      { kind: "zcrm_link" },
      { kind: "email" },
    ]);
  });

  it.each([
    [[], /rules must not be empty/],
    ["x", /rules must be a list/],
    [[{ ...accountType, colour: "red" }], /rules\[0\]: a field rule has unknown key\(s\): colour/],
    [[{ ...engagement, since: 1 }], /rules\[0\]: an engagement rule has unknown key\(s\): since/],
    [
      [{ field: "Account_Type", active: [] }],
      /rules\[0\]\.active: active must not be an empty list/,
    ],
    [[{ field: "Account_Type" }], /rules\[0\]: a field rule needs active or inactive values/],
    [
      [{ field: "Account_Type", active: [""] }],
      /rules\[0\]\.active\[0\]: active values must not be empty/,
    ],
    [
      [accountType, { field: "Stage", active: ["Won", "Lost"], inactive: ["Lost"] }],
      /rules\[1\]: "Lost" is both in active and in inactive/,
    ],
    [
      [{ ...engagement, active_within_days: 365 }],
      /rules\[0\]: active_within_days must be less than inactive_after_days/,
    ],
    [[{ ...engagement, active_within_days: 0 }], /active_within_days must be positive/],
    [[{ ...engagement, inactive_after_days: -5 }], /inactive_after_days must be positive/],
    [[{ ...engagement, active_within_days: 1.5 }], /active_within_days must be a whole number/],
    [
      [{ ...accountType, field: "Account Type" }],
      /rules\[0\]\.field: field must be a field API name/,
    ],
    [[{ ...accountType, field: "x') or id is not null or ('" }], /field must be a field API name/],
    [[{ ...engagement, activity_field: "1st" }], /activity_field must be a field API name/],
    [
      [{ field: "A", active_within_days: 3 }],
      /a field rule has unknown key\(s\): active_within_days/,
    ],
    [[{}], /each rule is \{field, active, inactive\} or \{activity_field/],
  ])("refuses %j, naming the field", (rules, message) => {
    expect(refusal(rules)).toMatch(message);
  });

  it.each([
    [[], /match must not be empty/],
    [["email", "email"], /match names a strategy twice/],
    [["phone"], /"phone": match entries are/],
    [["books_id_field:"], /"books_id_field:": match entries are/],
    [["books_id_field:Books Id"], /match entries are/],
  ])("refuses the match list %j", (match, message) => {
    expect(refusal([accountType], match)).toMatch(message);
  });

  it("is usable alone inside another schema", () => {
    expect(RulesSchema.safeParse([engagement]).success).toBe(true);
    expect(MatchSchema.parse(["zcrm_link"])).toEqual([{ kind: "zcrm_link" }]);
  });
});

describe("evaluateRules", () => {
  it("lets the first rule with an opinion decide", () => {
    const rules: Rule[] = [accountType, engagement];
    // the field rule has no opinion on "Prospect": the engagement rule decides
    expect(
      evaluateRules({ Account_Type: "Prospect", Last_Activity_Time: daysAgo(400) }, rules, NOW),
    ).toMatchObject({ status: "inactive", rule_index: 1, field: "Last_Activity_Time" });
    // the field rule says active, though the activity is old
    expect(
      evaluateRules({ Account_Type: "Customer", Last_Activity_Time: daysAgo(400) }, rules, NOW),
    ).toEqual({
      status: "active",
      rule_index: 0,
      rule: "Account_Type is Customer",
      field: "Account_Type",
      value: "Customer",
    });
  });

  it("explains a decision in words", () => {
    expect(evaluateRules({ Account_Type: "Former Customer" }, [accountType], NOW)).toEqual({
      status: "inactive",
      rule_index: 0,
      rule: "Account_Type is Former Customer",
      field: "Account_Type",
      value: "Former Customer",
    });
    expect(
      evaluateRules({ Last_Activity_Time: "2025-10-01T09:00:00+02:00" }, [engagement], NOW),
    ).toEqual({
      status: "inactive",
      rule_index: 0,
      rule: "no activity for 365 days (last 2025-10-01)",
      field: "Last_Activity_Time",
      value: "2025-10-01T09:00:00+02:00",
    });
    expect(evaluateRules({ Last_Activity_Time: "2026-11-30" }, [engagement], NOW)?.rule).toBe(
      "activity within 180 days (last 2026-11-30)",
    );
  });

  it("compares picklist values case-sensitively", () => {
    expect(evaluateRules({ Account_Type: "customer" }, [accountType], NOW)).toBeUndefined();
    expect(evaluateRules({ Account_Type: "Customer " }, [accountType], NOW)).toBeUndefined();
  });

  it("reads a multi-select as an array, or as HubSpot's ;-separated string when told", () => {
    const industry: FieldRule = { field: "industry", active: ["Retail"], inactive: ["Closed"] };
    expect(evaluateRules({ industry: ["Food", "Closed"] }, [industry], NOW)).toMatchObject({
      status: "inactive",
      rule: "industry includes Closed",
      value: "Closed",
    });
    // a ;-string is one value unless the source says it is a multi-select
    expect(evaluateRules({ industry: "Food;Closed" }, [industry], NOW)).toBeUndefined();
    expect(
      evaluateRules({ industry: "Food;Closed" }, [industry], NOW, { multiValue: "semicolon" }),
    ).toMatchObject({ status: "inactive", value: "Closed", rule: "industry includes Closed" });
    expect(
      evaluateRules({ industry: "Retail" }, [industry], NOW, { multiValue: "semicolon" }),
    ).toMatchObject({ status: "active", rule: "industry is Retail" });
  });

  it("gives no opinion for a multi-select holding an active and an inactive value", () => {
    const rules: Rule[] = [
      { field: "tags", active: ["Customer"], inactive: ["Churned"] },
      { field: "Account_Type", active: ["Customer"], inactive: [] },
    ];
    expect(
      evaluateRules({ tags: ["Customer", "Churned"], Account_Type: "Customer" }, rules, NOW),
    ).toMatchObject({ status: "active", rule_index: 1 });
    expect(evaluateRules({ tags: ["Customer", "Churned"] }, rules, NOW)).toBeUndefined();
  });

  it("keeps a band between the thresholds where nothing changes (no flapping)", () => {
    const at = (days: number) =>
      evaluateRules({ Last_Activity_Time: daysAgo(days) }, [engagement], NOW)?.status;
    expect(at(0)).toBe("active");
    expect(at(180)).toBe("active"); // within 180 days, the last day included
    expect(at(180.001)).toBeUndefined();
    expect(at(270)).toBeUndefined();
    expect(at(365)).toBeUndefined(); // 365 days without activity is not yet "after" 365
    expect(at(365.001)).toBe("inactive");
    expect(at(-3)).toBe("active"); // a date in the future (clock skew) counts as recent
  });

  it("never turns a record the other way while it moves around one threshold", () => {
    // a record whose last activity drifts within a day of either threshold can only go
    // between one status and no opinion, never to the other status
    fc.assert(
      fc.property(
        fc.constantFrom(180, 365),
        fc.double({ min: -1, max: 1, noNaN: true }),
        (threshold, jitter) => {
          const status = evaluateRules(
            { Last_Activity_Time: daysAgo(threshold + jitter) },
            [engagement],
            NOW,
          )?.status;
          expect(status).not.toBe(threshold === 180 ? "inactive" : "active");
        },
      ),
    );
  });

  it.each([
    ["missing", {}],
    ["null", { Last_Activity_Time: null, Account_Type: null }],
    ["empty", { Last_Activity_Time: "", Account_Type: "" }],
    ["empty list", { Account_Type: [] }],
    ["unparseable", { Last_Activity_Time: "last Tuesday", Account_Type: 7 }],
    ["an impossible date", { Last_Activity_Time: "2025-13-45" }],
  ])("has no opinion on a %s value", (_what, record) => {
    expect(evaluateRules(record, [accountType, engagement], NOW)).toBeUndefined();
  });

  it("never deactivates for a record missing the rule's field (property)", () => {
    const rule: fc.Arbitrary<Rule> = fc.oneof(
      fc
        .record({
          field: fc.constantFrom("A", "B"),
          active: fc.array(fc.string({ minLength: 1 }), { maxLength: 3 }),
          inactive: fc.array(fc.string({ minLength: 1 }), { maxLength: 3 }),
        })
        .map((r) => r as Rule),
      fc
        .record({
          activity_field: fc.constantFrom("A", "B"),
          active_within_days: fc.integer({ min: 1, max: 100 }),
          inactive_after_days: fc.integer({ min: 101, max: 1000 }),
        })
        .map((r) => r as Rule),
    );
    const absent = fc.constantFrom(undefined, null, "", [], "not a date", {});
    fc.assert(
      fc.property(fc.array(rule, { minLength: 1, maxLength: 4 }), absent, absent, (rules, a, b) => {
        const record: Record<string, unknown> = { id: "1" };
        if (a !== undefined) record.A = a;
        if (b !== undefined) record.B = b;
        expect(evaluateRules(record, rules, NOW)?.status).not.toBe("inactive");
        expect(evaluateRules(record, rules, NOW, { multiValue: "semicolon" })?.status).not.toBe(
          "inactive",
        );
      }),
    );
  });
});

describe("parseActivityTime", () => {
  it.each([
    ["2025-10-01T09:00:00+02:00", Date.parse("2025-10-01T07:00:00Z")],
    ["2025-10-01T07:00:00.000Z", Date.parse("2025-10-01T07:00:00Z")],
    ["2025-10-01T07:00:00", Date.parse("2025-10-01T07:00:00Z")],
    ["2025-10-01", Date.parse("2025-10-01T00:00:00Z")],
    ["1579514400000", 1579514400000],
    [1579514400000, 1579514400000],
  ])("reads %j", (raw, expected) => {
    expect(parseActivityTime(raw)).toBe(expected);
  });

  it.each([undefined, null, "", "yesterday", "2025-10-01 07:00", "12", true, Number.NaN, 1e20])(
    "cannot read %j",
    (raw) => {
      expect(parseActivityTime(raw)).toBeUndefined();
    },
  );
});
