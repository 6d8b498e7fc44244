import * as z from "zod/mini";
import { ServiceError } from "../errors";

/**
 * The rules of a CRM source (`source.rules`, `source.match` of the sync input) and what a rule
 * decides for one CRM record. Pure: no I/O, the clock is a parameter.
 */

/**
 * A CRM field's API name (Zoho CRM) or a property's internal name (HubSpot): a letter, then
 * letters, digits and underscores. The COQL and HubSpot builders put these names into queries
 * unquoted, so this pattern is also what keeps anything else out of a query.
 *
 * @example
 * FIELD_API_NAME.test("Last_Activity_Time"); // true
 * FIELD_API_NAME.test("Name') or ('");       // false
 */
export const FIELD_API_NAME = /^[A-Za-z][A-Za-z0-9_]{0,99}$/;

/** A day count is at most about a century: beyond it the thresholds mean nothing. */
const MAX_DAYS = 36_500;

/**
 * One field's API name as a schema; `key` names the key in the message.
 *
 * @example
 * fieldNameSchema("field").parse("Account_Type"); // "Account_Type"
 */
export function fieldNameSchema(key: string) {
  return z
    .string({ error: `${key} must be a string` })
    .check(
      z.regex(
        FIELD_API_NAME,
        `${key} must be a field API name (a letter, then letters, digits or underscores)`,
      ),
    );
}

const valueList = (key: "active" | "inactive") =>
  z._default(
    z
      .array(
        z
          .string({ error: `${key} values must be strings` })
          .check(z.minLength(1, `${key} values must not be empty`)),
        { error: `${key} must be a list of values` },
      )
      .check(z.minLength(1, `${key} must not be an empty list (leave it out instead)`)),
    [],
  );

const days = (key: "active_within_days" | "inactive_after_days") =>
  z.number({ error: `${key} must be a number of days` }).check(
    // not z.int(): its failure reads as a wrong type, and the rules union would hide it
    z.refine(Number.isInteger, `${key} must be a whole number of days`),
    z.positive(`${key} must be positive`),
    z.lte(MAX_DAYS, `${key} must be at most ${MAX_DAYS}`),
  );

/** `unrecognized_keys` would otherwise say only "Invalid input". */
const objectError = (what: string) => ({
  error: (issue: { code?: string; keys?: string[] }) =>
    issue.code === "unrecognized_keys"
      ? `${what} has unknown key(s): ${(issue.keys ?? []).join(", ")}`
      : `${what} must be an object`,
});

/**
 * A picklist rule: the field's values that mean active, and those that mean inactive.
 *
 * @example
 * FieldRuleSchema.parse({ field: "Account_Type", inactive: ["Former Customer"] });
 * // {field: "Account_Type", active: [], inactive: ["Former Customer"]}
 */
export const FieldRuleSchema = z
  .strictObject(
    {
      field: fieldNameSchema("field"),
      active: valueList("active"),
      inactive: valueList("inactive"),
    },
    objectError("a field rule"),
  )
  .check(
    z.refine((rule) => rule.active.length + rule.inactive.length > 0, {
      error: "a field rule needs active or inactive values",
    }),
    z.refine((rule) => !rule.active.some((value) => rule.inactive.includes(value)), {
      error: (issue) => {
        const rule = issue.input as { active: string[]; inactive: string[] };
        const both = rule.active.filter((value) => rule.inactive.includes(value));
        return `${both.map((value) => JSON.stringify(value)).join(", ")} is both in active and in inactive`;
      },
    }),
  );

/**
 * An engagement rule: active when the last activity is at most `active_within_days` old,
 * inactive when it is more than `inactive_after_days` old; in between the rule has no opinion,
 * so a record near one threshold does not flap.
 *
 * @example
 * EngagementRuleSchema.parse({
 *   activity_field: "Last_Activity_Time", active_within_days: 180, inactive_after_days: 365,
 * });
 */
export const EngagementRuleSchema = z
  .strictObject(
    {
      activity_field: fieldNameSchema("activity_field"),
      active_within_days: days("active_within_days"),
      inactive_after_days: days("inactive_after_days"),
    },
    objectError("an engagement rule"),
  )
  .check(
    z.refine((rule) => rule.active_within_days < rule.inactive_after_days, {
      error:
        "active_within_days must be less than inactive_after_days (the days between are the band where nothing changes)",
    }),
  );

export type FieldRule = z.infer<typeof FieldRuleSchema>;
export type EngagementRule = z.infer<typeof EngagementRuleSchema>;
export type Rule = FieldRule | EngagementRule;

/**
 * `source.rules`: evaluated in order, at least one.
 *
 * @example
 * RulesSchema.parse([
 *   { field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] },
 *   { activity_field: "Last_Activity_Time", active_within_days: 180, inactive_after_days: 365 },
 * ]);
 */
