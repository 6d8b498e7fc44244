import { type CrmField, type CrmModule, crmField, crmModule } from "./schema";
import type { CrmRecord } from "./seed";

/**
 * A strict subset of COQL (Zoho CRM's Query API), parsed and run against the sandbox's records:
 *
 *   SELECT f1, f2 FROM Module WHERE criteria [ORDER BY f [ASC|DESC], …] [LIMIT n [OFFSET m]]
 *
 * (`LIMIT m, n`, SQL's short form, only when told: Zoho's pages show LIMIT and OFFSET only.)
 *
 * Criteria: `=`, `!=`, `>`, `>=`, `<`, `<=`, `[not] in (…)`, `is [not] null`, `[not] like`,
 * `between a and b`; AND / OR two at a time, brackets around every further pair
 * (`((A and B) and C)`). Keywords are case-insensitive; field and module names are not.
 * What Zoho refuses is refused with its code (see README.md for the sources).
 */

/** The documented limits of one query (COQL limitations page, v8). */
export const COQL_LIMITS = {
  selectFields: 50,
  criteria: 25,
  inValues: 50,
  orderByFields: 10,
  /** OFFSET + LIMIT */
  reachable: 100_000,
  defaultLimit: 200,
} as const;

/** A refusal of a query: Zoho's HTTP status and body. */
export class CoqlError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "CoqlError";
  }

  /** The body Zoho answers: `{code, details, message, status: "error"}`. */
  body(): Record<string, unknown> {
    return { code: this.code, details: this.details, message: this.message, status: "error" };
  }
}

type Operator =
  | "="
  | "!="
  | ">"
  | ">="
  | "<"
  | "<="
  | "in"
  | "not in"
  | "like"
  | "not like"
  | "between"
  | "is null"
  | "is not null";

type Value = string | number;

export interface Criterion {
  kind: "criterion";
  field: CrmField;
  operator: Operator;
  values: Value[];
}

export interface Group {
  kind: "group";
  join: "and" | "or";
  left: Condition;
  right: Condition;
}

export type Condition = Criterion | Group;

export interface CoqlQuery {
  module: CrmModule;
  fields: CrmField[];
  where: Condition;
  orderBy: { field: CrmField; descending: boolean }[];
  limit: number;
  offset: number;
}

// ---------------------------------------------------------------------------------- tokens

type TokenKind = "word" | "string" | "number" | "punct" | "end";
interface Token {
  kind: TokenKind;
  text: string;
  /** from 1, as Zoho's `column` */
  column: number;
}

const PUNCTUATION = ["!=", ">=", "<=", "=", ">", "<", "(", ")", ","];

function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < query.length) {
    const c = query[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const column = i + 1;
    if (c === "'") {
      // '' inside a literal is a quote, as in SQL; \' too, as Zoho's docs escape it
      let text = "";
      i++;
      for (;;) {
        if (i >= query.length) throw syntaxError(query.slice(column - 1, column + 19), column);
        const d = query[i] as string;
        if (d === "\\" && query[i + 1] === "'") {
          text += "'";
          i += 2;
        } else if (d === "'" && query[i + 1] === "'") {
          text += "'";
          i += 2;
        } else if (d === "'") {
          i++;
          break;
        } else {
          text += d;
          i++;
        }
      }
      tokens.push({ kind: "string", text, column });
      continue;
    }
    const number = /^-?\d+(\.\d+)?/.exec(query.slice(i));
    if (number && (c !== "-" || /\d/.test(query[i + 1] ?? ""))) {
      tokens.push({ kind: "number", text: number[0], column });
      i += number[0].length;
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_.$]*/.exec(query.slice(i));
    if (word) {
      tokens.push({ kind: "word", text: word[0], column });
      i += word[0].length;
      continue;
    }
    const punct = PUNCTUATION.find((p) => query.startsWith(p, i));
    if (!punct) throw syntaxError(c, column);
    tokens.push({ kind: "punct", text: punct, column });
    i += punct.length;
  }
  tokens.push({ kind: "end", text: "", column: query.length + 1 });
  return tokens;
}

function syntaxError(near: string, column: number): CoqlError {
  return new CoqlError(400, "SYNTAX_ERROR", "invalid query formed", { near, line: 1, column });
}

