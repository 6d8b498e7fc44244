import { ServiceError } from "../errors";
import { ZOHO_ID_PATTERN } from "../ids";
import { FIELD_API_NAME, type Rule, ruleFields } from "./rules";

/**
 * Builds Zoho CRM COQL queries (`POST /crm/v8/coql`, body `{"select_query": …}`) that read only
 * the records the rules can decide, page by id, and keep within COQL's documented limits.
 * Pure: the clock is a parameter.
 *
 * Sources (Zoho CRM API v8 docs):
 * - Query API – Limitations (zoho.com/crm/developer/docs/api/v8/COQL-Limitations.html): at most
 *   2,000 records a call (LIMIT), 50 fields in SELECT, 25 criteria in WHERE, 50 values in
 *   `in`; more than two criteria must be bracketed, "(A and (B and C)) or ((A and B) and C)".
 * - Query API – Overview: a WHERE clause is required (`where id is not null` selects all);
 *   without ORDER BY the rows come by id ascending; LIMIT defaults to 200 (credits: 1 up to
 *   200 rows, 2 up to 1,000, 3 up to 2,000).
 * - Get Records through a COQL Query: `order by <field> desc limit 2`; ids compared as quoted
 *   strings (`Owner = '554023000000235011'`); DateTime literals ISO 8601 with an offset
 *   (`Created_Time between '2023-05-28T04:25:36-07:00' and …`).
 * - Kaizen #171, FAQs on COQL API (help.zoho.com): a single quote inside a value is escaped by
 *   doubling it (`1'' 2`); reserved words used as field names must be quoted.
 */
export const COQL_LIMITS = {
  /** rows a call can return (v8; older versions and the v7 error text say 200) */
  maxLimit: 2000,
  /** field API names in SELECT */
  maxFields: 50,
  /** criteria (comparisons) in WHERE */
  maxCriteria: 25,
  /** values of one `in` */
  maxInValues: 50,
} as const;

/** What {@link buildCoqlQuery} reads. */
export interface CoqlQueryOptions {
  module: "Accounts" | "Contacts";
  rules: ReadonlyArray<Rule>;
  /** more fields to read besides `id`, the rules' fields and `Modified_Time` (the match fields, an email) */
  fields?: ReadonlyArray<string>;
  /** the run's clock: the engagement rules' thresholds are counted back from it */
  now: Date;
  /**
   * incremental run: only records modified at or after this time. An engagement rule's opinion
   * also changes with time alone (a record ages past a threshold unmodified): only a full run
   * (no `modifiedSince`) sees those.
   */
  modifiedSince?: Date;
  /** id paging: only records after this id, the last of the previous page */
  afterId?: string;
  /** rows a call, 1 to 2,000 (default 2,000) */
  limit?: number;
  /**
   * multi-select picklist fields: their rules are not put into WHERE, because COQL's docs
   * compare a multi-select with its whole `'a;b'` value and do not say that `in` matches a
   * record holding one of the values; a query with such a rule reads every record
   */
  multiSelectFields?: ReadonlyArray<string>;
}

/** A COQL query (the request body) and how many criteria it uses. */
export interface CoqlQuery {
  select_query: string;
  criteria: number;
}

/** A criterion (`Field in ('a')`) or criteria joined by one operator. */
type Criteria = string | { op: "and" | "or"; of: Criteria[] };

/**
 * The query of one page: the records some rule has an opinion on (the OR of every rule's
 * opinion), modified since `modifiedSince`, after `afterId`, by id ascending.
 * Throws `INVALID_REQUEST` when the rules need more than COQL allows (fields, criteria).
 *
 * @example
 * buildCoqlQuery({
 *   module: "Accounts",
 *   rules: [{ field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] }],
 *   fields: ["Books_Contact_Id"],
 *   now: new Date("2026-12-07T00:00:00Z"),
 *   afterId: "554023000000310003",
 * }).select_query;
 * // "select id, Account_Type, Books_Contact_Id, Modified_Time from Accounts
 * //  where (Account_Type in ('Customer', 'Former Customer') and id > '554023000000310003')
 * //  order by id asc limit 2000"   (one line)
 */