export const RulesSchema = z
  .array(
    z.union([FieldRuleSchema, EngagementRuleSchema], {
      error:
        "each rule is {field, active, inactive} or {activity_field, active_within_days, inactive_after_days}",
    }),
    { error: "rules must be a list" },
  )
  .check(z.minLength(1, "rules must not be empty"));

/** How a CRM record finds its Books contact (one `source.match` entry, parsed). */
export type MatchStrategy =
  /** a CRM field / HubSpot property that holds the Books `contact_id` */
  | { kind: "books_id_field"; field: string }
  /** the Zoho CRM integration's link: the record's id is the contact's `zcrm_account_id` / `zcrm_contact_id` */
  | { kind: "zcrm_link" }
  /** the record's email is the email of one of the contact's persons */
  | { kind: "email" };

const MATCH_ERROR = 'match entries are "books_id_field:<Field>", "zcrm_link" or "email"';

/** `"books_id_field:Books_Contact_Id"` → `{kind: "books_id_field", field: "Books_Contact_Id"}` */
function parseMatchEntry(entry: string): MatchStrategy | undefined {
  if (entry === "zcrm_link" || entry === "email") return { kind: entry };
  const field = /^books_id_field:(.*)$/.exec(entry)?.[1];
  return field !== undefined && FIELD_API_NAME.test(field)
    ? { kind: "books_id_field", field }
    : undefined;
}

/**
 * `source.match`: the strategies in the order they are tried, each at most once.
 *
 * @example
 * MatchSchema.parse(["books_id_field:Books_Contact_Id", "zcrm_link", "email"]);
 * // [{kind: "books_id_field", field: "Books_Contact_Id"}, {kind: "zcrm_link"}, {kind: "email"}]
 */
export const MatchSchema = z.pipe(
  z
    .array(
      z.string({ error: MATCH_ERROR }).check(
        z.refine((entry) => parseMatchEntry(entry) !== undefined, {
          error: (issue) => `${JSON.stringify(issue.input)}: ${MATCH_ERROR}`,
        }),
      ),
      { error: "match must be a list" },
    )
    .check(
      z.minLength(1, "match must not be empty"),
      z.refine((entries) => new Set(entries).size === entries.length, {
        error: "match names a strategy twice",
      }),
    ),
  z.transform((entries) => entries.map((entry) => parseMatchEntry(entry) as MatchStrategy)),
);

/**
 * The fields a match strategy reads from a CRM record (the builders select them).
 *
 * @example
 * matchFields([{ kind: "books_id_field", field: "Books_Contact_Id" }, { kind: "email" }]);
 * // ["Books_Contact_Id"]
 */
export function matchFields(match: ReadonlyArray<MatchStrategy>): string[] {
  return match.flatMap((strategy) => (strategy.kind === "books_id_field" ? [strategy.field] : []));
}

/**
 * The fields the rules read from a CRM record (the builders select them).
 *
 * @example
 * ruleFields([{ activity_field: "Last_Activity_Time", active_within_days: 1, inactive_after_days: 2 }]);
 * // ["Last_Activity_Time"]
 */
export function ruleFields(rules: ReadonlyArray<Rule>): string[] {
  return rules.map((rule) => ("field" in rule ? rule.field : rule.activity_field));
}

/**
 * Validates `{rules, match}` with messages that carry where the fault is
 * (`rules[1]: active_within_days must be …`); throws `INVALID_REQUEST`.
 *
 * @example
 * const { rules, match } = parseCrmRules({ rules: [...], match: ["email"] });
 */
export function parseCrmRules(value: { rules: unknown; match: unknown }): {
  rules: Rule[];
  match: MatchStrategy[];
} {
  const parsed = z.object({ rules: RulesSchema, match: MatchSchema }).safeParse(value);
  if (parsed.success) return parsed.data;
  throw new ServiceError("INVALID_REQUEST", `CRM source: ${describeWithPath(parsed.error.issues)}`);
}

/**
 * Issues as one sentence, each with its place.
 *
 * @example
 * describeWithPath([{ path: ["rules", 1, "active"], message: "active must not be an empty list" }]);
 * // "rules[1].active: active must not be an empty list."
 */
export function describeWithPath(
  issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>,
): string {
  const place = (path: PropertyKey[]) =>
    path.map((key, i) => (typeof key === "number" ? `[${key}]` : `${i ? "." : ""}${String(key)}`));
  return `${issues.map((issue) => (issue.path.length ? `${place(issue.path).join("")}: ${issue.message}` : issue.message)).join("; ")}.`;
}

/** What a rule decided for one record, with the words to explain it. */
export interface RuleDecision {
  status: "active" | "inactive";
  /** the rule's place in `rules` (0 for the first) */
  rule_index: number;
  /** for people: "Account_Type is Former Customer", "no activity for 365 days (last 2025-10-01)" */
  rule: string;
  /** the field the rule read */
  field: string;
  /** the value that decided (the picklist value, or the last activity as the CRM gave it) */
  value: string;
}