function limitExceeded(clause: string, limit: number, more: Record<string, unknown> = {}) {
  return new CoqlError(400, "LIMIT_EXCEEDED", "limit exceeded", { clause, limit, ...more });
}

function invalidColumn(name: string, clause: string): CoqlError {
  return new CoqlError(400, "INVALID_QUERY", "column given seems to be invalid", {
    column_name: name,
    clause,
  });
}

function invalidValue(field: CrmField, operator: string): CoqlError {
  return new CoqlError(400, "INVALID_QUERY", "value given seems to be invalid for the column", {
    column_name: field.api_name,
    operator,
  });
}

// ---------------------------------------------------------------------------------- parser

/** Which operators each type takes (COQL's documented operator table, narrowed to these types). */
const OPERATORS: Record<CrmField["data_type"], readonly Operator[]> = {
  bigint: ["=", "!=", ">", ">=", "<", "<=", "in", "not in", "is null", "is not null"],
  lookup: ["=", "!=", "in", "not in", "is null", "is not null"],
  text: ["=", "!=", "in", "not in", "like", "not like", "is null", "is not null"],
  email: ["=", "!=", "in", "not in", "like", "not like", "is null", "is not null"],
  picklist: ["=", "!=", "in", "not in", "is null", "is not null"],
  multiselectpicklist: ["=", "!=", "in", "not in", "like", "not like", "is null", "is not null"],
  datetime: ["=", "!=", ">", ">=", "<", "<=", "between", "in", "not in", "is null", "is not null"],
};

/** ISO 8601 with an explicit ±hh:mm offset, as COQL's datetime criteria take them. */
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/;

/** How strict the parser is where Zoho's pages leave room. */
export interface CoqlOptions {
  /** the largest LIMIT accepted: 2,000 in v8 */
  maxLimit: number;
  /** accept `LIMIT offset, count`; refused (SYNTAX_ERROR) otherwise */
  limitCommaForm: boolean;
}

