import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildCoqlQuery,
  COQL_LIMITS,
  type CoqlQueryOptions,
  coqlDateTime,
  coqlString,
} from "../../lib/crm/coql";
import type { EngagementRule, FieldRule, Rule } from "../../lib/crm/rules";
import { ServiceError } from "../../lib/errors";

const NOW = new Date("2026-12-07T00:00:00Z");
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
const query = (options: Partial<CoqlQueryOptions>) =>
  buildCoqlQuery({ module: "Accounts", rules: [], now: NOW, ...options });
const whereOf = (select: string) => /where (.*) order by/.exec(select)?.[1] ?? "";

function refusal(options: Partial<CoqlQueryOptions>): string {
  try {
    query(options);
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceError);
    expect((error as ServiceError).code).toBe("INVALID_REQUEST");
    return (error as Error).message;
  }
  throw new Error("the query was built");
}

/**
 * COQL's bracketing rule, checked on the text: within each pair of brackets (and at the top)
 * at most one `and`/`or`. String literals and `in (…)` lists are blanked out first.
 */
function bracketsEachPair(where: string): boolean {
  const text = where.replace(/'(?:[^']|'')*'/g, "S").replace(/ in \([^()]*\)/g, " in L");
  const operators: number[] = [0];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "(") operators.push(0);
    else if (text[i] === ")") {
      if ((operators.pop() ?? 2) > 1 || operators.length === 0) return false;
    } else if (/^ (and|or) /.test(text.slice(i))) operators.push((operators.pop() ?? 0) + 1);
  }
  return operators.length === 1 && (operators[0] ?? 2) <= 1;
}

/** the criteria in the text: comparisons (`in`, `>=`, `<`, `>`, `is not null`) */
const criteriaIn = (where: string) =>
  where.replace(/'(?:[^']|'')*'/g, "S").match(/ in \(| >= | < | > | is not null/g)?.length ?? 0;