/**
 * How a record gives a multi-select's values: Zoho CRM as a JSON array (`"array"`), HubSpot's
 * multiple checkboxes as one `;`-separated string (`"semicolon"`). Arrays are read in both.
 */
export type MultiValueFormat = "array" | "semicolon";

const DAY_MS = 86_400_000;

/**
 * The first rule with an opinion decides whether the record's Books contact should be active;
 * `undefined` when none has one (the contact is left alone). A missing, empty or unreadable
 * value gives no opinion, so absence never deactivates.
 *
 * - Field rule: picklist values compare exactly (case-sensitive); a multi-select has the
 *   opinion of the values it holds. A multi-select holding both an active and an inactive
 *   value contradicts itself: no opinion, the next rule decides.
 * - Engagement rule: active when the last activity is at most `active_within_days` before
 *   `now` (a date in the future counts as now), inactive when it is more than
 *   `inactive_after_days` before; in between, no opinion.
 *
 * @example
 * evaluateRules(
 *   { id: "1", Account_Type: "Former Customer" },
 *   [{ field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] }],
 *   new Date(),
 * );
 * // {status: "inactive", rule_index: 0, rule: "Account_Type is Former Customer", field: "Account_Type", value: "Former Customer"}
 */
export function evaluateRules(
  record: Readonly<Record<string, unknown>>,
  rules: ReadonlyArray<Rule>,
  now: Date,
  options: { multiValue?: MultiValueFormat } = {},
): RuleDecision | undefined {
  for (const [index, rule] of rules.entries()) {
    const decision =
      "field" in rule
        ? fieldOpinion(record[rule.field], rule, options.multiValue ?? "array")
        : engagementOpinion(record[rule.activity_field], rule, now);
    if (decision) return { ...decision, rule_index: index };
  }
  return undefined;
}

function fieldOpinion(
  raw: unknown,
  rule: FieldRule,
  format: MultiValueFormat,
): Omit<RuleDecision, "rule_index"> | undefined {
  const values = picklistValues(raw, format);
  const active = values.find((value) => rule.active.includes(value));
  const inactive = values.find((value) => rule.inactive.includes(value));
  if ((active === undefined) === (inactive === undefined)) return undefined; // none, or a contradiction
  const value = (active ?? inactive) as string;
  const verb = values.length > 1 || Array.isArray(raw) ? "includes" : "is";
  return {
    status: active === undefined ? "inactive" : "active",
    rule: `${rule.field} ${verb} ${value}`,
    field: rule.field,
    value,
  };
}

function picklistValues(raw: unknown, format: MultiValueFormat): string[] {
  if (Array.isArray(raw)) return raw.filter((value): value is string => typeof value === "string");
  if (typeof raw !== "string" || raw === "") return [];
  return format === "semicolon" ? raw.split(";").filter((value) => value !== "") : [raw];
}

function engagementOpinion(
  raw: unknown,
  rule: EngagementRule,
  now: Date,
): Omit<RuleDecision, "rule_index"> | undefined {
  const last = parseActivityTime(raw);
  if (last === undefined) return undefined;
  const age = now.getTime() - last;
  const shown = new Date(last).toISOString().slice(0, 10);
  const decided = { field: rule.activity_field, value: String(raw) };
  if (age <= rule.active_within_days * DAY_MS)
    return {
      ...decided,
      status: "active",
      rule: `activity within ${rule.active_within_days} days (last ${shown})`,
    };
  if (age > rule.inactive_after_days * DAY_MS)
    return {
      ...decided,
      status: "inactive",
      rule: `no activity for ${rule.inactive_after_days} days (last ${shown})`,
    };
  return undefined;
}

/** ISO 8601 date or date-time (Zoho CRM, HubSpot), or epoch milliseconds (HubSpot). */
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * A last-activity value as epoch milliseconds, or `undefined` when it is missing or cannot be
 * read (no opinion). A date-time without an offset is read as UTC.
 *
 * @example
 * parseActivityTime("2025-10-01T09:00:00+02:00"); // 1759302000000
 * parseActivityTime("1579514400000");             // 1579514400000
 */
export function parseActivityTime(raw: unknown): number | undefined {
  let time: number;
  if (typeof raw === "number") time = raw;
  else if (typeof raw !== "string") return undefined;
  else if (/^\d{10,16}$/.test(raw)) time = Number(raw);
  else if (ISO_DATE.test(raw)) {
    const hasZone = /T.*(Z|[+-]\d{2}:\d{2})$/.test(raw);
    time = Date.parse(raw.includes("T") && !hasZone ? `${raw}Z` : raw);
  } else return undefined;
  return Number.isFinite(time) && !Number.isNaN(new Date(time).getTime()) ? time : undefined;
}