export function buildCoqlQuery(options: CoqlQueryOptions): CoqlQuery {
  const { module, rules, now } = options;
  if (module !== "Accounts" && module !== "Contacts")
    throw invalid(`module must be "Accounts" or "Contacts"`);
  const limit = options.limit ?? COQL_LIMITS.maxLimit;
  if (!Number.isInteger(limit) || limit < 1 || limit > COQL_LIMITS.maxLimit)
    throw invalid(`limit must be 1 to ${COQL_LIMITS.maxLimit} (COQL's LIMIT)`);

  const fields = [
    ...new Set(["id", ...ruleFields(rules), ...(options.fields ?? []), "Modified_Time"]),
  ];
  const bad = fields.find((field) => !FIELD_API_NAME.test(field));
  if (bad !== undefined) throw invalid(`${JSON.stringify(bad)} is not a field API name`);
  if (fields.length > COQL_LIMITS.maxFields)
    throw invalid(
      `the query would select ${fields.length} fields; COQL allows ${COQL_LIMITS.maxFields}`,
    );

  const where: Criteria[] = [];
  const opinion = opinionCriteria(rules, now, new Set(options.multiSelectFields ?? []));
  if (opinion) where.push(opinion);
  if (options.modifiedSince) where.push(`Modified_Time >= ${coqlDateTime(options.modifiedSince)}`);
  if (options.afterId !== undefined) {
    if (!ZOHO_ID_PATTERN.test(options.afterId))
      throw invalid("afterId must be a Zoho CRM record id (decimal digits)");
    where.push(`id > ${coqlString(options.afterId)}`);
  }
  const criteria = where.length ? { op: "and" as const, of: where } : "id is not null";
  const count = countCriteria(criteria);
  if (count > COQL_LIMITS.maxCriteria)
    throw invalid(
      `the rules need ${count} COQL criteria and COQL allows ${COQL_LIMITS.maxCriteria}: use fewer rules or fewer values (each 50 values of a field rule are one criterion, an engagement rule two, an incremental run and paging one each)`,
    );
  return {
    select_query: `select ${fields.join(", ")} from ${module} where ${renderCriteria(criteria)} order by id asc limit ${limit}`,
    criteria: count,
  };
}

/** The OR of every rule's opinion, or `undefined` when some rule cannot be put into WHERE (read all). */
function opinionCriteria(
  rules: ReadonlyArray<Rule>,
  now: Date,
  multiSelect: ReadonlySet<string>,
): Criteria | undefined {
  const of: Criteria[] = [];
  for (const rule of rules) {
    if ("field" in rule) {
      if (multiSelect.has(rule.field)) return undefined;
      const values = [...new Set([...rule.active, ...rule.inactive])];
      for (let i = 0; i < values.length; i += COQL_LIMITS.maxInValues)
        of.push(
          `${rule.field} in (${values
            .slice(i, i + COQL_LIMITS.maxInValues)
            .map(coqlString)
            .join(", ")})`,
        );
    } else {
      // compared as a DateTime (Last_Activity_Time is one); a Date-only field would need
      // 'YYYY-MM-DD' literals, which this builder does not write
      const field = rule.activity_field;
      of.push({
        op: "or",
        of: [
          `${field} >= ${coqlDateTime(daysBefore(now, rule.active_within_days))}`,
          `${field} < ${coqlDateTime(daysBefore(now, rule.inactive_after_days))}`,
        ],
      });
    }
  }
  return of.length ? { op: "or", of } : undefined;
}

const daysBefore = (now: Date, days: number) => new Date(now.getTime() - days * 86_400_000);

/** Brackets every pair, left to right: `((A and B) and C)`, as COQL asks for more than two criteria. */
function renderCriteria(criteria: Criteria): string {
  if (typeof criteria === "string") return criteria;
  const [first, ...rest] = criteria.of.map(renderCriteria);
  return rest.reduce((left, right) => `(${left} ${criteria.op} ${right})`, first ?? "");
}

function countCriteria(criteria: Criteria): number {
  return typeof criteria === "string"
    ? 1
    : criteria.of.reduce((sum, part) => sum + countCriteria(part), 0);
}

/**
 * A COQL string literal: in single quotes, a quote inside doubled (Kaizen #171).
 *
 * @example
 * coqlString("O'Brien & Sons"); // "'O''Brien & Sons'"
 */
export function coqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * A COQL DateTime literal: ISO 8601 to the second with an explicit offset, in UTC.
 *
 * @example
 * coqlDateTime(new Date("2026-01-01T00:00:00.000Z")); // "'2026-01-01T00:00:00+00:00'"
 */
export function coqlDateTime(date: Date): string {
  if (Number.isNaN(date.getTime())) throw invalid("a COQL date-time must be a valid date");
  return `'${date.toISOString().slice(0, 19)}+00:00'`;
}

const invalid = (message: string) =>
  new ServiceError("INVALID_REQUEST", `Zoho CRM query: ${message}.`);
