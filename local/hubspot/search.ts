import * as z from "zod/mini";
import {
  ALWAYS_RETURNED,
  DEFAULT_PROPERTIES,
  iso,
  type ObjectType,
  PROPERTIES,
  type PropertyDefinition,
  type SeedRecord,
} from "./seed";
import type { HubSpotSettings } from "./settings";

export const OPERATORS = [
  "EQ",
  "NEQ",
  "LT",
  "LTE",
  "GT",
  "GTE",
  "BETWEEN",
  "IN",
  "NOT_IN",
  "HAS_PROPERTY",
  "NOT_HAS_PROPERTY",
  "CONTAINS_TOKEN",
  "NOT_CONTAINS_TOKEN",
] as const;
export type Operator = (typeof OPERATORS)[number];

/** A 400 the server answers as HubSpot's VALIDATION_ERROR body. */
export interface Invalid {
  message: string;
  /** HubSpot's `errors` entries (an unknown property names itself here) */
  errors?: unknown[];
}

/** One filter, its values checked against the property's type. */
export interface Filter {
  propertyName: string;
  definition: PropertyDefinition;
  operator: Operator;
  /** EQ…GTE, BETWEEN's low end, CONTAINS_TOKEN: a string, or a number for numbers and datetimes */
  value?: string | number;
  highValue?: number | string;
  values?: (string | number)[];
}

export interface SearchRequest {
  type: ObjectType;
  /** groups OR'ed, filters in a group AND'ed; none: every record */
  groups: Filter[][];
  properties?: string[];
  sort?: { propertyName: string; definition: PropertyDefinition; descending: boolean };
  query?: string;
  limit: number;
  after: number;
}

const scalar = z.union([z.string(), z.number()]);
const FilterSchema = z.strictObject({
  propertyName: z.string(),
  operator: z.enum(OPERATORS),
  value: z.optional(z.union([z.string(), z.number(), z.boolean()])),
  highValue: z.optional(scalar),
  values: z.optional(z.array(scalar)),
});
const SortSchema = z.union([
  z.string(),
  z.strictObject({
    propertyName: z.string(),
    direction: z.optional(z.enum(["ASCENDING", "DESCENDING"])),
  }),
]);
/** The search body. Unknown fields are refused, as HubSpot's strict JSON binding does. */
const SearchBodySchema = z.strictObject({
  filterGroups: z.optional(z.array(z.strictObject({ filters: z.array(FilterSchema) }))),
  properties: z.optional(z.array(z.string())),
  sorts: z.optional(z.array(SortSchema)),
  query: z.optional(z.string()),
  limit: z.optional(z.int()),
  after: z.optional(scalar),
});

type Limits = Pick<
  HubSpotSettings,
  | "maxFilterGroups"
  | "maxFiltersPerGroup"
  | "maxFilters"
  | "maxPageSize"
  | "maxResults"
  | "maxQueryChars"
>;

/**
 * Checks a search body against HubSpot's rules and this portal's properties: the documented
 * limits (groups, filters, one sort, page size, 10,000 results, body length), known property
 * names, each operator's operands, and epoch-millisecond values for datetimes.
 */
export function parseSearch(
  type: ObjectType,
  text: string,
  limits: Limits,
): { request: SearchRequest } | { invalid: Invalid } {
  const refuse = (message: string, errors?: unknown[]) => ({
    invalid: errors ? { message, errors } : { message },
  });
  if (text.length > limits.maxQueryChars)
    return refuse(`The request body is longer than ${limits.maxQueryChars} characters.`);
  let json: unknown;
  try {
    json = JSON.parse(text || "{}");
  } catch {
    return refuse("Invalid input JSON: the body is not JSON.");
  }
  const parsed = SearchBodySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return refuse(`Invalid input JSON: ${issue?.path.join(".") || "body"}: ${issue?.message}`);
  }
  const body = parsed.data;
  const groups = body.filterGroups ?? [];
  const total = groups.reduce((n, g) => n + g.filters.length, 0);
  if (groups.length > limits.maxFilterGroups)
    return refuse(`Too many filter groups: at most ${limits.maxFilterGroups} are allowed.`);
  if (groups.some((g) => g.filters.length > limits.maxFiltersPerGroup))
    return refuse(`Too many filters in a group: at most ${limits.maxFiltersPerGroup} are allowed.`);
  if (total > limits.maxFilters)
    return refuse(`Too many filters: at most ${limits.maxFilters} are allowed in all.`);

  const filters: Filter[][] = [];
  for (const group of groups) {
    const checked: Filter[] = [];
    for (const filter of group.filters) {
      const result = checkFilter(type, filter);
      if ("invalid" in result) return result;
      checked.push(result.filter);
    }
    filters.push(checked);
  }

  const sorts = body.sorts ?? [];
  if (sorts.length > 1) return refuse("Only one sort is allowed.");
  let sort: SearchRequest["sort"];
  const first = sorts[0];
  if (first !== undefined) {
    const propertyName = typeof first === "string" ? first : first.propertyName;
    const definition = PROPERTIES[type][propertyName];
    if (!definition) return unknownProperty(propertyName);
    const descending = typeof first !== "string" && first.direction === "DESCENDING";
    sort = { propertyName, definition, descending };
  }

  const limit = body.limit ?? 10;
  if (limit < 1 || limit > limits.maxPageSize)
    return refuse(`limit must be between 1 and ${limits.maxPageSize}.`);
  const after = body.after === undefined ? 0 : Number(body.after);
  if (!(Number.isInteger(after) && after >= 0) || String(body.after ?? "0").trim() === "")
    return refuse("after must be a whole number, as paging.next.after gives it.");
  if (after + limit > limits.maxResults)
    return refuse(
      `Paging is limited to ${limits.maxResults} results of one query: after + limit must be at most ${limits.maxResults}.`,
    );

  const request: SearchRequest = { type, groups: filters, limit, after };
  if (body.properties) request.properties = body.properties;
  if (sort) request.sort = sort;
  if (body.query) request.query = body.query;
  return { request };
}

