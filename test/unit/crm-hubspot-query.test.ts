import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  assertSearchLimits,
  buildHubSpotSearch,
  epochMs,
  type HubSpotSearchOptions,
  lastModifiedProperty,
} from "../../lib/crm/hubspot-query";
import type { EngagementRule, FieldRule, Rule } from "../../lib/crm/rules";
import { ServiceError } from "../../lib/errors";

const NOW = new Date("2026-12-07T00:00:00Z");
const lifecycle: FieldRule = {
  field: "lifecyclestage",
  active: ["customer"],
  inactive: ["Former_Customer"],
};
const engagement: EngagementRule = {
  activity_field: "notes_last_contacted",
  active_within_days: 180,
  inactive_after_days: 365,
};
const search = (options: Partial<HubSpotSearchOptions>) =>
  buildHubSpotSearch({ object: "companies", rules: [], now: NOW, ...options });

function refusal(options: Partial<HubSpotSearchOptions>): string {
  try {
    search(options);
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceError);
    expect((error as ServiceError).code).toBe("INVALID_REQUEST");
    return (error as Error).message;
  }
  throw new Error("the search was built");
}

describe("buildHubSpotSearch", () => {
  it("sorts by hs_object_id, asks 200 a page, and reads the properties it needs once", () => {
    const body = search({
      object: "contacts",
      rules: [lifecycle, engagement],
      properties: ["zoho_books_contact_id", "email", "lifecyclestage"],
    });
    expect(body.sorts).toEqual([{ propertyName: "hs_object_id", direction: "ASCENDING" }]);
    expect(body.limit).toBe(200);
    expect(body.properties).toEqual([
      "hs_object_id",
      "lifecyclestage",
      "notes_last_contacted",
      "zoho_books_contact_id",
      "email",
      "lastmodifieddate",
    ]);
  });

  it("names the last-modified property per object", () => {
    expect(lastModifiedProperty("contacts")).toBe("lastmodifieddate");
    expect(lastModifiedProperty("companies")).toBe("hs_lastmodifieddate");
  });

  it("has one group per opinion: IN for a field rule, two date sides for an engagement rule", () => {
    expect(search({ rules: [lifecycle, engagement] }).filterGroups).toEqual([
      {
        filters: [
          {
            propertyName: "lifecyclestage",
            operator: "IN",
            values: ["customer", "Former_Customer", "former_customer"],
          },
        ],
      },
      {
        filters: [
          { propertyName: "notes_last_contacted", operator: "GTE", value: "1781049600000" },
        ],
      },
      {
        filters: [{ propertyName: "notes_last_contacted", operator: "LT", value: "1765065600000" }],
      },
    ]);
  });

  it("repeats the incremental and paging filters in every group", () => {
    const body = search({
      rules: [lifecycle, engagement],
      modifiedSince: new Date("2020-01-20T10:00:00Z"),
      afterId: "1234",
    });
    const common = [
      { propertyName: "hs_lastmodifieddate", operator: "GTE", value: "1579514400000" },
      { propertyName: "hs_object_id", operator: "GT", value: "1234" },
    ];
    expect(body.filterGroups).toHaveLength(3);
    for (const group of body.filterGroups ?? []) expect(group.filters.slice(1)).toEqual(common);
  });

  it("has one group of the incremental and paging filters when no rule can filter", () => {
    const body = search({
      object: "contacts",
      rules: [{ field: "tags", active: ["a"], inactive: [] }],
      multiSelectFields: ["tags"],
      afterId: "9",
    });
    expect(body.filterGroups).toEqual([
      { filters: [{ propertyName: "hs_object_id", operator: "GT", value: "9" }] },
    ]);
    expect(search({}).filterGroups).toBeUndefined();
  });

  it("refuses more than 5 groups", () => {
    expect(search({ rules: [engagement, engagement, lifecycle] }).filterGroups).toHaveLength(5);
    expect(refusal({ rules: [engagement, engagement, engagement] })).toMatch(
      /need 6 filter groups and HubSpot's search allows 5/,
    );
  });

  it("checks the per-group and total filter caps", () => {
    const filter = { propertyName: "hs_object_id", operator: "GT", value: "1" };
    const group = (n: number) => ({ filters: Array.from({ length: n }, () => filter) });
    expect(() => assertSearchLimits([group(6), group(6), group(6)])).not.toThrow();
    expect(() => assertSearchLimits([group(7)])).toThrow(
      /a filter group would hold 7 filters and HubSpot's search allows 6/,
    );
    expect(() => assertSearchLimits([group(6), group(6), group(6), group(1)])).toThrow(
      /the search would hold 19 filters and HubSpot's search allows 18/,
    );
    expect(() => assertSearchLimits(Array.from({ length: 6 }, () => group(1)))).toThrow(
      /6 filter groups/,
    );
  });

  it("counts every filter against the caps (property)", () => {
    const rule: fc.Arbitrary<Rule> = fc.oneof(
      fc.constant(lifecycle as Rule),
      fc.constant(engagement as Rule),
    );
    fc.assert(
      fc.property(
        fc.array(rule, { maxLength: 6 }),
        fc.boolean(),
        fc.boolean(),
        (rules, incremental, paged) => {
          const groups = rules.reduce((sum, r) => sum + ("field" in r ? 1 : 2), 0);
          const extra = (incremental ? 1 : 0) + (paged ? 1 : 0);
          const options = {
            rules,
            ...(incremental ? { modifiedSince: NOW } : {}),
            ...(paged ? { afterId: "5" } : {}),
          };
          if (groups > 5) {
            expect(refusal(options)).toMatch(/filter groups/);
            return;
          }
          const body = search(options);
          const built = body.filterGroups ?? [];
          expect(built).toHaveLength(groups || (extra ? 1 : 0));
          for (const group of built) expect(group.filters.length).toBeLessThanOrEqual(6);
          expect(built.flatMap((g) => g.filters).length).toBeLessThanOrEqual(18);
        },
      ),
    );
  });

  it("refuses a bad property name, paging id, object or limit", () => {
    expect(refusal({ properties: ["email; drop"] })).toMatch(/is not a property name/);
    expect(refusal({ afterId: "abc" })).toMatch(/afterId must be/);
    expect(refusal({ object: "deals" as "companies" })).toMatch(/object must be/);
    expect(refusal({ limit: 201 })).toMatch(/limit must be 1 to 200/);
  });

  it("writes dates as epoch milliseconds in a string", () => {
    expect(epochMs(new Date("2020-01-20T10:00:00Z"))).toBe("1579514400000");
    expect(() => epochMs(new Date(Number.NaN))).toThrow(ServiceError);
  });
});