describe("buildCoqlQuery", () => {
  it("selects id, the rules' fields, the extra fields and Modified_Time, once each", () => {
    const { select_query } = query({
      rules: [accountType, engagement],
      fields: ["Books_Contact_Id", "Account_Type", "id"],
    });
    expect(select_query).toMatch(
      /^select id, Account_Type, Last_Activity_Time, Books_Contact_Id, Modified_Time from Accounts where /,
    );
    expect(select_query).toMatch(/ order by id asc limit 2000$/);
  });

  it("always has a WHERE: id is not null when nothing filters", () => {
    expect(query({ module: "Contacts" }).select_query).toBe(
      "select id, Modified_Time from Contacts where id is not null order by id asc limit 2000",
    );
  });

  it("reads only the records some rule has an opinion on", () => {
    expect(whereOf(query({ rules: [accountType, engagement] }).select_query)).toBe(
      "(Account_Type in ('Customer', 'Former Customer') or (Last_Activity_Time >= '2026-06-10T00:00:00+00:00' or Last_Activity_Time < '2025-12-07T00:00:00+00:00'))",
    );
  });

  it("combines the rules, an incremental run and paging, every pair bracketed", () => {
    const built = query({
      rules: [accountType, engagement],
      modifiedSince: new Date("2026-12-06T23:00:00.123Z"),
      afterId: "554023000000310003",
    });
    expect(whereOf(built.select_query)).toBe(
      "(((Account_Type in ('Customer', 'Former Customer') or (Last_Activity_Time >= '2026-06-10T00:00:00+00:00' or Last_Activity_Time < '2025-12-07T00:00:00+00:00')) and Modified_Time >= '2026-12-06T23:00:00+00:00') and id > '554023000000310003')",
    );
    expect(built.criteria).toBe(5);
    expect(bracketsEachPair(whereOf(built.select_query))).toBe(true);
  });

  it("splits a value list into `in` criteria of at most 50 values", () => {
    const values = Array.from({ length: 120 }, (_, i) => `V${i}`);
    const built = query({ rules: [{ field: "Stage", active: values, inactive: [] }] });
    const lists = [...built.select_query.matchAll(/Stage in \(([^)]*)\)/g)].map(
      (m) => (m[1] ?? "").split(", ").length,
    );
    expect(lists).toEqual([50, 50, 20]);
    expect(built.criteria).toBe(3);
  });

  it("escapes a quote in a value by doubling it", () => {
    const built = query({
      rules: [{ field: "Account_Type", active: ["O'Brien's"], inactive: [] }],
    });
    expect(whereOf(built.select_query)).toBe("Account_Type in ('O''Brien''s')");
    expect(coqlString("'")).toBe("''''");
    expect(coqlString("a\\b")).toBe("'a\\b'");
  });

  it("writes date-times in ISO 8601 with an offset, to the second", () => {
    expect(coqlDateTime(new Date("2026-01-01T00:00:00.999Z"))).toBe("'2026-01-01T00:00:00+00:00'");
    expect(() => coqlDateTime(new Date("nope"))).toThrow(ServiceError);
  });

  it("allows 25 criteria and refuses the 26th, saying why", () => {
    const engagements = (n: number) => Array.from({ length: n }, () => engagement);
    expect(query({ rules: engagements(12), modifiedSince: NOW }).criteria).toBe(25);
    expect(refusal({ rules: engagements(12), modifiedSince: NOW, afterId: "1" })).toMatch(
      /the rules need 26 COQL criteria and COQL allows 25/,
    );
    expect(refusal({ rules: engagements(13) })).toMatch(/26 COQL criteria/);
  });

  it("refuses more than 50 fields", () => {
    const fields = Array.from({ length: 48 }, (_, i) => `F${i}`);
    expect(query({ fields }).select_query.split(", ").length).toBe(50);
    expect(refusal({ fields: [...fields, "F48"] })).toMatch(/51 fields; COQL allows 50/);
  });

  it("refuses what could break out of the query: a bad field name or paging id", () => {
    expect(refusal({ fields: ["Email from Leads where"] })).toMatch(/is not a field API name/);
    expect(refusal({ afterId: "1' or id is not null" })).toMatch(/afterId must be/);
    expect(refusal({ module: "Leads" as "Accounts" })).toMatch(/module must be/);
  });

  it("takes a LIMIT of 1 to 2,000", () => {
    expect(query({ limit: 200 }).select_query).toMatch(/limit 200$/);
    expect(refusal({ limit: 2001 })).toMatch(/limit must be 1 to 2000/);
    expect(refusal({ limit: 0 })).toMatch(/limit must be 1 to 2000/);
    expect(COQL_LIMITS.maxLimit).toBe(2000);
  });

  it("reads every record when a rule is on a multi-select field", () => {
    const built = query({
      rules: [accountType, { field: "Industries", active: ["Retail"], inactive: [] }],
      multiSelectFields: ["Industries"],
      afterId: "7",
    });
    expect(whereOf(built.select_query)).toBe("id > '7'");
  });

  it("brackets every pair and never exceeds 25 criteria, or refuses (property)", () => {
    const value = fc.string({ minLength: 1, maxLength: 6 });
    const rule: fc.Arbitrary<Rule> = fc.oneof(
      fc.record({
        field: fc.constantFrom("A", "B", "C"),
        active: fc.array(value, { maxLength: 70 }),
        inactive: fc.array(value, { maxLength: 70 }),
      }),
      fc.record({
        activity_field: fc.constantFrom("D", "E"),
        active_within_days: fc.integer({ min: 1, max: 99 }),
        inactive_after_days: fc.integer({ min: 100, max: 999 }),
      }),
    );
    fc.assert(
      fc.property(
        fc.array(rule, { maxLength: 12 }),
        fc.boolean(),
        fc.option(fc.stringMatching(/^[1-9]\d{0,18}$/), { nil: undefined }),
        (rules, incremental, afterId) => {
          const expected =
            rules.reduce(
              (sum, r) =>
                sum +
                ("field" in r ? Math.ceil(new Set([...r.active, ...r.inactive]).size / 50) : 2),
              0,
            ) +
            (incremental ? 1 : 0) +
            (afterId === undefined ? 0 : 1);
          const options = {
            rules,
            afterId,
            ...(incremental ? { modifiedSince: NOW } : {}),
          };
          if (expected > 25) {
            expect(refusal(options)).toMatch(`need ${expected} COQL criteria`);
            return;
          }
          const built = query(options);
          const where = whereOf(built.select_query);
          expect(built.criteria).toBe(Math.max(expected, 1));
          expect(criteriaIn(where)).toBe(built.criteria);
          expect(bracketsEachPair(where)).toBe(true);
        },
      ),
    );
  });

  it("checks brackets the way COQL asks (the checker itself)", () => {
    expect(bracketsEachPair("(A > 'x' and B > 'y')")).toBe(true);
    expect(bracketsEachPair("((A > 'x' and B > 'y') and C > 'z')")).toBe(true);
    expect(bracketsEachPair("(A > 'x' and B > 'y' and C > 'z')")).toBe(false);
    expect(bracketsEachPair("A > 'x' or B > 'y' or C > 'z'")).toBe(false);
    expect(bracketsEachPair("A in ('a and b', 'c or d')")).toBe(true);
  });
});