/** Parses and checks a query; throws a CoqlError with Zoho's code when Zoho would refuse it. */
export function parseCoql(query: string, options: CoqlOptions): CoqlQuery {
  const { maxLimit, limitCommaForm } = options;
  const tokens = tokenize(query);
  let at = 0;
  const peek = () => tokens[at] as Token;
  const next = () => tokens[at++] as Token;
  const isWord = (token: Token, ...words: string[]) =>
    token.kind === "word" && words.includes(token.text.toLowerCase());
  const expectWord = (word: string) => {
    const token = next();
    if (!isWord(token, word)) throw syntaxError(token.text, token.column);
  };
  const expectPunct = (p: string) => {
    const token = next();
    if (token.kind !== "punct" || token.text !== p) throw syntaxError(token.text, token.column);
  };
  const identifier = (): Token => {
    const token = next();
    if (token.kind !== "word" || KEYWORDS.has(token.text.toLowerCase()))
      throw syntaxError(token.text, token.column);
    return token;
  };

  expectWord("select");
  const selected: Token[] = [identifier()];
  while (peek().kind === "punct" && peek().text === ",") {
    next();
    selected.push(identifier());
  }
  expectWord("from");
  const moduleToken = identifier();
  const module = crmModule(moduleToken.text);
  if (!module)
    throw new CoqlError(400, "INVALID_MODULE", "the module name given seems to be invalid", {
      module: moduleToken.text,
    });
  if (selected.length > COQL_LIMITS.selectFields)
    throw limitExceeded("select", COQL_LIMITS.selectFields);
  const fields: CrmField[] = [];
  for (const token of selected) {
    const field = crmField(module, token.text);
    if (!field) throw invalidColumn(token.text, "select");
    if (!fields.includes(field)) fields.push(field);
  }

  if (!isWord(peek(), "where"))
    // A query without WHERE is refused: `where id is not null` selects every record.
    throw new CoqlError(400, "SYNTAX_ERROR", "missing clause", { clause: "where" });
  next();

  let criteria = 0;
  const criterion = (): Criterion => {
    const name = identifier();
    const field = crmField(module, name.text);
    if (!field) throw invalidColumn(name.text, "where");
    criteria++;
    const first = next();
    let operator: Operator;
    let values: Value[] = [];
    const value = (): Value => {
      const token = next();
      if (token.kind === "string") return token.text;
      if (token.kind === "number") return Number(token.text);
      throw syntaxError(token.text, token.column);
    };
    if (first.kind === "punct" && ["=", "!=", ">", ">=", "<", "<="].includes(first.text)) {
      operator = first.text as Operator;
      values = [value()];
    } else if (isWord(first, "is")) {
      const negated = isWord(peek(), "not");
      if (negated) next();
      expectWord("null");
      operator = negated ? "is not null" : "is null";
    } else if (isWord(first, "between")) {
      operator = "between";
      values = [value()];
      expectWord("and");
      values.push(value());
    } else {
      const negated = isWord(first, "not");
      const word = negated ? next() : first;
      if (isWord(word, "like")) {
        operator = negated ? "not like" : "like";
        values = [value()];
      } else if (isWord(word, "in")) {
        operator = negated ? "not in" : "in";
        expectPunct("(");
        values = [value()];
        while (peek().kind === "punct" && peek().text === ",") {
          next();
          values.push(value());
        }
        expectPunct(")");
        if (values.length > COQL_LIMITS.inValues)
          throw limitExceeded("where", COQL_LIMITS.inValues, { operator });
      } else {
        throw syntaxError(word.text, word.column);
      }
    }
    if (!OPERATORS[field.data_type].includes(operator))
      throw new CoqlError(400, "INVALID_QUERY", "invalid query formed", {
        column_name: field.api_name,
        operator,
      });
    checkValues(field, operator, values);
    return { kind: "criterion", field, operator, values };
  };
  const operand = (): Condition => {
    if (peek().kind === "punct" && peek().text === "(") {
      next();
      const inner = condition();
      expectPunct(")");
      return inner;
    }
    return criterion();
  };
  // Two operands at most at each level: a third needs brackets, as Zoho's docs require.
  const condition = (): Condition => {
    const left = operand();
    if (!isWord(peek(), "and", "or")) return left;
    const join = next().text.toLowerCase() as "and" | "or";
    const right = operand();
    if (isWord(peek(), "and", "or")) throw syntaxError(peek().text, peek().column);
    return { kind: "group", join, left, right };
  };
  const where = condition();
  if (criteria > COQL_LIMITS.criteria) throw limitExceeded("where", COQL_LIMITS.criteria);

  const orderBy: CoqlQuery["orderBy"] = [];
  if (isWord(peek(), "order")) {
    next();
    expectWord("by");
    do {
      if (orderBy.length > 0) next(); // the comma
      const name = identifier();
      const field = crmField(module, name.text);
      if (!field) throw invalidColumn(name.text, "order by");
      if (orderBy.some((o) => o.field === field))
        throw new CoqlError(400, "DUPLICATE_DATA", "duplicate data", {
          clause: "order by",
          column_name: field.api_name,
        });
      let descending = false;
      if (isWord(peek(), "asc", "desc")) descending = next().text.toLowerCase() === "desc";
      orderBy.push({ field, descending });
    } while (peek().kind === "punct" && peek().text === ",");
    if (orderBy.length > COQL_LIMITS.orderByFields)
      throw limitExceeded("order by", COQL_LIMITS.orderByFields);
  }

  let limit: number = COQL_LIMITS.defaultLimit;
  let offset = 0;
  const whole = (): number => {
    const token = next();
    if (token.kind !== "number" || !/^\d+$/.test(token.text))
      throw syntaxError(token.text, token.column);
    return Number(token.text);
  };
  if (isWord(peek(), "limit")) {
    next();
    const first = whole();
    if (peek().kind === "punct" && peek().text === "," && limitCommaForm) {
      // LIMIT offset, count (the SQL short form)
      next();
      offset = first;
      limit = whole();
    } else {
      limit = first;
      if (isWord(peek(), "offset")) {
        next();
        offset = whole();
      }
    }
    if (limit < 1) throw syntaxError(String(limit), peek().column);
  } else if (isWord(peek(), "offset")) {
    next();
    offset = whole();
  }
  const end = peek();
  if (end.kind !== "end") throw syntaxError(end.text, end.column);
  if (limit > maxLimit) throw limitExceeded("limit", maxLimit);
  if (offset + limit > COQL_LIMITS.reachable) throw limitExceeded("offset", COQL_LIMITS.reachable);
  return { module, fields, where, orderBy, limit, offset };
}

