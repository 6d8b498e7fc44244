import { ServiceError } from "../errors";
import { FIELD_API_NAME, type Rule, ruleFields } from "./rules";

/**
 * Builds the bodies of HubSpot's CRM search (`POST /crm/v3/objects/{companies|contacts}/search`)
 * that read only the records the rules can decide, page by `hs_object_id`, and keep within the
 * search's limits. Pure: the clock is a parameter.
 *
 * Sources: HubSpot, "Search the CRM" (developers.hubspot.com/docs/api/crm/search): filters in a
 * group are ANDed and groups ORed; one sort; `limit` at most 200; dates in filters as epoch
 * milliseconds; at most 10,000 results a query, so a full scan sorts by `hs_object_id` and
 * starts each page as a new query with `hs_object_id GT <last>`. Group limits: the changelog
 * "Breaking Change: Expanded Filtering Capabilities…" (2024-08-26) raised them to 5 groups,
 * 10 filters a group, 25 in all; the project's facts page keeps to 5 / 6 / 18, and so does
 * this builder (a query within the smaller limits is valid under both).
 */
export const HUBSPOT_SEARCH_LIMITS = {
  maxGroups: 5,
  maxFiltersPerGroup: 6,
  maxFilters: 18,
  /** results a page */
  maxLimit: 200,
} as const;

export type HubSpotObject = "companies" | "contacts";

export interface HubSpotFilter {
  propertyName: string;
  operator: "IN" | "GTE" | "LT" | "GT";
  value?: string;
  values?: string[];
}

/** The request body of one search page. */
export interface HubSpotSearchBody {
  /** left out when nothing filters: every record */
  filterGroups?: Array<{ filters: HubSpotFilter[] }>;
  sorts: [{ propertyName: "hs_object_id"; direction: "ASCENDING" }];
  properties: string[];
  limit: number;
}

/**
 * The property that holds when a record last changed: `lastmodifieddate` on contacts,
 * `hs_lastmodifieddate` on companies.
 *
 * @example
 * lastModifiedProperty("companies"); // "hs_lastmodifieddate"
 */
export function lastModifiedProperty(object: HubSpotObject): string {
  return object === "contacts" ? "lastmodifieddate" : "hs_lastmodifieddate";
}

/** What {@link buildHubSpotSearch} reads. */
export interface HubSpotSearchOptions {
  object: HubSpotObject;
  rules: ReadonlyArray<Rule>;
  /** more properties to read besides `hs_object_id`, the rules' and the last-modified one (match, email) */
  properties?: ReadonlyArray<string>;
  /** the run's clock: the engagement rules' thresholds are counted back from it */
  now: Date;
  /**
   * incremental run: only records modified at or after this time (an engagement rule's opinion
   * also changes with time alone: only a full run sees a record that aged past a threshold)
   */
  modifiedSince?: Date;
  /** paging: only records whose `hs_object_id` is greater, the last of the previous page */
  afterId?: string;
  /** results a page, 1 to 200 (default 200) */
  limit?: number;
  /**
   * multiple-checkbox properties: their rules are not put into the filters (whether `IN`
   * matches a record holding one of several values is not documented); a search with such a
   * rule reads every record
   */
  multiSelectFields?: ReadonlyArray<string>;
}

/**
 * The body of one page: one filter group per opinion (a field rule's `IN`, an engagement
 * rule's recent side and old side), each with the incremental and paging filters repeated,
 * since filters AND only within a group. Throws `INVALID_REQUEST` past HubSpot's limits.
 *
 * @example
 * buildHubSpotSearch({
 *   object: "companies",
 *   rules: [{ activity_field: "notes_last_contacted", active_within_days: 180, inactive_after_days: 365 }],
 *   now: new Date("2026-12-07T00:00:00Z"),
 *   afterId: "1000",
 * }).filterGroups;
 * // [{filters: [{propertyName: "notes_last_contacted", operator: "GTE", value: "1781049600000"},
 * //             {propertyName: "hs_object_id", operator: "GT", value: "1000"}]},
 * //  {filters: [{propertyName: "notes_last_contacted", operator: "LT", value: "1765065600000"},
 * //             {propertyName: "hs_object_id", operator: "GT", value: "1000"}]}]
 */