/** HubSpot's answer for a property the portal does not define (the documented VALIDATION_ERROR). */
function unknownProperty(name: string): { invalid: Invalid } {
  return {
    invalid: {
      message: `Property "${name}" does not exist`,
      errors: [
        {
          message: `Property "${name}" does not exist`,
          code: "PROPERTY_DOESNT_EXIST",
          context: { propertyName: [name] },
        },
      ],
    },
  };
}

function checkFilter(
  type: ObjectType,
  raw: z.infer<typeof FilterSchema>,
): { filter: Filter } | { invalid: Invalid } {
  const definition = PROPERTIES[type][raw.propertyName];
  if (!definition) return unknownProperty(raw.propertyName);
  const refuse = (message: string) => ({
    invalid: { message: `${raw.operator} on ${raw.propertyName}: ${message}` },
  });
  const filter: Filter = { propertyName: raw.propertyName, definition, operator: raw.operator };
  const operand = (v: unknown, what: string) => coerce(definition, v, what);

  switch (raw.operator) {
    case "HAS_PROPERTY":
    case "NOT_HAS_PROPERTY":
      return { filter };
    case "IN":
    case "NOT_IN": {
      if (!raw.values || raw.values.length === 0) return refuse("needs a non-empty `values` list");
      const values: (string | number)[] = [];
      for (const v of raw.values) {
        const c = operand(v, "each of `values`");
        if (typeof c === "object") return refuse(c.problem);
        values.push(c);
      }
      filter.values = values;
      return { filter };
    }
    case "BETWEEN": {
      const low = operand(raw.value, "`value`");
      const high = operand(raw.highValue, "`highValue`");
      if (typeof low === "object") return refuse(low.problem);
      if (typeof high === "object") return refuse(high.problem);
      Object.assign(filter, { value: low, highValue: high });
      return { filter };
    }
    default: {
      const value = operand(raw.value, "`value`");
      if (typeof value === "object") return refuse(value.problem);
      filter.value = value;
      return { filter };
    }
  }
}

/**
 * A filter operand as the property compares it: a number for numbers and datetimes (a datetime
 * is epoch milliseconds, as HubSpot's API takes it), a string otherwise.
 */
function coerce(
  definition: PropertyDefinition,
  value: unknown,
  what: string,
): string | number | { problem: string } {
  if (value === undefined || value === null) return { problem: `needs ${what}` };
  const text = String(value).trim();
  if (definition.type === "datetime") {
    if (!/^-?\d+$/.test(text))
      return { problem: `${what} must be epoch milliseconds, e.g. "1579514400000"` };
    return Number(text);
  }
  if (definition.type === "number") {
    const n = Number(text);
    if (text === "" || !Number.isFinite(n)) return { problem: `${what} must be a number` };
    return n;
  }
  return String(value);
}

/** A stored value in the property's terms: numbers and datetimes as numbers, the rest as strings. */
function typed(definition: PropertyDefinition, stored: string): string | number {
  if (definition.type === "datetime") return Date.parse(stored);
  if (definition.type === "number") return Number(stored);
  return stored;
}

/**
 * Whether a record meets a filter. Strings compare case-insensitively, except that IN and
 * NOT_IN take their values as given (HubSpot says they must be lowercase); enumerations
 * compare case-sensitively. A multiple-checkbox value is its `;`-separated options, and a filter
 * matches when any of them does. A record without a value meets only the negative operators.
 */