const KEYWORDS: ReadonlySet<string> = new Set([
  "select",
  "from",
  "where",
  "and",
  "or",
  "order",
  "by",
  "asc",
  "desc",
  "limit",
  "offset",
  "in",
  "not",
  "is",
  "null",
  "like",
  "between",
]);

function checkValues(field: CrmField, operator: Operator, values: Value[]): void {
  for (const v of values) {
    switch (field.data_type) {
      case "bigint":
      case "lookup":
        if (!/^\d+$/.test(String(v))) throw invalidValue(field, operator);
        break;
      case "datetime":
        if (typeof v !== "string" || !DATETIME.test(v) || Number.isNaN(Date.parse(v)))
          throw invalidValue(field, operator);
        break;
      default:
        if (typeof v !== "string") throw invalidValue(field, operator);
    }
  }
}

// ---------------------------------------------------------------------------------- evaluation

/** The records the query selects, in its order, before LIMIT and OFFSET. */
export function runCoql(query: CoqlQuery, records: readonly CrmRecord[]): CrmRecord[] {
  const matching = records.filter((r) => matches(query.where, r));
  return matching.sort((a, b) => {
    for (const { field, descending } of query.orderBy) {
      const order = compareValues(field, a[field.api_name], b[field.api_name]);
      if (order !== 0) return descending ? -order : order;
    }
    return compareIds(a.id, b.id);
  });
}

/** COQL's credit cost, by the query's LIMIT: 1 up to 200, 2 up to 1,000, 3 above. */
export function coqlCredits(limit: number): number {
  if (limit <= 200) return 1;
  return limit <= 1000 ? 2 : 3;
}

function matches(condition: Condition, record: CrmRecord): boolean {
  if (condition.kind === "group") {
    return condition.join === "and"
      ? matches(condition.left, record) && matches(condition.right, record)
      : matches(condition.left, record) || matches(condition.right, record);
  }
  const { field, operator, values } = condition;
  const raw = record[field.api_name];
  const isNull = raw === null || raw === undefined || (Array.isArray(raw) && raw.length === 0);
  if (operator === "is null") return isNull;
  if (operator === "is not null") return !isNull;
  // A negative criterion holds for an empty field; a positive one never does.
  const negative = operator === "!=" || operator === "not in" || operator === "not like";
  if (isNull) return negative;
  const items = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  const some = (test: (item: unknown, value: Value) => boolean) =>
    values.some((value) => items.some((item) => test(item, value)));
  const equal = (item: unknown, value: Value) => compareValues(field, item, value) === 0;
  switch (operator) {
    case "=":
    case "in":
      return some(equal);
    case "!=":
    case "not in":
      return !some(equal);
    case "like":
      return some((item, value) => likePattern(String(value)).test(String(item)));
    case "not like":
      return !some((item, value) => likePattern(String(value)).test(String(item)));
    case "between":
      return compareValues(field, raw, values[0]) >= 0 && compareValues(field, raw, values[1]) <= 0;
    default: {
      const order = compareValues(field, raw, values[0]);
      if (operator === ">") return order > 0;
      if (operator === ">=") return order >= 0;
      if (operator === "<") return order < 0;
      return order <= 0;
    }
  }
}

/** `%` any run of characters, matched without regard to case. */
function likePattern(pattern: string): RegExp {
  const body = pattern
    .split("%")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}$`, "is");
}

function compareValues(field: CrmField, a: unknown, b: unknown): number {
  if (a === null || a === undefined) return b === null || b === undefined ? 0 : 1; // empty last
  if (b === null || b === undefined) return -1;
  switch (field.data_type) {
    case "bigint":
    case "lookup":
      return compareIds(String(a), String(b));
    case "datetime":
      return Math.sign(Date.parse(String(a)) - Date.parse(String(b)));
    default: {
      const [x, y] = [String(a).toLowerCase(), String(b).toLowerCase()];
      return x === y ? 0 : x < y ? -1 : 1;
    }
  }
}

function compareIds(a: string, b: string): number {
  const [x, y] = [BigInt(a), BigInt(b)];
  return x === y ? 0 : x < y ? -1 : 1;
}
