import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EnvSchema } from "../../lib/config";

/**
 * docs/configuration.md lists the environment in one table (`Variable | Default | Meaning`); the
 * defaults live in lib/config.ts's `EnvSchema` only. This keeps the two the same, both ways.
 */

interface Row {
  variable: string;
  default: string;
}

/** The rows of the first markdown table of `markdown`, as variable name and default cell. */
function firstTable(markdown: string): Row[] {
  const lines = markdown.split("\n");
  const start = lines.findIndex((line) => line.trim().startsWith("|"));
  if (start === -1) return [];
  const rows: Row[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.trim().startsWith("|")) break;
    const cells = line
      .trim()
      .replace(/^\||\|$/g, "")
      .split("|")
      .map((cell) => cell.trim());
    rows.push({ variable: unquote(cells[0] ?? ""), default: unquote(cells[1] ?? "") });
  }
  return rows;
}

function unquote(cell: string): string {
  return cell.replace(/^`(.*)`$/, "$1");
}

/** What the table should say of each variable's default: the value, `required` or `—`. */
function schemaDefaults(): Record<string, string> {
  const names = Object.keys(EnvSchema.shape);
  const empty = EnvSchema.safeParse({});
  const required = new Set(
    empty.success ? [] : empty.error.issues.map((issue) => String(issue.path[0])),
  );
  const filled = Object.fromEntries([...required].map((name) => [name, "x"]));
  const parsed = EnvSchema.parse(filled) as Record<string, unknown>;
  return Object.fromEntries(
    names.map((name) => {
      if (required.has(name)) return [name, "required"];
      const value = parsed[name];
      return [name, value === undefined ? "—" : String(value)];
    }),
  );
}

/** Every difference between the table and the schema, one line each; none when they agree. */
function compare(rows: Row[], defaults: Record<string, string>): string[] {
  const problems: string[] = [];
  const inTable = new Set(rows.map((row) => row.variable));
  for (const name of Object.keys(defaults))
    if (!inTable.has(name)) problems.push(`${name} is in EnvSchema but not in the table`);
  for (const row of rows) {
    const expected = defaults[row.variable];
    if (expected === undefined)
      problems.push(`${row.variable} is in the table but not in EnvSchema`);
    else if (row.default !== expected)
      problems.push(`${row.variable}: the table says ${row.default}, EnvSchema ${expected}`);
  }
  return problems;
}

describe("docs/configuration.md", () => {
  const markdown = readFileSync(new URL("../../docs/configuration.md", import.meta.url), "utf8");

  it("its first table has the Variable | Default | Meaning columns", () => {
    const header = markdown.split("\n").find((line) => line.trim().startsWith("|"));
    expect(header?.replace(/\s+/g, " ")).toBe("| Variable | Default | Meaning |");
  });

  it("lists every variable of EnvSchema, and only those, with the schema's defaults", () => {
    const rows = firstTable(markdown);
    expect(rows.length).toBeGreaterThan(0);
    expect(compare(rows, schemaDefaults())).toEqual([]);
  });

  it("reads the defaults the schema has", () => {
    const defaults = schemaDefaults();
    expect(defaults.ZOHO_SECRET_ID).toBe("required");
    expect(defaults.ZOHO_MINUTE_SHARE).toBe("80");
    expect(defaults.EVENT_BUS_NAME).toBe("default");
    expect(defaults.WEBHOOK_SECRET_ID).toBe("—");
  });

  it("the comparison fails on a table with an extra and a missing row, or a wrong default", () => {
    const table = [
      "| Variable | Default | Meaning |",
      "| --- | --- | --- |",
      "| `ZOHO_SECRET_ID` | required | the secret |",
      "| `ZOHO_MINUTE_SHARE` | `90` | the share |",
      "| `NOT_A_VARIABLE` | `1` | an extra row |",
    ].join("\n");
    const defaults = { ZOHO_SECRET_ID: "required", ZOHO_MINUTE_SHARE: "80", JOB_MAX_ATTEMPTS: "5" };
    expect(compare(firstTable(table), defaults)).toEqual([
      "JOB_MAX_ATTEMPTS is in EnvSchema but not in the table",
      "ZOHO_MINUTE_SHARE: the table says 90, EnvSchema 80",
      "NOT_A_VARIABLE is in the table but not in EnvSchema",
    ]);
  });
});