export function meets(properties: Record<string, string>, filter: Filter): boolean {
  const stored = properties[filter.propertyName];
  const has = stored !== undefined && stored !== "";
  const { definition } = filter;
  const parts = !has ? [] : definition.multiple ? stored.split(";") : [stored];
  const values = parts.map((p) => typed(definition, p));
  const text = definition.type === "string";
  const norm = (v: string | number) => (text && typeof v === "string" ? v.toLowerCase() : v);
  const any = (test: (v: string | number) => boolean) => values.some(test);
  const eq = (v: string | number) => norm(v) === norm(filter.value as string | number);
  const cmp = (v: string | number, w: string | number | undefined) => {
    const [a, b] = [norm(v), norm(w as string | number)];
    return a < b ? -1 : a > b ? 1 : 0;
  };
  // IN / NOT_IN: the stored value lowercased against the values as given (uppercase never matches).
  const inList = (v: string | number) =>
    (filter.values ?? []).some((w) => norm(v) === (text ? w : norm(w)));
  const token = (v: string | number) => containsToken(String(v), String(filter.value));

  switch (filter.operator) {
    case "EQ":
      return any(eq);
    case "NEQ":
      return !any(eq);
    case "LT":
      return any((v) => cmp(v, filter.value) < 0);
    case "LTE":
      return any((v) => cmp(v, filter.value) <= 0);
    case "GT":
      return any((v) => cmp(v, filter.value) > 0);
    case "GTE":
      return any((v) => cmp(v, filter.value) >= 0);
    case "BETWEEN":
      return any((v) => cmp(v, filter.value) >= 0 && cmp(v, filter.highValue) <= 0);
    case "IN":
      return any(inList);
    case "NOT_IN":
      return !any(inList);
    case "HAS_PROPERTY":
      return has;
    case "NOT_HAS_PROPERTY":
      return !has;
    case "CONTAINS_TOKEN":
      return any(token);
    case "NOT_CONTAINS_TOKEN":
      return !any(token);
  }
}

/**
 * CONTAINS_TOKEN: with a `*` wildcard, the pattern matches the whole value or one of its words
 * (`*@hubspot.com` finds every such address); without one, every word of the filter's value is
 * a word of the stored value. Case-insensitive.
 */
function containsToken(stored: string, pattern: string): boolean {
  const words = (s: string) =>
    s
      .toLowerCase()
      .split(/[^\p{L}\p{N}]+/u)
      .filter(Boolean);
  const storedWords = words(stored);
  if (pattern.includes("*")) {
    const source = pattern
      .toLowerCase()
      .split("*")
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*");
    const glob = new RegExp(`^${source}$`);
    return glob.test(stored.toLowerCase()) || storedWords.some((w) => glob.test(w));
  }
  const wanted = words(pattern);
  return wanted.length > 0 && wanted.every((w) => storedWords.includes(w));
}

/** The default searchable properties `query` looks in (HubSpot's lists, those this portal has). */
const QUERY_PROPERTIES: Record<ObjectType, readonly string[]> = {
  contacts: ["firstname", "lastname", "email"],
  companies: ["name", "domain"],
};

/**
 * Runs a checked search over the records search can see: the matches in order (the sort, else
 * creation, oldest first), the page, and the next page's `after` when more matches remain.
 */
export function runSearch(
  request: SearchRequest,
  records: SeedRecord[],
): { total: number; page: SeedRecord[]; nextAfter?: string } {
  const query = request.query?.toLowerCase();
  const matching = records.filter(
    (r) =>
      !r.archived &&
      (request.groups.length === 0 ||
        request.groups.some((group) => group.every((f) => meets(r.properties, f)))) &&
      (!query ||
        QUERY_PROPERTIES[request.type].some((p) => r.properties[p]?.toLowerCase().includes(query))),
  );
  const byCreation = (a: SeedRecord, b: SeedRecord) =>
    a.createdAt - b.createdAt || Number(a.id) - Number(b.id);
  const { sort } = request;
  matching.sort((a, b) => {
    if (!sort) return byCreation(a, b);
    const [x, y] = [a, b].map((r) => r.properties[sort.propertyName]);
    // Records without a value come last, whichever the direction.
    if (!x || !y) return (!x ? 1 : 0) - (!y ? 1 : 0) || byCreation(a, b);
    const [u, v] = [typed(sort.definition, x), typed(sort.definition, y)];
    const order = u < v ? -1 : u > v ? 1 : 0;
    return (sort.descending ? -order : order) || byCreation(a, b);
  });
  const end = request.after + request.limit;
  const page = matching.slice(request.after, end);
  return end < matching.length
    ? { total: matching.length, page, nextAfter: String(end) }
    : { total: matching.length, page };
}

/**
 * A record as HubSpot answers it: `properties` all strings, the requested ones (names the portal
 * lacks left out) plus those HubSpot always returns, or the type's defaults when none are
 * requested. A property without a value is null in a search answer and left out of a read
 * ("it will not appear in the response", HubSpot's objects guide).
 */
export function present(
  type: ObjectType,
  record: SeedRecord,
  requested: readonly string[] | undefined,
  empty: "null" | "omit",
) {
  const names = requested?.length
    ? [...new Set([...requested, ...ALWAYS_RETURNED[type]])]
    : DEFAULT_PROPERTIES[type];
  const properties: Record<string, string | null> = {};
  for (const name of [...names].sort()) {
    if (!PROPERTIES[type][name]) continue;
    const value = record.properties[name];
    if (value !== undefined && value !== "") properties[name] = value;
    else if (empty === "null") properties[name] = null;
  }
  return {
    id: record.id,
    properties,
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
    archived: record.archived,
  };
}
