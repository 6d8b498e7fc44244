import type { S3Client } from "@aws-sdk/client-s3";
import * as z from "zod/mini";
import { normalizeEmail } from "../activation";
import { awsError, isAwsTransient, ServiceError } from "../errors";
import { zohoIdSchema } from "../ids";
import { describeIssues } from "../jobs/job";

/** One line of the desired-state document: a contact, named by Books id or email. */
const DesiredEntrySchema = z
  .object({
    contact_id: z.optional(zohoIdSchema("contact_id")),
    email: z.optional(
      z
        .string({ error: "email must be a string" })
        .check(z.trim(), z.minLength(3, "email is too short")),
    ),
    status: z.enum(["active", "inactive"], { error: 'status must be "active" or "inactive"' }),
  })
  .check(
    z.refine((entry) => (entry.contact_id === undefined) !== (entry.email === undefined), {
      error: "each contact is named by exactly one of contact_id or email",
    }),
  );

export type DesiredEntry = z.infer<typeof DesiredEntrySchema>;

/** The CRM's export: `{"contacts": [...]}` (or the same rows as CSV). */
export const DesiredStateSchema = z.object(
  { contacts: z.array(DesiredEntrySchema, { error: "contacts must be an array" }) },
  { error: 'the document must be {"contacts": [...]}' },
);

/** The desired-state sources, each a schema (the sync input's union adds the CRM sources). */
export const DESIRED_STATE_SOURCES = [
  z.object({
    type: z.literal("url"),
    url: z.url({ protocol: /^https?$/, error: "source.url must be an http(s) URL" }),
  }),
  z.object({
    type: z.literal("s3"),
    bucket: z
      .string({ error: "source.bucket must be a string" })
      .check(z.regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "source.bucket must be a bucket name")),
    key: z
      .string({ error: "source.key must be a string" })
      .check(z.minLength(1, "source.key must not be empty"), z.maxLength(1024)),
  }),
  z.object({
    type: z.literal("inline"),
    contacts: z.array(z.unknown(), { error: "source.contacts must be an array" }),
  }),
] as const;

/** Where the desired state comes from (the sync input's `source`, when not a CRM). */
export const SourceSchema = z.discriminatedUnion("type", [...DESIRED_STATE_SOURCES], {
  error:
    'source must be {"type": "url", "url": …}, {"type": "s3", "bucket": …, "key": …} or {"type": "inline", "contacts": […]}',
});

export type SyncSource = z.infer<typeof SourceSchema>;

/** A name the source gave two different wishes: left alone and reported. */
export interface SourceConflict {
  contact_id?: string;
  email?: string;
}

export interface DesiredState {
  /** each contact id or email once */
  entries: DesiredEntry[];
  /** entries that repeated another with the same status (dropped: one entry) */
  duplicates: number;
  /** names given both statuses: none of their entries is used */
  conflicts: SourceConflict[];
}

/**
 * Validates the desired-state document. A contact id or email named twice with the same status
 * is one entry; named with both statuses, it is a conflict: all its entries are left out and
 * reported, and the rest of the document is used.
 */
export function parseDesiredState(value: unknown): DesiredState {
  const parsed = DesiredStateSchema.safeParse(value);
  if (!parsed.success) {
    throw new ServiceError(
      "SYNC_SOURCE_FAILED",
      `The source document is invalid: ${describeIssues(parsed.error.issues)}`,
    );
  }
  const byName = new Map<string, { entry: DesiredEntry; statuses: Set<string> }>();
  let duplicates = 0;
  for (const entry of parsed.data.contacts) {
    const key =
      entry.contact_id === undefined
        ? `email:${normalizeEmail(entry.email ?? "")}`
        : `id:${entry.contact_id}`;
    const seen = byName.get(key);
    if (!seen) byName.set(key, { entry, statuses: new Set([entry.status]) });
    else {
      if (seen.statuses.has(entry.status)) duplicates++;
      seen.statuses.add(entry.status);
    }
  }
  const entries: DesiredEntry[] = [];
  const conflicts: SourceConflict[] = [];
  for (const { entry, statuses } of byName.values()) {
    if (statuses.size === 1) entries.push(entry);
    else
      conflicts.push(
        entry.contact_id === undefined
          ? { email: normalizeEmail(entry.email ?? "") }
          : { contact_id: entry.contact_id },
      );
  }
  return { entries, duplicates, conflicts };
}

/**
 * CSV (RFC 4180: comma-separated, fields optionally in double quotes, `""` for a quote, CRLF or
 * LF) with a header row naming `contact_id` and/or `email`, and `status` (any case, any order,
 * other columns ignored) → the document's rows. An empty cell is an absent value.
 */
export function parseCsv(text: string): { contacts: Array<Record<string, string>> } {
  const rows = csvRows(text.replace(/^\uFEFF/, ""));
  const header = (rows.shift() ?? []).map((name) => name.trim().toLowerCase());
  if (!header.includes("status") || !(header.includes("contact_id") || header.includes("email")))
    throw new Error("no header row naming contact_id or email, and status");
  const columns = ["contact_id", "email", "status"]
    .map((name) => [name, header.indexOf(name)] as const)
    .filter(([, index]) => index >= 0);
  return {
    contacts: rows
      .filter((row) => row.some((cell) => cell.trim() !== ""))
      .map((row) => {
        const entry: Record<string, string> = {};
        for (const [name, index] of columns) {
          const cell = (row[index] ?? "").trim();
          if (cell !== "") entry[name] = name === "status" ? cell.toLowerCase() : cell;
        }
        return entry;
      }),
  };
}