export function buildHubSpotSearch(options: HubSpotSearchOptions): HubSpotSearchBody {
  const { object, rules, now } = options;
  if (object !== "companies" && object !== "contacts")
    throw invalid(`object must be "companies" or "contacts"`);
  const limit = options.limit ?? HUBSPOT_SEARCH_LIMITS.maxLimit;
  if (!Number.isInteger(limit) || limit < 1 || limit > HUBSPOT_SEARCH_LIMITS.maxLimit)
    throw invalid(`limit must be 1 to ${HUBSPOT_SEARCH_LIMITS.maxLimit}`);
  const modified = lastModifiedProperty(object);
  const properties = [
    ...new Set(["hs_object_id", ...ruleFields(rules), ...(options.properties ?? []), modified]),
  ];
  const bad = properties.find((name) => !FIELD_API_NAME.test(name));
  if (bad !== undefined) throw invalid(`${JSON.stringify(bad)} is not a property name`);

  const common: HubSpotFilter[] = [];
  if (options.modifiedSince)
    common.push({ propertyName: modified, operator: "GTE", value: epochMs(options.modifiedSince) });
  if (options.afterId !== undefined) {
    if (!/^\d{1,25}$/.test(options.afterId)) throw invalid("afterId must be a HubSpot record id");
    common.push({ propertyName: "hs_object_id", operator: "GT", value: options.afterId });
  }
  const opinions = opinionFilters(rules, now, new Set(options.multiSelectFields ?? []));
  const groups = (opinions ?? [[]])
    .map((filters) => ({ filters: [...filters, ...common] }))
    .filter((group) => group.filters.length > 0);

  assertSearchLimits(groups);
  return {
    ...(groups.length ? { filterGroups: groups } : {}),
    sorts: [{ propertyName: "hs_object_id", direction: "ASCENDING" }],
    properties,
    limit,
  };
}

/**
 * Throws `INVALID_REQUEST` when filter groups exceed the search's limits (groups, filters a
 * group, filters in all). The builder calls it; a fake of HubSpot's search can too.
 *
 * @example
 * assertSearchLimits([{ filters: [{ propertyName: "hs_object_id", operator: "GT", value: "1" }] }]);
 */
export function assertSearchLimits(
  groups: ReadonlyArray<{ filters: ReadonlyArray<unknown> }>,
): void {
  const { maxGroups, maxFiltersPerGroup, maxFilters } = HUBSPOT_SEARCH_LIMITS;
  if (groups.length > maxGroups)
    throw invalid(
      `the rules need ${groups.length} filter groups and HubSpot's search allows ${maxGroups}: use fewer rules (a field rule takes one group, an engagement rule two)`,
    );
  const widest = Math.max(0, ...groups.map((group) => group.filters.length));
  if (widest > maxFiltersPerGroup)
    throw invalid(
      `a filter group would hold ${widest} filters and HubSpot's search allows ${maxFiltersPerGroup}`,
    );
  const total = groups.reduce((sum, group) => sum + group.filters.length, 0);
  if (total > maxFilters)
    throw invalid(
      `the search would hold ${total} filters and HubSpot's search allows ${maxFilters} (the incremental and paging filters repeat in every group)`,
    );
}

/** One list of filters per opinion (groups are ORed), or `undefined` when some rule cannot be a filter. */
function opinionFilters(
  rules: ReadonlyArray<Rule>,
  now: Date,
  multiSelect: ReadonlySet<string>,
): HubSpotFilter[][] | undefined {
  const groups: HubSpotFilter[][] = [];
  for (const rule of rules) {
    if ("field" in rule) {
      if (multiSelect.has(rule.field)) return undefined;
      // HubSpot is said to compare IN on string properties in lower case; listing the value as
      // written and in lower case finds it either way (the rules still compare exactly).
      const values = [...rule.active, ...rule.inactive].flatMap((value) => [
        value,
        value.toLowerCase(),
      ]);
      groups.push([{ propertyName: rule.field, operator: "IN", values: [...new Set(values)] }]);
    } else {
      const field = rule.activity_field;
      groups.push([
        {
          propertyName: field,
          operator: "GTE",
          value: epochMs(daysBefore(now, rule.active_within_days)),
        },
      ]);
      groups.push([
        {
          propertyName: field,
          operator: "LT",
          value: epochMs(daysBefore(now, rule.inactive_after_days)),
        },
      ]);
    }
  }
  return groups.length ? groups : undefined;
}

const daysBefore = (now: Date, days: number) => new Date(now.getTime() - days * 86_400_000);

/**
 * A date as HubSpot's filters take it: epoch milliseconds, as a string.
 *
 * @example
 * epochMs(new Date("2020-01-20T10:00:00Z")); // "1579514400000"
 */
export function epochMs(date: Date): string {
  if (Number.isNaN(date.getTime())) throw invalid("a date filter must be a valid date");
  return String(date.getTime());
}

const invalid = (message: string) =>
  new ServiceError("INVALID_REQUEST", `HubSpot search: ${message}.`);