function csvRows(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char !== '"') field += char;
      else if (text[i + 1] === '"') {
        field += '"';
        i++;
      } else quoted = false;
    } else if (char === '"' && field === "") quoted = true;
    else if (char === ",") {
      row.push(field);
      field = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += char;
  }
  if (quoted) throw new Error("a quoted field is not closed");
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** A desired-state document larger than this is refused (about 50,000 entries). */
export const MAX_SOURCE_BYTES = 5 * 1024 * 1024;

export interface SourceOptions {
  /** the URL source's timeout */
  timeoutMs: number;
  fetch?: typeof fetch;
  /** for `s3` sources: the client, created on the first such read */
  s3?: () => Promise<S3Client>;
}

/**
 * Reads the desired state. A URL or S3 source is read with a size cap (and a URL with a
 * timeout), and parsed as CSV when its content type or name says so, else as JSON. A failure
 * to read, a body that does not parse or validate, fails the run before anything is queued,
 * with a message that says which.
 */
export async function loadDesiredState(
  source: SyncSource,
  options: SourceOptions,
): Promise<DesiredState> {
  if (source.type === "inline") return parseDesiredState({ contacts: source.contacts });
  const read =
    source.type === "url" ? await readUrl(source.url, options) : await readS3(source, options);
  let document: unknown;
  if (read.csv) {
    try {
      document = parseCsv(read.text);
    } catch (error) {
      throw read.fail(`did not answer valid CSV (${(error as Error).message})`);
    }
  } else {
    try {
      document = JSON.parse(read.text);
    } catch {
      throw read.fail("did not answer JSON (or CSV, by a text/csv type or a .csv name)");
    }
  }
  return parseDesiredState(document);
}

interface SourceText {
  text: string;
  csv: boolean;
  fail: (why: string) => ServiceError;
}

const failure = (where: string) => (why: string) =>
  new ServiceError("SYNC_SOURCE_FAILED", `The sync source at ${where} ${why}; nothing was queued.`);

const isCsv = (contentType: string | undefined, name: string) =>
  /^\s*(text|application)\/csv\b/i.test(contentType ?? "") || /\.csv$/i.test(name);

async function readUrl(url: string, options: SourceOptions): Promise<SourceText> {
  const parsed = new URL(url);
  const fail = failure(parsed.origin); // never the query string: it may hold a token
  try {
    const response = await (options.fetch ?? fetch)(url, {
      headers: { accept: "application/json, text/csv;q=0.9" },
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    if (!response.ok) throw fail(`answered HTTP ${response.status}`);
    const declared = Number(response.headers.get("content-length") ?? "0");
    if (declared > MAX_SOURCE_BYTES) throw fail(`answered more than ${MAX_SOURCE_BYTES} bytes`);
    const text = await readCapped(response.body ?? [], fail);
    return {
      text,
      csv: isCsv(response.headers.get("content-type") ?? undefined, parsed.pathname),
      fail,
    };
  } catch (error) {
    if (error instanceof ServiceError) throw error;
    throw (error as Error)?.name === "TimeoutError"
      ? fail(`did not answer within ${options.timeoutMs} ms`)
      : fail("could not be reached");
  }
}

async function readS3(
  source: Extract<SyncSource, { type: "s3" }>,
  options: SourceOptions,
): Promise<SourceText> {
  const fail = failure(`s3://${source.bucket}/${source.key}`);
  if (!options.s3) throw fail("cannot be read: no S3 client");
  const [s3, { GetObjectCommand }] = await Promise.all([options.s3(), import("./s3-client")]);
  try {
    const output = await s3.send(new GetObjectCommand({ Bucket: source.bucket, Key: source.key }), {
      abortSignal: AbortSignal.timeout(options.timeoutMs),
    });
    if ((output.ContentLength ?? 0) > MAX_SOURCE_BYTES)
      throw fail(`is larger than ${MAX_SOURCE_BYTES} bytes`);
    const body = output.Body as AsyncIterable<Uint8Array> | undefined;
    const text = await readCapped(body ?? [], fail);
    return { text, csv: isCsv(output.ContentType, source.key), fail };
  } catch (error) {
    if (error instanceof ServiceError) throw error;
    const name = (error as Error)?.name ?? "Error";
    if (name === "NoSuchKey" || name === "NotFound") throw fail("does not exist");
    if (name === "AccessDenied" || name === "Forbidden")
      throw fail(
        "refused access (the function's role may read only the syncBucket param's bucket)",
      );
    // throttled, 5xx, timed out (our abort is a timeout too): S3's state for now, not the source's
    const failure =
      name === "AbortError"
        ? Object.assign(new Error(`no answer in ${options.timeoutMs} ms`), { name: "TimeoutError" })
        : error;
    if (isAwsTransient(failure))
      throw awsError(failure, `read s3://${source.bucket}/${source.key}`);
    throw fail(`could not be read (${name})`);
  }
}

async function readCapped(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  fail: (why: string) => ServiceError,
): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > MAX_SOURCE_BYTES) throw fail(`answered more than ${MAX_SOURCE_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
